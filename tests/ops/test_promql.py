"""The PromQL metric-name extractor the metric-existence test relies on."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

CASES = [
    ("up", {"up"}),
    ('absent(up{job="x"} == 1)', {"up"}),
    ("foo_total offset 5m", {"foo_total"}),
    (
        "histogram_quantile(0.99, sum by (le, controller) "
        '(rate(a_bucket{job=~"$job"}[$__rate_interval])))',
        {"a_bucket"},
    ),
    ("sum(rate(a_total[5m])) by (x) / on (x) group_left(y) b", {"a_total", "b"}),
    ("a unless on (namespace, instance) b == 0", {"a", "b"}),
    ("a > bool 1e-3 and b < Inf or c != NaN", {"a", "b", "c"}),
    ('max without (pod) (x{result!~"ProbeSucceeded|RateLimited", le="+Inf"})', {"x"}),
    ('label_replace(a, "dst", "$1", "src", "(.*)")', {"a"}),
    ("rate(a[5m:1m]) # a comment mentioning not_a_metric", {"a"}),
    ("ns:recording_rule:rate5m * 2", {"ns:recording_rule:rate5m"}),
    ("vector(1) == 0", set()),
    (
        'sum by (code) (rest_client_requests_total{job=~"$job", namespace=~"$namespace"})',
        {"rest_client_requests_total"},
    ),
]


@pytest.mark.parametrize(("expr", "expected"), CASES)
def test_metric_names(expr: str, expected: set[str], ops: SimpleNamespace) -> None:
    assert ops.metric_names(expr) == expected


def test_every_rule_and_panel_names_some_metric(ops: SimpleNamespace) -> None:
    for rule in ops.alert_rules():
        assert ops.metric_names(rule["expr"]), rule["alert"]
    for title, expr in ops.dashboard_expressions():
        assert ops.metric_names(expr), title


def test_dashboard_variables_expand(ops: SimpleNamespace) -> None:
    expr = 'rate(a{job=~"$job", namespace=~"$namespace"}[$__rate_interval])'
    assert ops.expand_variables(expr) == f'rate(a{{job=~"{ops.JOB}", namespace=~".*"}}[1m])'
