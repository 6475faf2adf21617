"""Tenant identity end to end: a ModelProvider never borrows the operator's cloud identity,
and reaches the cloud as a ServiceAccount of its own namespace (envtest's TokenRequest API,
the verifying identity fakes).

The first three tests are the attacks of issue 11; each passes a request (and a token) to the
attacker on the code before the identity work.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from flokoa_envtest.testing import serve_local
from google.auth.compute_engine import _metadata

from flokoa_controller.controllers.identity import SERVICEACCOUNTS, AmbientPolicy
from flokoa_controller.controllers.setup import ControllerSettings
from flokoa_controller.kube.resources import NAMESPACES

if TYPE_CHECKING:
    from conftest import Harness, MakeHarness

SECRET_BODY = "internal-secret-do-not-echo-7f3a9c"
"""What an internal service answers; it must never appear in status, events or logs."""


class CaptureServer:
    """Records every request (headers included) and answers ``status`` with ``body``."""

    def __init__(self, status: int = 200, body: str = "{}") -> None:
        self.status = status
        self.body = body
        self.requests: list[dict[str, str]] = []
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.headers))
        return web.Response(status=self.status, text=self.body, content_type="application/json")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[CaptureServer]:
        runner, port = await serve_local(self._handle)
        self.url = f"http://127.0.0.1:{port}"
        try:
            yield self
        finally:
            await runner.cleanup()


def _leaks(obj: Any, events: list[dict[str, Any]], logs: str, needle: str) -> bool:
    return needle in json.dumps(obj) or needle in json.dumps(events) or needle in logs


# -- the attacks --------------------------------------------------------------------------------


async def test_vertex_ambient_token_never_reaches_a_tenant_base_url(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Vertex, no key, baseURL at the tenant's server; the operator has Workload Identity."""
    h, f = harness, harness.fakes
    monkeypatch.setenv("GCE_METADATA_HOST", f.metadata.address)
    monkeypatch.setenv("GCE_METADATA_IP", f.metadata.address)
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", f.metadata.address)
    async with CaptureServer().running() as capture:
        await h.put_provider(
            "steal",
            {
                "google": {
                    "baseURL": capture.url,
                    "vertex": {"projectID": "fake-project", "location": "us-central1"},
                }
            },
        )
        obj = await h.wait_reason("provider", "steal", "AmbientIdentityNotAllowed", status="False")
        assert "--ambient-identity-namespaces" in h.ready_condition(obj)["message"]
        assert obj["status"]["identity"] == {"source": "Ambient"}
        assert not any("Authorization" in r for r in capture.requests)
        assert capture.requests == []
        assert f.metadata.requests == [], "the operator's token was not even fetched"

        # allowed to use the ambient identity, the namespace still cannot aim it elsewhere
        h.controllers.provider_reconciler.prober.ambient = AmbientPolicy.of([h.namespace])
        await h.put_provider(
            "steal",
            {
                "google": {
                    "baseURL": "http://tenant.example.invalid",
                    "vertex": {"projectID": "fake-project", "location": "us-central1"},
                }
            },
        )
        await h.wait_reason("provider", "steal", "IdentityEndpointNotAllowed", status="False")
        assert f.metadata.requests == []


async def test_token_uri_is_pinned_and_never_echoed(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A service-account key whose token_uri is an internal service answering 500."""
    caplog.set_level(logging.DEBUG)
    h, f = harness, harness.fakes
    async with CaptureServer(500, json.dumps({"error": SECRET_BODY})).running() as internal:
        key = {**f.google_oauth.issue_service_account(project_id="fake-project")}
        key["token_uri"] = internal.url + "/token"
        await h.put_secret("sa-key", {"credentials.json": json.dumps(key)})
        await h.put_provider(
            "ssrf",
            {
                "google": {
                    "baseURL": f.vertex.base_url,
                    "vertex": {
                        "projectID": "fake-project",
                        "location": "us-central1",
                        "serviceAccountKeySecretRef": {"name": "sa-key"},
                    },
                }
            },
        )
        obj = await h.wait_reason("provider", "ssrf", "TokenEndpointNotAllowed", status="False")
        events = await h.events("ssrf")
        assert internal.requests == [], "the internal service received the grant"
        assert not _leaks(obj, events, caplog.text, SECRET_BODY)
        assert internal.url.removeprefix("http://") not in json.dumps(obj)


async def test_bedrock_ambient_keys_role_and_endpoint_refused(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator has AWS keys in its environment; a tenant sets roleARN and endpointURL."""
    h, f = harness, harness.fakes
    key = f.aws_credentials.add_static()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key.secret_access_key)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f.sts.url)
    async with CaptureServer().running() as capture:
        await h.put_provider(
            "deputy",
            {
                "bedrock": {
                    "region": "us-east-1",
                    "endpointURL": capture.url,
                    "roleARN": "arn:aws:iam::123456789012:role/flokoa-probe",
                }
            },
        )
        obj = await h.wait_reason("provider", "deputy", "AmbientIdentityNotAllowed", status="False")
        assert capture.requests == []
        assert f.sts.requests == []
        assert "role/flokoa-probe" not in h.ready_condition(obj)["message"]


# -- ServiceAccount identity ---------------------------------------------------------------------


async def _service_account(
    h: Harness, name: str, annotations: dict[str, str], ns: str = ""
) -> None:
    await h.client.create(
        SERVICEACCOUNTS,
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "annotations": annotations},
        },
        ns or h.namespace,
    )


def _trust_envtest(h: Harness) -> str:
    api = h.api
    if api is None:
        pytest.skip("needs envtest's ServiceAccount issuer")
    issuer = api.service_account_issuer
    h.fakes.trust_issuer(issuer, jwks=api.jwks())
    return issuer


def _minted(h: Harness, name: str) -> int:
    assert h.api is not None
    return len(
        [
            e
            for e in h.api.audit.filter(resource="serviceaccounts", subresource="token")
            if e.name == name
        ]
    )


async def test_bedrock_with_a_service_account(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """IRSA convention: TokenRequest (aud sts.amazonaws.com) → AssumeRoleWithWebIdentity,
    named after the ModelProvider; a revoked trust shows at the next re-validation. No
    token or key reaches a log line, the status or an event."""
    caplog.set_level(logging.DEBUG)
    async with make_harness(settings=ControllerSettings(revalidate_interval=0.5)) as h:
        f = h.fakes
        issuer = _trust_envtest(h)
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f.sts.url)
        role = "arn:aws:iam::123456789012:role/team-bedrock"
        subject = f"system:serviceaccount:{h.namespace}:agent"
        f.sts.add_oidc_provider(issuer)
        f.sts.allow_web_identity(role, issuer, subject)
        await _service_account(h, "agent", {"eks.amazonaws.com/role-arn": role})
        spec = {
            "serviceAccountName": "agent",
            "bedrock": {"region": "us-east-1", "endpointURL": f.bedrock.url},
        }
        await h.put_provider("irsa", spec)
        obj = await h.wait_reason("provider", "irsa", "ProbeSucceeded", status="True")
        assert obj["status"]["identity"] == {
            "source": "ServiceAccount",
            "serviceAccountName": "agent",
        }
        session = f.sts.sessions[-1]
        assert (session.action, session.role_arn, session.subject) == (
            "AssumeRoleWithWebIdentity",
            role,
            subject,
        )
        assert session.role_session_name == f"flokoa-{h.namespace}-irsa"
        assert f.bedrock.principals[-1].endswith(
            f"assumed-role/team-bedrock/flokoa-{h.namespace}-irsa"
        )
        assert _minted(h, "agent") >= 1
        await h.put_model("titan", "irsa", "amazon.titan-text-express-v1")
        await h.wait_reason("model", "titan", "ModelFound", status="True")

        f.sts.trust_policy.revoke(subject=subject)
        bad = await h.wait_reason("provider", "irsa", "TokenExchangeFailed", status="False")
        assert "AccessDenied" in h.ready_condition(bad)["message"]
        events = await h.events("irsa")
        issued = [f.aws_credentials.keys[s.access_key_id] for s in f.sts.sessions]
        for secret in [k.secret_access_key for k in issued] + [k.session_token for k in issued]:
            assert secret
            assert not _leaks(bad, events, caplog.text, secret)
        assert "eyJ" not in caplog.text + json.dumps(bad) + json.dumps(events)


async def test_service_account_of_another_namespace(harness: Harness) -> None:
    """A provider naming a ServiceAccount that exists only in another namespace: no token."""
    h = harness
    if h.api is None:
        pytest.skip("needs the envtest audit log")
    ns = f"{h.namespace}-a"
    await h.client.create(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    )
    h.created_namespaces.append(ns)
    await _service_account(
        h, "shared-agent", {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"}, ns
    )
    await h.put_provider(
        "borrow",
        {"serviceAccountName": "shared-agent", "bedrock": {"region": "us-east-1"}},
    )
    obj = await h.wait_reason("provider", "borrow", "ServiceAccountNotFound", status="False")
    assert h.namespace in h.ready_condition(obj)["message"]
    assert _minted(h, "shared-agent") == 0
    assert h.fakes.sts.requests == []


async def test_service_account_annotation_missing(harness: Harness) -> None:
    h = harness
    await _service_account(h, "plain", {})
    await h.put_provider(
        "no-role", {"serviceAccountName": "plain", "bedrock": {"region": "us-east-1"}}
    )
    obj = await h.wait_reason(
        "provider", "no-role", "ServiceAccountAnnotationMissing", status="False"
    )
    assert "eks.amazonaws.com/role-arn" in h.ready_condition(obj)["message"]


async def test_vertex_with_a_service_account(make_harness: MakeHarness) -> None:
    """Workload Identity Federation: TokenRequest → Google STS (the administrator's pool) →
    generateAccessToken for the annotated Google service account; then without the
    annotation, the federated principal itself. A revoked subject fails the re-validation."""
    async with make_harness(settings=ControllerSettings(revalidate_interval=0.5)) as h:
        f = h.fakes
        issuer = _trust_envtest(h)
        subject = f"system:serviceaccount:{h.namespace}:vertex-agent"
        audience = f.google_sts.add_provider("123456789012", "flokoa-pool", "envtest", issuer)
        f.google_sts.allow_subject(audience, subject)
        email = "vertex-reader@fake-project.iam.gserviceaccount.com"
        f.iam_credentials.allow_impersonation(email, f.google_sts.principal(audience, subject))
        await _service_account(h, "vertex-agent", {"iam.gke.io/gcp-service-account": email})
        spec = {
            "serviceAccountName": "vertex-agent",
            "google": {
                "baseURL": f.vertex.base_url,
                "vertex": {"projectID": "fake-project", "location": "us-central1"},
            },
        }
        await h.put_provider("wif", spec)
        obj = await h.wait_reason("provider", "wif", "ProbeSucceeded", status="True")
        assert obj["status"]["identity"]["serviceAccountName"] == "vertex-agent"
        assert f.google_sts.exchanges
        assert f.iam_credentials.grants
        token = f.vertex.requests[-1].header("Authorization").removeprefix("Bearer ")
        assert f.google_tokens.check(token).principal == email
        assert f.metadata.requests == [], "the operator's own identity was not used"

        # no annotation: the federated principal itself, granted on the project
        direct = f"system:serviceaccount:{h.namespace}:direct-agent"
        f.google_sts.allow_subject(audience, direct)
        f.vertex.grant("fake-project", f.google_sts.principal(audience, direct))
        await _service_account(h, "direct-agent", {})
        await h.put_provider("direct", {**spec, "serviceAccountName": "direct-agent"})
        await h.wait_reason("provider", "direct", "ProbeSucceeded", status="True")
        assert len(f.iam_credentials.grants) == len(
            [g for g in f.iam_credentials.grants if email in str(g)]
        ), "only the annotated ServiceAccount impersonates"

        f.google_sts.trust_policy.revoke(subject=subject)
        bad = await h.wait_reason("provider", "wif", "TokenExchangeFailed", status="False")
        message = h.ready_condition(bad)["message"]
        assert "Google STS" in message


async def test_vertex_workload_identity_needs_the_pool_flag(make_harness: MakeHarness) -> None:
    async with make_harness() as h:
        h.controllers.http.identity.settings = dataclasses.replace(
            h.controllers.http.identity.settings, google_workload_identity_audience=None
        )
        await _service_account(h, "vertex-agent", {})
        await h.put_provider(
            "wif",
            {
                "serviceAccountName": "vertex-agent",
                "google": {"vertex": {"projectID": "fake-project", "location": "us-central1"}},
            },
        )
        obj = await h.wait_reason(
            "provider", "wif", "WorkloadIdentityNotConfigured", status="False"
        )
        assert "--google-workload-identity-audience" in h.ready_condition(obj)["message"]


@pytest.mark.parametrize("flavor", ["classic", "v1"])
async def test_azure_openai_with_a_service_account(make_harness: MakeHarness, flavor: str) -> None:
    """Entra Workload ID: TokenRequest (aud api://AzureADTokenExchange) as the client
    assertion → Bearer token to Azure OpenAI, classic and v1; a removed federated
    credential is TokenExchangeFailed with Entra's code at the next re-validation."""
    async with make_harness(settings=ControllerSettings(revalidate_interval=0.5)) as h:
        await _azure(h, flavor)


async def _azure(h: Harness, flavor: str) -> None:
    f = h.fakes
    issuer = _trust_envtest(h)
    tenant, client = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
    subject = f"system:serviceaccount:{h.namespace}:azure-agent"
    f.entra.add_federated_credential(tenant, client, issuer, subject)
    await _service_account(
        h,
        "azure-agent",
        {"azure.workload.identity/client-id": client, "azure.workload.identity/tenant-id": tenant},
    )
    # the fake's loopback URL is no Azure host: apiVersion says "Azure" (v1: `preview`)
    base, version = (
        (f.azure.classic_base_url, "2024-10-21")
        if flavor == "classic"
        else (f.azure.v1_base_url, "preview")
    )
    spec = {
        "serviceAccountName": "azure-agent",
        "openai": {"baseURL": base, "apiVersion": version, "timeoutSeconds": 5},
    }
    await h.put_provider("entra", spec)
    await h.wait_reason("provider", "entra", "ProbeSucceeded", status="True")
    assert f.entra.grants
    request = f.azure.requests[-1]
    assert (request.header("Authorization") or "").startswith("Bearer ")
    assert request.header("api-key") is None

    f.entra.remove_federated_credential(tenant, client)
    bad = await h.wait_reason("provider", "entra", "TokenExchangeFailed", status="False")
    assert "AADSTS" in h.ready_condition(bad)["message"]


async def test_role_chaining_on_a_service_account(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """roleARN on top of the ServiceAccount's identity: AssumeRole named after the provider,
    SourceIdentity = the namespace, ExternalId from the spec — all three required by the
    target role's trust policy."""
    h, f = harness, harness.fakes
    issuer = _trust_envtest(h)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f.sts.url)
    base_role = "arn:aws:iam::123456789012:role/team-base"
    target_role = "arn:aws:iam::210987654321:role/bedrock-reader"
    subject = f"system:serviceaccount:{h.namespace}:agent"
    f.sts.add_oidc_provider(issuer)
    f.sts.allow_web_identity(base_role, issuer, subject)
    f.sts.roles.add(target_role)
    f.sts.set_role_conditions(target_role, external_id="tenant-42", source_identity=h.namespace)
    await _service_account(h, "agent", {"eks.amazonaws.com/role-arn": base_role})
    bedrock = {"region": "us-east-1", "endpointURL": f.bedrock.url, "roleARN": target_role}
    await h.put_provider(
        "chain", {"serviceAccountName": "agent", "bedrock": {**bedrock, "externalID": "wrong"}}
    )
    await h.wait_reason("provider", "chain", "TokenExchangeFailed", status="False")
    await h.put_provider(
        "chain", {"serviceAccountName": "agent", "bedrock": {**bedrock, "externalID": "tenant-42"}}
    )
    await h.wait_reason("provider", "chain", "ProbeSucceeded", status="True")
    chained = f.sts.sessions[-1]
    assert (chained.action, chained.role_arn) == ("AssumeRole", target_role)
    assert chained.role_session_name == f"flokoa-{h.namespace}-chain"
    assert (chained.source_identity, chained.external_id) == (h.namespace, "tenant-42")


async def test_token_request_forbidden(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API server refuses the TokenRequest (here: every create answered 403, as RBAC
    without `serviceaccounts/token` would): TokenRequestForbidden at the next re-validation,
    nothing sent to STS."""
    async with make_harness(settings=ControllerSettings(revalidate_interval=0.5)) as h:
        f = h.fakes
        if h.api is None:
            pytest.skip("needs envtest's fault injection")
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f.sts.url)
        role = "arn:aws:iam::123456789012:role/untrusted"
        await _service_account(h, "agent", {"eks.amazonaws.com/role-arn": role})
        spec = {"serviceAccountName": "agent", "bedrock": {"region": "us-east-1"}}
        await h.put_provider("denied", spec)
        await h.wait_reason("provider", "denied", "TokenExchangeFailed", status="False")
        h.api.faults.error_verbs = frozenset({"create"})
        h.api.faults.error_code = 403
        h.api.faults.error_rate = 1.0
        try:
            sts_calls = len(f.sts.requests)
            obj = await h.wait_reason("provider", "denied", "TokenRequestForbidden", status="False")
        finally:
            h.api.faults.reset()
        assert "serviceaccounts/token create" in h.ready_condition(obj)["message"]
        assert len(f.sts.requests) <= sts_calls + 1  # at most one already under way
