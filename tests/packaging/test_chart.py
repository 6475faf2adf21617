"""The Helm chart: lint-clean, valid for Kubernetes 1.32, and the same install as kustomize.

``helm template`` with the default values must render what ``kubectl kustomize config/default``
builds (less the Namespace, which a chart does not own), and ``scope: namespace`` what
``config/namespaced`` builds: the same kinds and names, RBAC rules, and the same Deployment
spec (args, env, security contexts, probes, volumes...) but for the image reference.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from flokoa_envtest.testing import kustomize_build, rendered_objects

from flokoa_controller.api import crdgen
from flokoa_controller.runtime.options import DEFAULT_LEADER_ELECTION_ID

from .conftest import load_hack

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "flokoa-controller"
CONFIG = REPO / "config"
NAMESPACE = "flokoa-system"
RELEASE = "flokoa-controller"
KUBERNETES_VERSION = "1.32.0"
NAMESPACED_VALUES = CHART / "ci" / "namespaced-values.yaml"
MONITORING_VALUES = CHART / "ci" / "monitoring-values.yaml"
COMPONENT_LINES = ("#components:", "#  - ../components/prometheus")

Obj = dict[str, Any]
Key = tuple[str, str, str]


def helm_template(helm: str, *args: str, namespace: str = NAMESPACE) -> list[Obj]:
    """The objects ``helm template`` renders (CRDs included)."""
    return rendered_objects(
        helm, "template", RELEASE, str(CHART), "--namespace", namespace, "--include-crds", *args
    )


def helm_fails(helm: str, *args: str) -> str:
    """The error output of a ``helm template`` that must fail."""
    result = subprocess.run(
        [helm, "template", RELEASE, str(CHART), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0, f"helm template {args} rendered:\n{result.stdout[:2000]}"
    return result.stderr


def key(obj: Obj) -> Key:
    return (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def by_key(objs: Iterable[Obj]) -> dict[Key, Obj]:
    indexed: dict[Key, Obj] = {}
    for obj in objs:
        assert key(obj) not in indexed, f"rendered twice: {key(obj)}"
        indexed[key(obj)] = obj
    return indexed


def one(objs: Iterable[Obj], kind: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind]
    assert len(found) == 1, [key(o) for o in found]
    return found[0]


def container(objs: Iterable[Obj]) -> Obj:
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["manager"]
    found: Obj = pod["containers"][0]
    return found


def without_image(deployment: Obj) -> Obj:
    spec = json.loads(json.dumps(deployment["spec"]))
    for c in spec["template"]["spec"]["containers"]:
        c.pop("image")
    return spec


def assert_same_install(chart: list[Obj], kustomized: list[Obj]) -> None:
    """The chart renders the objects kustomize builds, with the same content that matters."""
    expected = by_key(o for o in kustomized if o["kind"] != "Namespace")
    rendered = by_key(chart)
    assert sorted(rendered) == sorted(expected)
    for k, want in expected.items():
        got = rendered[k]
        assert got["apiVersion"] == want["apiVersion"], k
        kind = k[0]
        # Every kustomize label is there (Helm adds instance, version, managed-by, chart);
        # the CRDs are crds/ verbatim (Helm does not template them).
        labels = want["metadata"].get("labels", {})
        if kind != "CustomResourceDefinition":
            assert labels.items() <= got["metadata"].get("labels", {}).items(), k
        if kind in ("ClusterRole", "Role"):
            assert got["rules"] == want["rules"], k
        elif kind in ("ClusterRoleBinding", "RoleBinding"):
            assert (got["roleRef"], got["subjects"]) == (want["roleRef"], want["subjects"]), k
        elif kind == "Deployment":
            assert without_image(got) == without_image(want)
        elif kind in (
            "Service",
            "PodDisruptionBudget",
            "CustomResourceDefinition",
            "PrometheusRule",
        ):
            assert got["spec"] == want["spec"], k
        elif kind == "ServiceMonitor":
            assert got["spec"]["endpoints"] == want["spec"]["endpoints"]
            # The chart's selector also names the release, so that two releases do not mix.
            assert want["spec"]["selector"]["matchLabels"].items() <= (
                got["spec"]["selector"]["matchLabels"].items()
            )
        else:
            assert kind == "ServiceAccount", f"no comparison for {k}"
    # The comparisons above looked at what matters most; say it once more for the container.
    assert container(chart)["args"] == container(kustomized)["args"]
    assert container(chart)["env"] == container(kustomized)["env"]
    assert container(chart)["securityContext"] == container(kustomized)["securityContext"]


def with_monitoring_component(tmp_path: Path, variant: str) -> Path:
    """A copy of config/ whose ``variant`` enables the documented Prometheus component."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    kustomization = config / variant / "kustomization.yaml"
    text = kustomization.read_text(encoding="utf-8")
    for line in COMPONENT_LINES:
        assert line in text.splitlines(), f"config/{variant} lacks {line!r}"
        text = text.replace(line, line[1:])
    kustomization.write_text(text, encoding="utf-8")
    return config / variant


# --- the chart as a chart -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [(), (NAMESPACED_VALUES,), (MONITORING_VALUES,), (NAMESPACED_VALUES, MONITORING_VALUES)],
    ids=["default", "namespaced", "monitoring", "namespaced+monitoring"],
)
def test_helm_lint_strict(helm: str, values: tuple[Path, ...]) -> None:
    args = [arg for v in values for arg in ("--values", str(v))]
    result = subprocess.run(
        [helm, "lint", "--strict", str(CHART), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout, result.stdout
    assert "[ERROR]" not in result.stdout, result.stdout


def test_chart_crds_are_the_generated_ones() -> None:
    """crds/ holds exactly the CRDs of config/crd, byte for byte (`make manifests`)."""
    committed = {p.name: p.read_text(encoding="utf-8") for p in (CHART / "crds").iterdir()}
    assert committed == crdgen.render_crds(), "charts/flokoa-controller/crds: run `make manifests`"
    for name, content in committed.items():
        assert (CONFIG / "crd" / name).read_text(encoding="utf-8") == content


def test_chart_files_are_copies_of_their_sources() -> None:
    """files/ carries the alert rules and the dashboard of config/ unchanged and the rules of
    config/rbac/role.yaml (`make manifests`), nothing else."""
    chart_files = load_hack("chart_files")
    for source, (copy, _) in chart_files.COPIES.items():
        assert copy.read_bytes() == chart_files.expected(source), (
            f"{copy} is stale: run `make manifests`"
        )
    assert sorted(p.name for p in (CHART / "files").iterdir()) == sorted(
        copy.name for copy, _ in chart_files.COPIES.values()
    )


def test_chart_version_follows_the_package() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == project["version"] == chart["version"]


# --- the same install as kustomize ----------------------------------------------------------------


def test_default_values_render_config_default(helm: str, kubectl_bin: str) -> None:
    chart = helm_template(helm)
    assert_same_install(chart, kustomize_build(kubectl_bin, CONFIG / "default"))


def test_namespaced_values_render_config_namespaced(helm: str, kubectl_bin: str) -> None:
    chart = helm_template(helm, "--values", str(NAMESPACED_VALUES))
    kustomized = kustomize_build(kubectl_bin, CONFIG / "namespaced")
    # config/namespaced leaves the CRDs to an administrator (config/crd); Helm installs them
    # from crds/ when they are absent.
    crds = [o for o in chart if o["kind"] == "CustomResourceDefinition"]
    assert len(crds) == 2
    assert_same_install([o for o in chart if o not in crds], kustomized)
    assert not [o for o in chart if o["kind"].startswith("Cluster")]


@pytest.mark.parametrize("variant", ["default", "namespaced"])
def test_monitoring_values_render_the_prometheus_component(
    helm: str, kubectl_bin: str, tmp_path: Path, variant: str
) -> None:
    values = ["--values", str(MONITORING_VALUES)]
    if variant == "namespaced":
        values += ["--values", str(NAMESPACED_VALUES)]
    chart = helm_template(helm, *values)
    kustomized = kustomize_build(kubectl_bin, with_monitoring_component(tmp_path, variant))
    if variant == "namespaced":
        chart = [o for o in chart if o["kind"] != "CustomResourceDefinition"]
    dashboard = one(chart, "ConfigMap")
    assert_same_install([o for o in chart if o is not dashboard], kustomized)
    monitor = one(chart, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = one(chart, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )
    # The Grafana sidecar's label, and the dashboard unchanged.
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    source = (CONFIG / "grafana" / "flokoa-controller.json").read_text(encoding="utf-8")
    assert json.loads(dashboard["data"]["flokoa-controller.json"]) == json.loads(source)


def test_monitoring_is_off_by_default(helm: str) -> None:
    kinds = {o["kind"] for o in helm_template(helm)}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "ConfigMap"}


# --- valid for Kubernetes 1.32 --------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [(), (NAMESPACED_VALUES, MONITORING_VALUES), (MONITORING_VALUES,)],
    ids=["default", "namespaced+monitoring", "monitoring"],
)
def test_rendered_objects_pass_kubernetes_validate_strict(
    helm: str, values: tuple[Path, ...]
) -> None:
    args = [arg for v in values for arg in ("--values", str(v))]
    if NAMESPACED_VALUES not in values:
        args += CLUSTER_SCOPE_SET
    objs = helm_template(helm, *args, *FULL_SET)
    checked = 0
    for obj in objs:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # not a built-in kind: kubernetes-validate has no schema for it
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 9


# --- values --------------------------------------------------------------------------------------

FULL_SET = (
    "--set=leaderElection.id=custom.lease",
    "--set=leaderElection.leaseDuration=20s",
    "--set=leaderElection.renewDeadline=15s",
    "--set=leaderElection.retryPeriod=3s",
    "--set=controller.providerRevalidateInterval=30m",
    "--set=controller.maxConcurrentReconciles=8",
    "--set=controller.probeConcurrencyPerHost=2",
    "--set=controller.probeConnectTimeout=5s",
    "--set=controller.maxProbeTimeout=20s",
    "--set=controller.maxConcurrentProbes=32",
    "--set=controller.maxConcurrentProbesPerNamespace=4",
    "--set=controller.denyDestinations={203.0.113.0/24,*.corp.example}",
    "--set=controller.allowDestinations={10.20.0.0/16}",
    "--set=controller.ambientIdentityNamespaces={platform,ops}",
    "--set=controller.googleWorkloadIdentityAudience=//iam.googleapis.com/projects/1/"
    "locations/global/workloadIdentityPools/p/providers/k",
    "--set=controller.googleTokenAudience=PROJECT.svc.id.goog",
    "--set=controller.googleStsEndpoint=https://sts.private.example/v1/token",
    "--set=controller.googleIamCredentialsEndpoint=https://iam.private.example",
    "--set=controller.googleTokenUris={https://oauth2.private.example/token}",
    "--set=controller.azureAuthorityHost=https://login.microsoftonline.us",
    "--set=controller.azureTenantId=contoso.onmicrosoft.com",
    "--set=controller.identityAllowedHosts={gateway.internal,*.llm.corp}",
    "--set=controller.gracefulShutdownTimeout=20s",
    "--set=controller.cacheSyncTimeout=5m",
    "--set=controller.watchInactivityTimeout=0",
    "--set=controller.streamingList=false",
    "--set=controller.syncPeriod=1h30m",
    "--set=controller.eventLoop=asyncio",
    "--set=controller.logFormat=json",
    "--set=controller.logLevel=debug",
    "--set=priorityClassName=system-cluster-critical",
    "--set=nodeSelector.kubernetes\\.io/os=linux",
    '--set-json=tolerations=[{"key":"dedicated","operator":"Exists"}]',
    '--set-json=extraEnv=[{"name":"HTTPS_PROXY","value":"http://proxy:3128"}]',
    '--set-json=extraArgs=["--log-level=warning"]',
    "--set=serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/x",
    '--set-json=imagePullSecrets=[{"name":"regcred"}]',
    "--set=image.repository=registry.example.com/flokoa-controller",
    "--set=image.tag=0.1.0",
)
"""Every value with a flag or a pod setting behind it, set away from its default."""

CLUSTER_SCOPE_SET = ("--set=namespaces={team-a,team-b}",)
"""The values only ``scope: cluster`` takes."""

NOT_IN_VALUES = {
    "--kubeconfig": "in a pod the operator uses its ServiceAccount",
    "--context": "in a pod the operator uses its ServiceAccount",
    "--leader-election-namespace": "the Lease is in the release namespace (the RBAC is there)",
    "--help": "not a setting",
}
"""Flags of `flokoa-controller run` the chart deliberately has no value for (extraArgs can
still pass them)."""


def run_parser() -> argparse.ArgumentParser:
    from flokoa_controller.cli import build_parser

    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            run: argparse.ArgumentParser = action.choices["run"]
            return run
    raise AssertionError("no run subcommand")


def test_every_value_becomes_a_flag_the_operator_accepts(helm: str) -> None:
    objs = helm_template(helm, *FULL_SET, *CLUSTER_SCOPE_SET)
    args = container(objs)["args"]
    assert args[0] == "run"
    parser = run_parser()
    parsed = parser.parse_args([a.replace("$(POD_NAMESPACE)", NAMESPACE) for a in args[1:]])
    assert "team-b" in str(parsed.namespaces)
    assert parsed.leader_election_id == "custom.lease"
    assert parsed.streaming_list is False
    # extraArgs come last, so they win over the chart's own values.
    assert args[-1] == "--log-level=warning"
    assert parsed.log_level == "warning"
    # Every flag users set has a value (or is passed through extraArgs on purpose).
    rendered = {a.split("=", 1)[0] for a in args[1:]} | {"--streaming-list"}
    flags = {
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and not option.startswith("--no-")
    }
    missing = flags - rendered - set(NOT_IN_VALUES)
    assert not missing, f"flags without a chart value (add one, or to NOT_IN_VALUES): {missing}"


def test_values_reach_the_pod(helm: str) -> None:
    objs = helm_template(helm, *FULL_SET)
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    manager = container(objs)
    assert manager["image"] == "registry.example.com/flokoa-controller:0.1.0"
    assert manager["env"][-1] == {"name": "HTTPS_PROXY", "value": "http://proxy:3128"}
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    account = one(objs, "ServiceAccount")
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"
    }
    lease_role = one(objs, "Role")
    assert lease_role["rules"][1]["resourceNames"] == ["custom.lease"]


def test_default_lease_is_the_operators_default(helm: str) -> None:
    role = one(helm_template(helm), "Role")
    assert role["rules"][1]["resourceNames"] == [DEFAULT_LEADER_ELECTION_ID]
    args = container(helm_template(helm))["args"]
    assert not any(a.startswith("--leader-election-id") for a in args)


def test_image_digest_wins_over_the_tag(helm: str) -> None:
    digest = "sha256:" + "a" * 64
    objs = helm_template(helm, f"--set=image.digest={digest}", "--set=image.tag=9.9.9")
    assert container(objs)["image"] == f"flokoa-controller@{digest}"
    assert container(helm_template(helm))["image"] == "flokoa-controller:0.1.0"


def test_leader_election_off_drops_the_flag_and_the_lease_rbac(helm: str) -> None:
    objs = helm_template(helm, "--set=replicas=1", "--set=leaderElection.enabled=false")
    assert "--leader-elect" not in container(objs)["args"]
    assert not [o for o in objs if o["kind"] in ("Role", "RoleBinding")]
    namespaced = helm_template(
        helm, "--set=replicas=1,scope=namespace", "--set=leaderElection.enabled=false"
    )
    assert not [
        r for r in one(namespaced, "Role")["rules"] if "coordination.k8s.io" in r["apiGroups"]
    ]


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("replicas=two", "/replicas"),
        ("scope=everywhere", "/scope"),
        ("controller.syncPeriod=10y", "/controller/syncPeriod"),
        ("controller.logLevel=verbose", "/controller/logLevel"),
        ("controller.maxConcurrentReconciles=0", "/controller/maxConcurrentReconciles"),
        ("metrics.port=80800", "/metrics/port"),
        ("replica=2", "replica"),
        ("extraArgs[0]=oops", "/extraArgs/0"),
    ],
)
def test_schema_rejects_a_wrong_value_naming_it(helm: str, setting: str, named: str) -> None:
    error = helm_fails(helm, "--set", setting)
    assert "schema" in error, error
    assert named in error, error


def test_several_replicas_without_leader_election_fail(helm: str) -> None:
    error = helm_fails(helm, "--set=replicas=2,leaderElection.enabled=false")
    assert "leaderElection.enabled" in error


def test_namespaces_with_namespace_scope_fail(helm: str) -> None:
    error = helm_fails(helm, "--set=scope=namespace", "--set=namespaces={team-b}")
    assert "namespaces applies to scope: cluster" in error
