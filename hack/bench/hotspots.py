"""Top self/total time of a py-spy raw profile (see ``run.py --profile``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flokoa_bench.hotspots import main

if __name__ == "__main__":
    main()
