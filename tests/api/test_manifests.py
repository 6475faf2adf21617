"""The deploy manifests: valid for Kubernetes 1.32, buildable by kustomize, least privilege."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from flokoa_envtest.testing import kustomize_build, require_tool

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
KUBERNETES_VERSION = "1.32.0"
CUSTOM_GROUPS = ("agent.flokoa.ai/", "monitoring.coreos.com/")
KUSTOMIZATIONS = ("default", "namespaced", "samples", "crd", "rbac", "manager")


def _documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def _builtin_documents() -> list[tuple[str, dict[str, Any]]]:
    """Every built-in object in every YAML file under config/ (not kustomizations, not CRs)."""
    found = []
    for path in sorted(CONFIG.rglob("*.yaml")):
        for index, doc in enumerate(_documents(path)):
            api_version = doc.get("apiVersion", "")
            # Also skipped: plain Prometheus rule files (no kind) and kustomize Components.
            if api_version.startswith(CUSTOM_GROUPS) or doc.get("kind") in (
                None,
                "Kustomization",
                "Component",
            ):
                continue
            found.append((f"{path.relative_to(CONFIG)}#{index}", doc))
    return found


BUILTINS = _builtin_documents()


def test_every_kind_of_manifest_is_covered() -> None:
    kinds = {doc["kind"] for _, doc in BUILTINS}
    assert {
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "Namespace",
        "Secret",
    } <= kinds


@pytest.mark.parametrize(("where", "doc"), BUILTINS, ids=[w for w, _ in BUILTINS])
def test_builtin_manifest_passes_kubernetes_validate_strict(
    where: str, doc: dict[str, Any]
) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_invalid_manifest_is_rejected_by_kubernetes_validate() -> None:
    """The validator is live: a misspelt field fails in strict mode."""
    doc = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "x"},
        "automountServiceAcountToken": False,
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.fixture(scope="module")
def built() -> dict[str, list[dict[str, Any]]]:
    kubectl = require_tool("kubectl")
    return {name: kustomize_build(kubectl, CONFIG / name) for name in KUSTOMIZATIONS}


def _one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    (match,) = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    return match


def test_default_installs_everything_in_flokoa_system(built: dict[str, Any]) -> None:
    docs = built["default"]
    kinds = sorted(d["kind"] for d in docs)
    assert kinds.count("CustomResourceDefinition") == 2
    for doc in docs:
        if doc["kind"] in ("Namespace", "CustomResourceDefinition", "ClusterRole"):
            assert "namespace" not in doc["metadata"]
        elif doc["kind"] != "ClusterRoleBinding":
            assert doc["metadata"]["namespace"] == "flokoa-system", doc["kind"]
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    binding = _one(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "flokoa-controller", "namespace": "flokoa-system"}
    ]


def test_deployment_is_hardened_and_leader_elected(built: dict[str, Any]) -> None:
    deployment = _one(built["default"], "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert container["args"] == [
        "run",
        "--leader-elect",
        "--metrics-bind-address=:8080",
        "--health-probe-bind-address=:8081",
    ]
    assert pod["serviceAccountName"] == "flokoa-controller"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    assert set(container["resources"]) == {"requests", "limits"}
    service = _one(built["default"], "Service", "flokoa-controller-metrics")
    assert service["spec"]["selector"].items() <= pod_labels(deployment).items()


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def _rules(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{d['kind']}/{d['metadata']['name']}", rule)
        for d in docs
        if d["kind"] in ("Role", "ClusterRole")
        for rule in d["rules"]
    ]


@pytest.mark.parametrize("variant", ["default", "namespaced"])
def test_rbac_is_least_privilege(built: dict[str, Any], variant: str) -> None:
    rules = _rules(built[variant])
    granted: dict[tuple[str, str], set[str]] = {}
    for where, rule in rules:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], f"wildcard in {where}"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    assert granted == {
        # what the operator's requests use, as a real kube-apiserver's audit log showed
        # (issue 13): informers list and watch, status is merge-patched, Events are core/v1
        ("agent.flokoa.ai", "modelproviders"): {"list", "watch"},
        ("agent.flokoa.ai", "models"): {"list", "watch"},
        ("agent.flokoa.ai", "modelproviders/status"): {"patch"},
        ("agent.flokoa.ai", "models/status"): {"patch"},
        ("", "secrets"): {"get", "list", "watch"},
        ("", "serviceaccounts"): {"get"},
        ("", "serviceaccounts/token"): {"create"},
        ("", "events"): {"create", "patch"},
        ("coordination.k8s.io", "leases"): {"create", "get", "update"},
    }
    lease_kinds = {w.split("/")[0] for w, r in rules if "coordination.k8s.io" in r["apiGroups"]}
    assert lease_kinds == {"Role"}, "leases are granted in the operator's namespace only"


def test_namespaced_variant_has_no_cluster_scope(built: dict[str, Any]) -> None:
    docs = built["namespaced"]
    kinds = {d["kind"] for d in docs}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
    (container,) = _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert "--namespace=$(POD_NAMESPACE)" in container["args"]
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_samples_kustomization_lists_every_sample(built: dict[str, Any]) -> None:
    files = sorted(p for p in (CONFIG / "samples").glob("*.yaml") if p.name != "kustomization.yaml")
    expected = sum(len(_documents(p)) for p in files)
    assert len(built["samples"]) == expected


def _final_stage(dockerfile: str) -> list[str]:
    lines = [line.strip() for line in dockerfile.splitlines()]
    starts = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    return lines[starts[-1] :]


def test_dockerfile_builds_a_non_root_wheel_only_image() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    stages = [line for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2, "multi-stage: builder + runtime"
    assert "ARG BASE_IMAGE=python:3.11-slim" in dockerfile
    assert "--only-binary=:all:" in dockerfile, "dependencies come as wheels: no compilers"
    final = _final_stage(dockerfile)
    assert "COPY --from=builder /opt/venv /opt/venv" in final
    assert not any(line.startswith("RUN ") for line in final), "the runtime stage installs nothing"
    assert "USER 65532:65532" in final
    assert 'ENTRYPOINT ["flokoa-controller"]' in final
    deployment = _one(_documents(CONFIG / "manager" / "manager.yaml"), "Deployment")
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 65532
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for needed in ("!pyproject.toml", "!README.md", "!flokoa_controller"):
        assert needed in ignored
