"""Benchmarks: flokoa-controller vs the limit vs kopf (issue 6). See docs/benchmarks.md.

.venv/bin/python hack/bench/run.py --n 10000 --kopf-n 2000 --plot docs/benchmarks-latency.png
.venv/bin/python hack/bench/run.py --n 50 --rotations 50 --idle-seconds 10 --check  # smoke
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flokoa_bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
