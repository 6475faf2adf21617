"""Copy the monitoring sources into the Helm chart (``make manifests``, ``make prometheus-rules``).

Helm templates can only read files inside the chart, so the chart carries byte-identical
copies of config/prometheus/rules.yaml (the PrometheusRule's ``spec``) and of the Grafana
dashboard config/grafana/flokoa-controller.json (the dashboard ConfigMap). The files under
config/ are the sources; tests/packaging/test_chart.py checks that the copies equal them.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "charts" / "flokoa-controller"

COPIES = {
    REPO / "config" / "prometheus" / "rules.yaml": CHART / "files" / "rules.yaml",
    REPO / "config" / "grafana" / "flokoa-controller.json": CHART / "files" / "dashboard.json",
}
"""Source to copy inside the chart."""


def main() -> int:
    """Write every copy whose content differs from its source."""
    for source, copy in COPIES.items():
        data = source.read_bytes()
        if not copy.is_file() or copy.read_bytes() != data:
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(data)
            print(f"wrote {copy.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
