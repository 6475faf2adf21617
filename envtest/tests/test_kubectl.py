"""The kubectl matrix: the real preinstalled kubectl (v1.32) against the ``cluster`` fixture.

Runs against envtest by default and against a real cluster when FLOKOA_TEST_KUBECONFIG is
set, so the two can be compared command by command.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from flokoa_envtest.testing import Kubectl

REPO = Path(__file__).resolve().parents[2]
CRD_FILES = sorted(str(p) for p in (REPO / "config" / "crd").glob("agent.flokoa.ai_*.yaml"))
SAMPLE = REPO / "config" / "samples" / "openai.yaml"


@pytest.fixture
async def ns(kubectl: Kubectl) -> AsyncIterator[str]:
    """A fresh namespace, deleted afterwards (so a real cluster is left clean).

    Its objects are deleted first: nothing counts on the namespace controller finishing the
    namespace's deletion (a bare kube-apiserver has none; it stays Terminating)."""
    name = f"kt-{uuid.uuid4().hex[:8]}"
    await kubectl("create", "namespace", name)
    yield name
    await kubectl(
        "delete", "models,modelproviders,secrets", "--all", "-n", name, "--wait=false", check=False
    )
    await kubectl("delete", "namespace", name, "--wait=false", check=False)


def _provider(name: str, **spec: object) -> str:
    return json.dumps(
        {
            "apiVersion": "agent.flokoa.ai/v1alpha1",
            "kind": "ModelProvider",
            "metadata": {"name": name},
            "spec": spec or {"apiKeySecretRef": {"name": "openai-credentials"}, "openai": {}},
        }
    )


async def test_apply_crds_and_wait_established(kubectl: Kubectl) -> None:
    args = ["apply"]
    for f in CRD_FILES:
        args += ["-f", f]
    out = await kubectl(*args)
    assert "modelproviders.agent.flokoa.ai" in out.stdout
    await kubectl(
        "wait",
        "--for=condition=Established",
        "crd/modelproviders.agent.flokoa.ai",
        "crd/models.agent.flokoa.ai",
        "--timeout=30s",
    )
    again = await kubectl(*args)
    assert "unchanged" in again.stdout or "configured" in again.stdout


async def test_apply_sample_get_columns_patch_status_describe(kubectl: Kubectl, ns: str) -> None:
    await kubectl("apply", "-n", ns, "-f", str(SAMPLE))  # default (server-side) validation
    header = (await kubectl("get", "modelprovider", "-n", ns)).stdout.splitlines()[0].split()
    assert header == ["NAME", "PROVIDER", "READY", "REASON", "AGE"]
    patch = {
        "status": {
            "provider": "openai",
            "ready": True,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "ProbeSucceeded",
                    "message": "reachable",
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                }
            ],
        }
    }
    await kubectl(
        "patch", "modelprovider", "openai", "-n", ns,
        "--subresource=status", "--type=merge", "-p", json.dumps(patch),
    )  # fmt: skip
    row = (await kubectl("get", "mp", "openai", "-n", ns, "--no-headers")).stdout.split()
    assert row[:4] == ["openai", "openai", "true", "ProbeSucceeded"]
    models = (await kubectl("get", "models", "-n", ns)).stdout.splitlines()
    assert models[0].split() == ["NAME", "MODEL", "PROVIDER", "READY", "AGE"]
    assert models[1].split()[:3] == ["gpt-4o-mini", "gpt-4o-mini", "openai"]

    uid = (await kubectl("get", "mp", "openai", "-n", ns, "-o", "jsonpath={.metadata.uid}")).stdout
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "openai.probe", "namespace": ns},
        "involvedObject": {
            "apiVersion": "agent.flokoa.ai/v1alpha1",
            "kind": "ModelProvider",
            "name": "openai",
            "namespace": ns,
            "uid": uid,
        },
        "reason": "ProbeSucceeded",
        "message": "models endpoint answered 200",
        "type": "Normal",
        "source": {"component": "flokoa-controller"},
        "count": 1,
    }
    await kubectl("create", "-f", "-", input=json.dumps(event))
    described = (await kubectl("describe", "modelprovider", "openai", "-n", ns)).stdout
    assert "models endpoint answered 200" in described
    assert "flokoa-controller" in described
    assert "Events:" in described
    assert "<none>" not in described.split("Events:")[1]


async def test_get_watch_prints_added_then_modified(kubectl: Kubectl, ns: str) -> None:
    await kubectl("apply", "-n", ns, "-f", "-", input=_provider("watched"))
    watch = await kubectl.start("get", "modelprovider", "-n", ns, "-w", "--output-watch-events")
    first = await watch.wait_for_line(lambda line: "watched" in line)
    assert first.split()[0] == "ADDED"
    await kubectl(
        "patch", "mp", "watched", "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"provider": "openai", "ready": False}}),
    )  # fmt: skip
    modified = await watch.wait_for_line(lambda line: line.startswith("MODIFIED"))
    assert modified.split()[1:4] == ["watched", "openai", "false"]
    await watch.stop()


async def test_create_secret_generic_round_trips(kubectl: Kubectl, ns: str) -> None:
    await kubectl(
        "create", "secret", "generic", "creds", "-n", ns,
        "--from-literal=api-key=sk-test-123", "--from-literal=org=acme",
    )  # fmt: skip
    data = (
        await kubectl("get", "secret", "creds", "-n", ns, "-o", "jsonpath={.data.api-key}")
    ).stdout
    assert base64.b64decode(data) == b"sk-test-123"
    stype = (await kubectl("get", "secret", "creds", "-n", ns, "-o", "jsonpath={.type}")).stdout
    assert stype == "Opaque"


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


async def test_create_token_mints_a_service_account_token(kubectl: Kubectl, ns: str) -> None:
    await kubectl("create", "serviceaccount", "agent", "-n", ns)
    token = (
        await kubectl(
            "create", "token", "agent", "-n", ns, "--audience=sts.amazonaws.com",
            "--duration=10m",
        )
    ).stdout.strip()  # fmt: skip
    claims = _claims(token)
    assert claims["sub"] == f"system:serviceaccount:{ns}:agent"
    assert claims["aud"] == ["sts.amazonaws.com"]
    assert isinstance(claims["exp"], int)
    assert isinstance(claims["iat"], int)
    assert claims["exp"] - claims["iat"] == 600
    short = await kubectl("create", "token", "agent", "-n", ns, "--duration=5m", check=False)
    assert short.returncode != 0
    assert (
        'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid '
        "value: 300: may not specify a duration less than 10 minutes"
    ) in short.stderr
    missing = await kubectl("create", "token", "nobody", "-n", ns, check=False)
    assert missing.returncode != 0
    assert 'serviceaccounts "nobody" not found' in missing.stderr


async def test_delete_with_and_without_finalizer(kubectl: Kubectl, ns: str) -> None:
    await kubectl("apply", "-n", ns, "-f", "-", input=_provider("plain"))
    await kubectl("delete", "mp", "plain", "-n", ns, "--timeout=30s")
    gone = await kubectl("get", "mp", "plain", "-n", ns, check=False)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr

    held = json.loads(_provider("held"))
    held["metadata"]["finalizers"] = ["agent.flokoa.ai/test"]
    await kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(held))
    await kubectl("delete", "mp", "held", "-n", ns, "--wait=false")
    stamp = await kubectl(
        "get", "mp", "held", "-n", ns, "-o", "jsonpath={.metadata.deletionTimestamp}"
    )
    assert stamp.stdout  # still there, being deleted
    await kubectl(
        "patch", "mp", "held", "-n", ns, "--type=json",
        "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]',
    )  # fmt: skip
    await kubectl("wait", "--for=delete", "mp/held", "-n", ns, "--timeout=30s")


async def test_invalid_object_is_refused_with_the_cel_message(kubectl: Kubectl, ns: str) -> None:
    bad = _provider("bad", apiKeySecretRef={"name": "s"}, openai={}, anthropic={})
    result = await kubectl("apply", "-n", ns, "-f", "-", input=bad, check=False)
    assert result.returncode != 0
    assert "exactly one of openai, anthropic, google or bedrock must be set" in result.stderr
    unknown = json.loads(_provider("unknown"))
    unknown["spec"]["bogus"] = 1
    result = await kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(unknown), check=False)
    assert result.returncode != 0
    assert 'unknown field "spec.bogus"' in result.stderr


async def test_api_resources_short_names_categories_and_get_by_category(
    kubectl: Kubectl, ns: str
) -> None:
    listing = (await kubectl("api-resources", "--api-group=agent.flokoa.ai", "-o", "wide")).stdout
    rows = {line.split()[0]: line for line in listing.splitlines()[1:]}
    assert " mp " in rows["modelproviders"]
    assert "flokoa" in rows["modelproviders"]
    assert " mdl " in rows["models"]
    assert "flokoa" in rows["models"]
    await kubectl("apply", "-n", ns, "-f", str(SAMPLE))
    names = (await kubectl("get", "flokoa", "-n", ns, "-o", "name")).stdout.split()
    assert sorted(names) == [
        "model.agent.flokoa.ai/gpt-4o-mini",
        "modelprovider.agent.flokoa.ai/openai",
    ]


async def test_apply_twice_updates_built_ins_and_custom_objects(kubectl: Kubectl, ns: str) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    await kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(cm))
    cm["data"] = {"b": "2"}
    await kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(cm))  # strategic merge patch
    data = (await kubectl("get", "cm", "c", "-n", ns, "-o", "jsonpath={.data}")).stdout
    assert json.loads(data) == {"b": "2"}
    provider = json.loads(_provider("p"))
    await kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(provider))
    provider["spec"]["openai"] = {"timeoutSeconds": 5}
    await kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(provider))  # merge patch
    timeout = await kubectl(
        "get", "mp", "p", "-n", ns, "-o", "jsonpath={.spec.openai.timeoutSeconds}"
    )
    assert timeout.stdout == "5"


async def test_get_sort_by_a_spec_field(kubectl: Kubectl, ns: str) -> None:
    # --sort-by makes kubectl ask for Tables with includeObject=Object and sort on the objects.
    for name, url in (
        ("a-provider", "https://z.example/v1"),
        ("z-provider", "https://a.example/v1"),
    ):
        body = _provider(name, apiKeySecretRef={"name": "s"}, openai={"baseURL": url})
        await kubectl("apply", "-n", ns, "-f", "-", input=body)
    out = (await kubectl("get", "mp", "-n", ns, "--sort-by=.spec.openai.baseURL")).stdout
    names = [line.split()[0] for line in out.splitlines()[1:]]
    assert names == ["z-provider", "a-provider"]
