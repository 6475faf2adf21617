"""The alerting rules: promtool accepts them, unit tests cover every alert both ways, the
PrometheusRule says the same, and every annotation points at an existing runbook."""

from __future__ import annotations

import re
import runpy
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

EXPECTED_ALERTS = {
    "FlokoaControllerDown",
    "FlokoaControllerReplicaDown",
    "FlokoaControllerNoLeader",
    "FlokoaControllerReconcileErrorsHigh",
    "FlokoaControllerWorkqueueDepthHigh",
    "FlokoaControllerWorkqueueLatencyHigh",
    "FlokoaModelProvidersNotReady",
    "FlokoaProviderProbeFailuresRising",
    "FlokoaModelDeprecated",
}
"""What issue 7 asks for: no leader, controller down, reconcile errors, workqueue depth and
latency, providers not ready, probe failures; and issue 14: deprecated models in use."""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_the_expected_alerts_exist(ops: SimpleNamespace) -> None:
    assert {r["alert"] for r in ops.alert_rules()} == EXPECTED_ALERTS


def test_promtool_check_rules(ops: SimpleNamespace, promtool: str) -> None:
    result = _run(promtool, "check", "rules", str(ops.RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in result.stdout


def test_promtool_unit_tests_pass(ops: SimpleNamespace, promtool: str) -> None:
    result = _run(promtool, "test", "rules", str(ops.PROMTOOL_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def _unit_tests(ops: SimpleNamespace) -> list[dict[str, Any]]:
    doc = yaml.safe_load(ops.PROMTOOL_TESTS.read_text(encoding="utf-8"))
    return [case for test in doc["tests"] for case in test["alert_rule_test"]]


def test_every_alert_has_a_firing_and_a_silent_case(ops: SimpleNamespace) -> None:
    cases = _unit_tests(ops)
    for alert in EXPECTED_ALERTS:
        mine = [c for c in cases if c["alertname"] == alert]
        assert any(c["exp_alerts"] for c in mine), f"{alert}: no case where it fires"
        assert any(not c["exp_alerts"] for c in mine), f"{alert}: no case where it stays silent"


@pytest.mark.parametrize("alert", sorted(EXPECTED_ALERTS))
def test_unit_tests_fail_when_an_alert_never_fires(
    alert: str, ops: SimpleNamespace, promtool: str, tmp_path: Path
) -> None:
    """Mutation check: an alert whose expression matches nothing makes the suite fail."""
    rules = yaml.safe_load(ops.RULES_FILE.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["expr"] = "vector(1) == 0"
    mutated = tmp_path / "rules.yaml"
    mutated.write_text(yaml.safe_dump(rules), encoding="utf-8")
    tests = yaml.safe_load(ops.PROMTOOL_TESTS.read_text(encoding="utf-8"))
    tests["rule_files"] = [str(mutated)]
    suite = tmp_path / "alerts_test.yaml"
    suite.write_text(yaml.safe_dump(tests), encoding="utf-8")
    result = _run(promtool, "test", "rules", str(suite))
    assert result.returncode != 0
    assert f"alertname: {alert}," in result.stdout + result.stderr


def test_every_alert_is_documented(ops: SimpleNamespace) -> None:
    runbooks = (ops.DOCS / "runbooks.md").read_text(encoding="utf-8")
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', runbooks)) | {
        _slug(h) for h in re.findall(r"^#+ (.+)$", runbooks, re.MULTILINE)
    }
    for rule in ops.alert_rules():
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}
        url = annotations["runbook_url"]
        expected_anchor = rule["alert"].lower()
        assert url.endswith(f"/docs/runbooks.md#{expected_anchor}"), url
        assert expected_anchor in anchors, f"docs/runbooks.md has no section {rule['alert']}"


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_selector_is_scoped_to_the_job(ops: SimpleNamespace) -> None:
    job = f'job="{ops.JOB}"'
    for rule in ops.alert_rules():
        expr = rule["expr"]
        for name in ops.metric_names(expr):
            selectors = re.findall(rf"\b{re.escape(name)}\s*(\{{[^}}]*\}})?", expr)
            assert selectors, (rule["alert"], name)
            for matchers in selectors:
                assert job in matchers, f"{rule['alert']}: {name} without {job}"


def test_prometheusrule_is_generated_from_the_rules_file(ops: SimpleNamespace) -> None:
    rules = yaml.safe_load(ops.RULES_FILE.read_text(encoding="utf-8"))
    manifest = yaml.safe_load(ops.PROMETHEUS_RULE_FILE.read_text(encoding="utf-8"))
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["spec"] == rules

    generator = ops.REPO / "hack" / "prometheus_rules.py"
    namespace = runpy.run_path(str(generator), run_name="prometheus_rules")
    rendered = namespace["render"](ops.RULES_FILE.read_text(encoding="utf-8"))
    assert ops.PROMETHEUS_RULE_FILE.read_text(encoding="utf-8") == rendered, (
        "config/prometheus/prometheusrule.yaml is out of date: run `make prometheus-rules`"
    )
