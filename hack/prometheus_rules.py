"""Generate config/prometheus/prometheusrule.yaml from config/prometheus/rules.yaml.

``python hack/prometheus_rules.py`` (``make prometheus-rules``). The plain rules file is the
source: promtool checks and unit-tests it. The PrometheusRule is the same ``groups:`` block,
indented under ``spec:`` verbatim (comments and formatting included), so both always say the
same thing; tests/ops/test_rules.py checks that the committed file is this script's output.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "config" / "prometheus" / "rules.yaml"
OUTPUT = REPO / "config" / "prometheus" / "prometheusrule.yaml"

HEADER = """\
# Generated from config/prometheus/rules.yaml by `make prometheus-rules`: do not edit.
# The alerting rules for the Prometheus Operator; see docs/monitoring.md and docs/runbooks.md.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: flokoa-controller
  namespace: flokoa-system
  labels:
    app.kubernetes.io/name: flokoa-controller
    app.kubernetes.io/component: metrics
spec:
"""


def render(rules_text: str) -> str:
    """The PrometheusRule manifest wrapping the ``groups:`` block of ``rules_text``.

    The leading comment block of the rules file is dropped (the header replaces it); every
    following line is indented by two spaces under ``spec:``.
    """
    lines = rules_text.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if line.startswith("groups:")),
        None,
    )
    if start is None:
        raise ValueError("the rules file has no top-level `groups:` key")
    body = [f"  {line}" if line.strip() else "" for line in lines[start:]]
    return HEADER + "\n".join(body) + "\n"


def main() -> int:
    """Write the PrometheusRule next to the rules file."""
    OUTPUT.write_text(render(RULES.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
