"""The committed CRDs are exactly what the types generate, and a cluster would accept them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from flokoa_controller.api import crdgen

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "config" / "crd"


def test_committed_crds_equal_generated() -> None:
    generated = crdgen.render()
    committed = {p.name: p.read_text(encoding="utf-8") for p in CRD_DIR.iterdir()}
    assert sorted(committed) == sorted(generated), "run `make manifests`"
    for name, content in generated.items():
        assert committed[name] == content, f"{name} is stale: run `make manifests`"


def test_generation_is_deterministic_and_cli_writes_files(tmp_path: Path) -> None:
    assert crdgen.main([str(tmp_path / "out")]) == 0
    written = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "out").iterdir()}
    assert written == crdgen.render()


def _crds() -> list[dict[str, Any]]:
    return [yaml.safe_load(crdgen.render()[crdgen.file_name(r)]) for r, _ in crdgen.RESOURCES]


def _walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    nodes = [(path, node)]
    for name, child in node.get("properties", {}).items():
        nodes += _walk(child, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        nodes += _walk(node["additionalProperties"], f"{path}[*]")
    if "items" in node:
        nodes += _walk(node["items"], f"{path}[]")
    return nodes


@pytest.mark.parametrize("crd", _crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_names_columns_and_subresources(crd: dict[str, Any]) -> None:
    names = crd["spec"]["names"]
    version = crd["spec"]["versions"][0]
    assert names["categories"] == ["flokoa"]
    assert names["shortNames"]
    assert crd["metadata"]["name"] == f"{names['plural']}.agent.flokoa.ai"
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    if names["kind"] == "ModelProvider":
        assert columns == ["Provider", "Ready", "Reason", "Age"]
        reason = version["additionalPrinterColumns"][2]["jsonPath"]
        assert reason == '.status.conditions[?(@.type=="Ready")].reason'
    else:
        assert columns == ["Model", "Provider", "Ready", "Age"]


@pytest.mark.parametrize("crd", _crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_schema_is_structural_and_bounded(crd: dict[str, Any]) -> None:
    """Every node is typed and documented; every string, list and map in spec is bounded.

    Bounds keep each CEL rule under kube-apiserver's cost estimate limits, and the schema
    uses only keywords a structural schema allows.
    """
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["properties"]["metadata"] == {"type": "object"}
    for path, node in _walk(schema):
        assert "type" in node, path
        assert set(node) <= crdgen.ALLOWED_KEYWORDS, path
        documented = path.startswith((".spec", ".status")) and not path.endswith(("[*]", "[]"))
        if documented:
            assert node.get("description"), f"{path} has no description"
        if path.startswith(".status"):
            assert "default" not in node, path
        if not path.startswith(".spec"):
            continue
        if node["type"] == "string":
            assert "maxLength" in node or "enum" in node, f"{path} is an unbounded string"
        if node["type"] == "array":
            assert "maxItems" in node, path
        if node["type"] == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, path


@pytest.mark.parametrize("crd", _crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_every_rule_compiles_and_has_a_message(crd: dict[str, Any]) -> None:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    env = celpy.Environment()
    rules = [r for _, node in _walk(schema) for r in node.get("x-kubernetes-validations", [])]
    assert rules
    for rule in rules:
        env.compile(rule["rule"])
        assert rule["message"]
        assert "\n" not in rule["message"]
        assert set(rule) <= {"rule", "message", "fieldPath", "reason"}


def test_defaults_are_valid_for_their_own_schema(crd_validators: dict[str, Any]) -> None:
    """kube-apiserver rejects a CRD whose defaults do not validate; so do we."""
    checked = 0
    for validator in crd_validators.values():
        for path, node in _walk(validator.schema):
            if "default" in node:
                assert validator.schema_errors(node, node["default"]) == [], path
                checked += 1
    assert checked >= 10


def test_cli_writes_the_chart_crds_too(tmp_path: Path) -> None:
    """``make manifests`` writes config/crd and the Helm chart's crds/ in one command."""
    assert crdgen.main([str(tmp_path / "crd"), "--chart-crds", str(tmp_path / "chart")]) == 0
    chart = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "chart").iterdir()}
    assert chart == crdgen.render_crds()
    for name, content in chart.items():
        assert (tmp_path / "crd" / name).read_text(encoding="utf-8") == content
    assert "kustomization.yaml" not in chart
