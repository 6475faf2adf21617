"""The Prometheus Operator manifests build with kustomize, alone and as the optional
component of both installs, and the ServiceMonitor selects the metrics Service."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from flokoa_envtest.testing import kustomize_build, require_tool

COMPONENT_LINES = ("#components:", "#  - ../components/prometheus")


@pytest.fixture
def kustomize() -> Any:
    """``kustomize(directory)`` → the built objects (via ``kubectl kustomize``)."""
    kubectl = require_tool("kubectl")

    def build(directory: Path) -> list[dict[str, Any]]:
        return kustomize_build(kubectl, directory)

    return build


def _one(objs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind]
    assert len(found) == 1, [o["kind"] for o in objs]
    return found[0]


def test_config_prometheus_builds(ops: SimpleNamespace, kustomize: Any) -> None:
    objs = kustomize(ops.REPO / "config" / "prometheus")
    assert sorted(o["kind"] for o in objs) == ["PrometheusRule", "ServiceMonitor"]
    rule = _one(objs, "PrometheusRule")
    rules = yaml.safe_load(ops.RULES_FILE.read_text(encoding="utf-8"))
    assert rule["spec"] == rules
    assert all(o["metadata"]["namespace"] == "flokoa-system" for o in objs)


@pytest.mark.parametrize("variant", ["default", "namespaced"])
def test_component_adds_monitoring_to_an_install(
    variant: str, ops: SimpleNamespace, kustomize: Any, tmp_path: Path
) -> None:
    """Uncommenting the documented lines in a copy of the install enables monitoring."""
    config = tmp_path / "config"
    shutil.copytree(ops.REPO / "config", config)
    kustomization = config / variant / "kustomization.yaml"
    text = kustomization.read_text(encoding="utf-8")
    for line in COMPONENT_LINES:
        assert line in text.splitlines(), f"config/{variant} lacks the line {line!r}"
        text = text.replace(line, line[1:])
    without = kustomize(ops.REPO / "config" / variant)
    assert not [o for o in without if o["kind"] in ("ServiceMonitor", "PrometheusRule")]

    kustomization.write_text(text, encoding="utf-8")
    objs = kustomize(config / variant)
    monitor = _one(objs, "ServiceMonitor")
    _one(objs, "PrometheusRule")
    services = [o for o in objs if o["kind"] == "Service"]
    selected = [
        s
        for s in services
        if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
        and s["metadata"]["namespace"] == monitor["metadata"]["namespace"]
    ]
    assert len(selected) == 1, "the ServiceMonitor must select exactly the metrics Service"
    service = selected[0]
    # The Prometheus Operator names the job after the Service: the rules select that job.
    assert service["metadata"]["name"] == ops.JOB
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports
    deployment = _one(objs, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "metrics" in {p["name"] for p in container["ports"]}
