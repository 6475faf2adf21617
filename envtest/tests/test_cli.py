"""The ``flokoa-envtest`` command without the operator: ``serve`` works, ``dev`` says in
one line what to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# As in an install of envtest alone: the operator's editable finder is taken out, and the
# process runs outside the checkout (so no path entry finds the operator's package either).
WITHOUT_OPERATOR = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "flokoa_controller" not in repr(f)]
try:
    import flokoa_controller
except ModuleNotFoundError:
    pass
else:
    sys.exit("the operator is still importable: " + str(flokoa_controller.__file__))
from flokoa_envtest.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_OPERATOR, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def test_serve_needs_no_operator(tmp_path: Path) -> None:
    serve = run(tmp_path, "serve", "--help")
    assert serve.returncode == 0, serve.stderr
    assert "--kubeconfig-out" in serve.stdout


def test_dev_without_the_operator_prints_one_line(tmp_path: Path) -> None:
    dev = run(tmp_path, "dev", "--port", "0")
    assert dev.returncode == 2
    hint = dev.stderr.strip()
    assert "\n" not in hint
    assert hint.startswith("flokoa-envtest dev: the dev cluster runs the operator")
    assert "pip install ." in hint
