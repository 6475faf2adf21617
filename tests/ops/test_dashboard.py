"""The Grafana dashboard: well formed, every query scoped by the variables, and the panels
issue 7 asks for are there. (That its metrics exist and its queries run against a real
Prometheus is checked in test_live.py.)"""

from __future__ import annotations

import itertools
import re
from types import SimpleNamespace

REQUIRED_METRICS = {
    # reconcile rate, errors and latency per controller
    "controller_runtime_reconcile_total",
    "controller_runtime_reconcile_errors_total",
    "controller_runtime_reconcile_time_seconds_bucket",
    # workqueue depth, adds and latency
    "workqueue_depth",
    "workqueue_adds_total",
    "workqueue_queue_duration_seconds_bucket",
    # leader status per pod
    "leader_election_master_status",
    # ModelProviders and Models ready by provider
    "flokoa_modelproviders",
    "flokoa_models",
    # probe latency and results
    "flokoa_provider_probe_duration_seconds_bucket",
    "flokoa_provider_probe_total",
    # REST client requests by code
    "rest_client_requests_total",
}


def test_dashboard_identity_and_variables(ops: SimpleNamespace) -> None:
    board = ops.dashboard()
    assert board["uid"] == "flokoa-controller"
    assert board["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert set(variables) == {"datasource", "job", "namespace"}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["job"]["current"]["value"] == ops.JOB
    assert variables["namespace"]["allValue"] == ".*"


def test_panels_are_well_formed(ops: SimpleNamespace) -> None:
    board = ops.dashboard()
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    panels = ops.dashboard_panels(board)
    assert len(panels) >= 12
    for panel in panels:
        assert panel["title"]
        assert panel.get("description"), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        targets = panel["targets"]
        assert targets, panel["title"]
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in targets:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "${datasource}"


def test_panels_do_not_overlap(ops: SimpleNamespace) -> None:
    boxes = [(p["title"], p["gridPos"]) for p in ops.dashboard()["panels"]]
    for title, pos in boxes:
        assert pos["x"] >= 0, title
        assert pos["x"] + pos["w"] <= 24, title
    for (a, pa), (b, pb) in itertools.combinations(boxes, 2):
        apart = (
            pa["x"] + pa["w"] <= pb["x"]
            or pb["x"] + pb["w"] <= pa["x"]
            or pa["y"] + pa["h"] <= pb["y"]
            or pb["y"] + pb["h"] <= pa["y"]
        )
        assert apart, f"{a!r} overlaps {b!r}"


def test_every_selector_uses_the_job_and_namespace_variables(ops: SimpleNamespace) -> None:
    for title, expr in ops.dashboard_expressions():
        for name in ops.metric_names(expr):
            selectors = re.findall(rf"\b{re.escape(name)}\s*(\{{[^}}]*\}})?", expr)
            for matchers in selectors:
                assert 'job=~"$job"' in matchers, f"{title}: {name}"
                assert 'namespace=~"$namespace"' in matchers, f"{title}: {name}"


def test_required_panels_are_present(ops: SimpleNamespace) -> None:
    used = set().union(*(ops.metric_names(e) for _, e in ops.dashboard_expressions()))
    assert used >= REQUIRED_METRICS, sorted(REQUIRED_METRICS - used)
    titles = " | ".join(p["title"].lower() for p in ops.dashboard_panels())
    for words in ("leader", "latency", "depth", "probe", "by code", "models"):
        assert words in titles, words
