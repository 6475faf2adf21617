"""Provider modules load on first use: no botocore unless a Bedrock provider exists."""

from __future__ import annotations

import subprocess
import sys


def test_operator_does_not_import_botocore_until_a_bedrock_probe() -> None:
    code = (
        "import sys\n"
        "import flokoa_controller.cli, flokoa_controller.controllers.setup\n"
        "assert 'botocore' not in sys.modules, 'botocore imported at start-up'\n"
        "from flokoa_controller.providers import probes_of\n"
        "assert probes_of('openai').probe_provider.__module__.endswith('.openai')\n"
        "assert 'botocore' not in sys.modules\n"
        "assert probes_of('bedrock').probe_model.__module__.endswith('.bedrock')\n"
        "assert 'botocore' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
