"""End to end: every provider kind becomes Ready through the cluster, the runtime and the fakes,
with its default headers on the wire, a complete status, and its Model found."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from flokoa_envtest.fakes import DEFAULT_ROLE_ARN, FakeEndpoint
from google.auth.compute_engine import _metadata
from prometheus_client import REGISTRY

from flokoa_controller.controllers.identity import AmbientPolicy

if TYPE_CHECKING:
    from conftest import Harness


@dataclass
class Scenario:
    """One provider configuration expected to become Ready."""

    name: str
    kind: str
    spec: dict[str, Any]
    model: str
    endpoint: FakeEndpoint
    secrets: dict[str, dict[str, str | bytes]] = field(default_factory=dict)
    model_reason: str = "ModelFound"
    """The Model's Ready reason (``DeploymentNotVerified``: no model request is made)."""


def ready_scenarios(h: Harness) -> list[Scenario]:
    """A working configuration of every provider kind and credential style (Secrets only)."""
    f = h.fakes
    sa = f.google_oauth.issue_service_account(project_id="fake-project")
    aws = f.aws_credentials.add_static()
    return [
        Scenario(
            "openai",
            "openai",
            {
                "apiKeySecretRef": {"name": "openai-key"},
                "openai": {"baseURL": f.openai.base_url, "organizationID": "org-1"},
            },
            "gpt-4o-mini",
            f.openai,
            {"openai-key": {"api-key": f.openai.api_key}},
        ),
        Scenario(
            "azure-classic",
            "openai",
            {
                "apiKeySecretRef": {"name": "azure-key"},
                "openai": {"baseURL": f"{f.azure.url}/openai", "apiVersion": "2024-10-21"},
            },
            # as config/samples/azure-openai-classic.yaml: a deployment named unlike its model
            "my-gpt-4o-deployment",
            f.azure,
            {"azure-key": {"api-key": f.azure.api_key}},
            model_reason="DeploymentNotVerified",
        ),
        Scenario(
            "azure-v1",
            "openai",
            {
                "apiKeySecretRef": {"name": "azure-key"},
                "openai": {"baseURL": f.azure.v1_base_url, "apiVersion": "preview"},
            },
            "gpt-4o",
            f.azure,
            {"azure-key": {"api-key": f.azure.api_key}},
        ),
        Scenario(
            "anthropic",
            "anthropic",
            {
                "apiKeySecretRef": {"name": "ant-key"},
                "anthropic": {"baseURL": f.anthropic.base_url},
            },
            "claude-sonnet-4-20250514",
            f.anthropic,
            {"ant-key": {"api-key": f.anthropic.api_key}},
        ),
        Scenario(
            "gemini",
            "google",
            {"apiKeySecretRef": {"name": "gemini-key"}, "google": {"baseURL": f.gemini.base_url}},
            "gemini-2.0-flash",
            f.gemini,
            {"gemini-key": {"api-key": f.gemini.api_key}},
        ),
        Scenario(
            "vertex",
            "google",
            {
                "google": {
                    "baseURL": f.vertex.base_url,
                    "vertex": {
                        "projectID": "fake-project",
                        "location": "us-central1",
                        "serviceAccountKeySecretRef": {"name": "vertex-sa"},
                    },
                }
            },
            "gemini-2.5-pro",
            f.vertex,
            {"vertex-sa": {"credentials.json": json.dumps(sa)}},
        ),
        Scenario(
            "bedrock",
            "bedrock",
            {
                "bedrock": {
                    "region": "us-east-1",
                    "endpointURL": f.bedrock.url,
                    "credentialsSecretRef": {"name": "aws-keys"},
                }
            },
            "meta.llama3-70b-instruct-v1:0",
            f.bedrock,
            {
                "aws-keys": {
                    "AWS_ACCESS_KEY_ID": aws.access_key_id,
                    "AWS_SECRET_ACCESS_KEY": aws.secret_access_key,
                }
            },
        ),
        Scenario(
            "bedrock-api-key",
            "bedrock",
            {
                "apiKeySecretRef": {"name": "bedrock-key"},
                "bedrock": {"region": "us-east-1", "endpointURL": f.bedrock.url},
            },
            "amazon.titan-text-express-v1",
            f.bedrock,
            {"bedrock-key": {"api-key": f.bedrock.api_keys.new()}},
        ),
    ]


async def test_every_kind_becomes_ready_with_headers_status_and_model(harness: Harness) -> None:
    h = harness
    scenarios = ready_scenarios(h)
    for s in scenarios:
        for name, data in s.secrets.items():
            await h.put_secret(name, data)
        spec = {**s.spec, "defaultHeaders": {"X-Tenant-ID": f"tenant-{s.name}"}}
        await h.put_provider(s.name, spec)
        await h.put_model(f"{s.name}-model", s.name, s.model)

    for s in scenarios:
        obj = await h.wait_reason("provider", s.name, "ProbeSucceeded", status="True")
        status = obj["status"]
        assert status["ready"] is True
        assert status["provider"] == s.kind
        assert status["observedGeneration"] == obj["metadata"]["generation"]
        assert re.fullmatch(r"[0-9a-f]{64}", status["secretHash"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", status["lastProbeTime"])
        assert status["endpoint"].startswith("http://127.0.0.1:")
        for type_, reason in (
            ("SecretResolved", "SecretFound"),
            ("CredentialsValid", "CredentialsAccepted"),
            ("EndpointReachable", "EndpointResponded"),
        ):
            cond = h.condition(obj, type_)
            assert (cond["status"], cond["reason"]) == ("True", reason), cond
            assert cond["observedGeneration"] == obj["metadata"]["generation"]
        ready = h.ready_condition(obj)
        assert ready is not None
        assert "127.0.0.1" in ready["message"]  # names the URL probed
        assert "200" in ready["message"]  # and the HTTP status
        model = await h.wait_reason("model", f"{s.name}-model", s.model_reason, status="True")
        assert model["status"]["ready"] is True
        assert model["status"]["provider"] == s.kind
        assert h.condition(model, "ProviderReady")["status"] == "True"
        # defaultHeaders reach the provider, on the provider probe and the model check alike
        tagged = [r for r in s.endpoint.requests if r.header("X-Tenant-ID") == f"tenant-{s.name}"]
        checked = any(s.model.split(":")[0] in r.path for r in tagged)
        if s.model_reason == "DeploymentNotVerified":
            available = h.condition(model, "ModelAvailable")
            assert (available["status"], available["reason"]) == ("Unknown", s.model_reason)
            assert f'deployment "{s.model}" not verified' in available["message"]
            assert tagged, f"{s.name}: default header not seen by the fake"
            assert not checked, f"{s.name}: a classic deployment cannot be checked for free"
            continue
        assert h.condition(model, "ModelAvailable")["status"] == "True"
        assert len(tagged) >= 2, f"{s.name}: default header not seen by the fake"
        assert checked, s.name

    # Ready from the first probe: the status says so, no Normal event is written
    await h.controllers.recorder.flush()
    normal = [e["reason"] for e in await h.events() if e["type"] == "Normal"]
    assert normal == [], normal
    ok = REGISTRY.get_sample_value(
        "flokoa_provider_probe_total", {"provider": "bedrock", "result": "ProbeSucceeded"}
    )
    assert ok is not None
    assert ok >= 2
    gauge = REGISTRY.get_sample_value(
        "flokoa_modelproviders", {"provider": "openai", "ready": "true"}
    )
    assert gauge is not None
    assert gauge >= 3


async def test_ambient_identities_need_no_secret(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Vertex through the metadata server (Workload Identity); Bedrock through IRSA: the
    operator's own identity, in a namespace the administrator allows."""
    h = harness
    f = h.fakes
    h.controllers.provider_reconciler.prober.ambient = AmbientPolicy.of([h.namespace])
    monkeypatch.setenv("GCE_METADATA_HOST", f.metadata.address)
    monkeypatch.setenv("GCE_METADATA_IP", f.metadata.address)
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", f.metadata.address)
    token_file = tmp_path / "token"
    token_file.write_text(f.sts.new_web_identity_token())
    monkeypatch.setenv("AWS_ROLE_ARN", DEFAULT_ROLE_ARN)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f.sts.url)

    await h.put_provider(
        "vertex-wi",
        {
            "google": {
                "baseURL": f.vertex.base_url,
                "vertex": {"projectID": "fake-project", "location": "global"},
            }
        },
    )
    await h.put_provider(
        "bedrock-irsa", {"bedrock": {"region": "us-east-1", "endpointURL": f.bedrock.url}}
    )
    for name in ("vertex-wi", "bedrock-irsa"):
        obj = await h.wait_reason("provider", name, "ProbeSucceeded", status="True")
        resolved = h.condition(obj, "SecretResolved")
        assert (resolved["status"], resolved["reason"]) == ("True", "NoSecretReferenced")
    assert f.sts.requests, "IRSA went through STS AssumeRoleWithWebIdentity"
    assert f.metadata.requests, "Workload Identity went through the metadata server"
