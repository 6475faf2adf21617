"""Google: Gemini API keys, Vertex AI with a real google-auth JWT grant and Workload Identity."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from flokoa_envtest.fakes import FakeProviders
from google.auth.compute_engine import _metadata

from flokoa_controller.providers import (
    ProbeHTTP,
    ProbeTarget,
    VertexSettings,
    probe_model,
    probe_provider,
)
from flokoa_controller.providers.google import (
    VERTEX_PROBE_MODEL,
    gemini_models_url,
    publisher_model,
    vertex_provider_url,
)
from flokoa_controller.providers.identity import IdentityBroker, IdentitySettings
from flokoa_controller.providers.target import AmbientIdentity


def vertex_target(fakes: FakeProviders, info: dict[str, Any] | None, **kw: Any) -> ProbeTarget:
    if info is None:
        kw.setdefault("identity", AmbientIdentity(allowed=True))  # the operator's own ADC
    project = kw.pop("project", "fake-project")
    location = kw.pop("location", "us-central1")
    return ProbeTarget(
        kind="google",
        base_url=fakes.vertex.base_url,
        vertex=VertexSettings(project, location, info),
        **kw,
    )


# -- Gemini ---------------------------------------------------------------------------------


def test_gemini_urls() -> None:
    target = ProbeTarget(kind="google")
    assert gemini_models_url(target) == "https://generativelanguage.googleapis.com/v1beta/models"
    assert gemini_models_url(target, "models/gemini-2.0-flash") == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash"
    )
    v1 = ProbeTarget(kind="google", base_url="https://gw/gemini/v1/")
    assert gemini_models_url(v1) == "https://gw/gemini/v1/models"


async def test_gemini_uses_the_api_key_header(fakes: FakeProviders, http: ProbeHTTP) -> None:
    target = ProbeTarget(
        kind="google", base_url=fakes.gemini.base_url, api_key=fakes.gemini.api_key
    )
    assert (await probe_provider(target, http)).ok
    assert (await probe_model(target, "models/gemini-2.5-pro", http)).ok
    for request in fakes.gemini.requests:
        assert request.header("x-goog-api-key") == fakes.gemini.api_key
        assert request.header("Authorization") is None
        assert "key" not in request.query
    assert fakes.gemini.requests[-1].path == "/v1beta/models/gemini-2.5-pro"


async def test_gemini_fake_is_faithful(fakes: FakeProviders) -> None:
    """A key as Bearer is 401, ?key= works, a bad key is 400 API_KEY_INVALID."""
    url = fakes.gemini.base_url + "/v1beta/models"
    key = fakes.gemini.api_key
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Authorization": f"Bearer {key}"}) as resp:
            assert resp.status == 401
        async with session.get(url, params={"key": key}) as resp:
            assert resp.status == 200
            assert "models" in await resp.json()
        async with session.get(url, headers={"x-goog-api-key": "nope"}) as resp:
            assert resp.status == 400
            assert "API_KEY_INVALID" in await resp.text()


# -- Vertex with a service-account key ------------------------------------------------------


def test_vertex_urls() -> None:
    target = ProbeTarget(kind="google", vertex=VertexSettings("my-proj", "europe-west4"))
    assert vertex_provider_url(target) == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/my-proj/locations/"
        "europe-west4/models?pageSize=1"
    )
    glob = ProbeTarget(kind="google", vertex=VertexSettings("my-proj", "global"))
    # global has no model registry: countTokens in the project (issue 14)
    assert vertex_provider_url(glob) == (
        "https://aiplatform.googleapis.com/v1/projects/my-proj/locations/global/publishers/"
        f"google/models/{VERTEX_PROBE_MODEL}:countTokens"
    )
    assert publisher_model("gemini-2.0-flash") == ("google", "gemini-2.0-flash")
    assert publisher_model("anthropic/claude-x") == ("anthropic", "claude-x")
    assert publisher_model("publishers/meta/models/llama") == ("meta", "llama")


async def test_vertex_jwt_grant_and_token_reuse(
    fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    info = tools.service_account(fakes)
    target = vertex_target(fakes, info)
    assert (await probe_provider(target, http)).ok
    assert (await probe_model(target, "anthropic/claude-sonnet-4", http)).ok
    assert (await probe_model(target, "publishers/google/models/gemini-2.0-flash", http)).ok
    # One real RS256 JWT grant, then the cached token.
    grants = fakes.google_oauth.requests_to("/token")
    assert len(grants) == 1
    assert b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in grants[0].body
    assert fakes.google_oauth.accounts[info["client_email"]].grants == 1
    tokens = {r.header("Authorization") for r in fakes.vertex.requests}
    assert len(tokens) == 1
    token = next(iter(tokens)).removeprefix("Bearer ")
    assert fakes.google_tokens.check(token).principal == info["client_email"]


async def test_vertex_wrong_private_key(
    fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    info = tools.service_account(fakes)
    other = fakes.google_oauth.issue_service_account(project_id="other")
    forged = {**info, "private_key": other["private_key"]}
    result = await probe_provider(vertex_target(fakes, forged), http)
    assert (result.ok, result.reason) == (False, "InvalidCredentials")
    assert "invalid_grant" in result.message  # the OAuth2 error code only
    assert "Invalid JWT Signature" not in result.message  # never the endpoint's description
    assert fakes.vertex.requests == []
    tools.assert_no_secrets(result, forged["private_key"])


async def test_vertex_disabled_service_account(
    fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    info = tools.service_account(fakes)
    target = vertex_target(fakes, info)
    assert (await probe_provider(target, http)).ok
    fakes.google_oauth.disable(info["client_email"])
    rejected = await probe_model(target, "gemini-2.5-pro", http)  # the cached token is revoked
    assert (rejected.reason, rejected.http_status) == ("InvalidCredentials", 401)
    refused = await probe_provider(target, http)  # a re-validation's fresh grant is refused
    assert (refused.reason, refused.http_status) == ("InvalidCredentials", None)
    assert "invalid_grant" in refused.message
    fakes.google_oauth.enable(info["client_email"])
    assert (await probe_provider(target, http)).ok


@pytest.mark.parametrize(
    "damage",
    [
        lambda i: {k: v for k, v in i.items() if k != "private_key"},
        lambda i: {
            **i,
            "private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
        },
        lambda i: {k: v for k, v in i.items() if k != "client_email"},
    ],
    ids=["no-private-key", "garbage-private-key", "no-client-email"],
)
async def test_vertex_malformed_key(
    fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace, damage: Any
) -> None:
    info = damage(tools.service_account(fakes))
    result = await probe_provider(vertex_target(fakes, info), http)
    assert (result.ok, result.reason) == (False, "InvalidCredentials")
    assert "malformed" in result.message
    tools.assert_no_secrets(result, *(v for v in info.values() if len(v) > 40))


async def test_vertex_token_endpoint_unreachable(
    fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    info = {
        **tools.service_account(fakes),
        "token_uri": f"http://127.0.0.1:{tools.closed_port()}/token",
    }
    result = await probe_provider(vertex_target(fakes, info), http)
    assert (result.ok, result.reason) == (False, "TokenEndpointNotAllowed")
    broker = IdentityBroker(IdentitySettings(google_token_uris=(info["token_uri"],)))
    async with ProbeHTTP(identity=broker) as allowed:
        result = await probe_provider(vertex_target(fakes, info), allowed)
    assert (result.ok, result.reason) == (False, "Unreachable")
    assert info["token_uri"].removesuffix("/token").removeprefix("http://") in result.message


async def test_vertex_token_uri_credentials_never_shown(
    fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    """The token_uri comes from the Secret: its user info and query values are redacted."""
    port = tools.closed_port()
    info = {
        **tools.service_account(fakes),
        "token_uri": f"http://user:pw-canary@127.0.0.1:{port}/token?sig=sig-canary",
    }
    result = await probe_provider(vertex_target(fakes, info), http)
    assert (result.ok, result.reason) == (False, "TokenEndpointNotAllowed")
    assert "pw-canary" not in result.message
    assert "sig-canary" not in result.message


async def test_vertex_token_endpoint_timeout(
    fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    fakes.google_oauth.delay = 30
    target = vertex_target(fakes, tools.service_account(fakes), timeout=0.5)
    result = await probe_provider(target, http)
    assert (result.ok, result.reason) == (False, "Timeout")


async def test_vertex_project_and_location(
    fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    info = tools.service_account(fakes)
    denied = await probe_provider(vertex_target(fakes, info, project="someone-else"), http)
    assert (denied.reason, denied.http_status) == ("InvalidCredentials", 403)
    assert "someone-else" in denied.message
    fakes.vertex.projects["fake-project"] = {"another@fake-project.iam.gserviceaccount.com"}
    no_iam = await probe_provider(vertex_target(fakes, info), http)
    assert no_iam.reason == "InvalidCredentials"
    assert "aiplatform.models.list" in no_iam.message
    fakes.vertex.projects["fake-project"] = None
    nowhere = await probe_provider(vertex_target(fakes, info, location="mars-north1"), http)
    assert (nowhere.reason, nowhere.http_status) == ("EndpointNotFound", 404)
    glob = await probe_provider(vertex_target(fakes, info, location="global"), http)
    assert glob.ok, glob
    counted = fakes.vertex.requests[-1]
    assert (counted.method, counted.path) == (
        "POST",
        "/v1/projects/fake-project/locations/global/publishers/google/models/"
        f"{VERTEX_PROBE_MODEL}:countTokens",
    )
    # with global, the provider probe checks the project too (issue 14)
    elsewhere = await probe_provider(
        vertex_target(fakes, info, project="someone-else", location="global"), http
    )
    assert (elsewhere.reason, elsewhere.http_status) == ("InvalidCredentials", 403)


# -- Vertex with Application Default Credentials ----------------------------------------------


def use_metadata_server(fakes: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCE_METADATA_HOST", fakes.metadata.address)
    monkeypatch.setenv("GCE_METADATA_IP", fakes.metadata.address)
    # google-auth reads GCE_METADATA_HOST at import time only.
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", fakes.metadata.address)


async def test_workload_identity(
    fakes: FakeProviders, http: ProbeHTTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_metadata_server(fakes, monkeypatch)
    target = vertex_target(fakes, None)
    assert (await probe_provider(target, http)).ok
    assert (await probe_model(target, "gemini-2.5-pro", http)).ok
    assert fakes.metadata.requests_to("/computeMetadata/v1/instance/service-accounts/default/token")
    assert all(r.header("Metadata-Flavor") == "Google" for r in fakes.metadata.requests)
    token = fakes.vertex.requests[-1].header("Authorization").removeprefix("Bearer ")
    assert fakes.google_tokens.check(token).principal == fakes.metadata.email
    assert fakes.google_oauth.requests == []
    issued = fakes.google_tokens.issued
    assert (await probe_model(target, "gemini-2.5-pro", http)).ok
    assert fakes.google_tokens.issued == issued, "the metadata token was not reused"


async def test_workload_identity_not_bound(
    fakes: FakeProviders, http: ProbeHTTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_metadata_server(fakes, monkeypatch)
    fakes.metadata.workload_identity = False
    result = await probe_provider(vertex_target(fakes, None), http)
    assert (result.ok, result.reason) == (False, "InvalidCredentials")
    assert fakes.vertex.requests == []


async def test_adc_from_a_key_file(
    fakes: FakeProviders,
    http: ProbeHTTP,
    tools: SimpleNamespace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(tools.service_account(fakes)))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    assert (await probe_provider(vertex_target(fakes, None), http)).ok
    assert len(fakes.google_oauth.requests_to("/token")) == 1


async def test_no_application_default_credentials(
    fakes: FakeProviders, http: ProbeHTTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", True)  # read at import time
    result = await probe_provider(vertex_target(fakes, None), http)
    assert (result.ok, result.reason, result.retryable) == (False, "CredentialsUnavailable", False)
    assert "application default credentials" in result.message


async def test_credentials_are_cached_per_target(
    fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    info = tools.service_account(fakes)
    a = vertex_target(fakes, info)
    b = dataclasses.replace(a, default_headers={"X-Other": "1"})
    assert (await probe_model(a, "gemini-2.5-pro", http)).ok
    assert (await probe_model(a, "gemini-2.5-pro", http)).ok
    assert (await probe_model(b, "gemini-2.5-pro", http)).ok
    assert fakes.google_oauth.accounts[info["client_email"]].grants == 2


async def test_expiring_token_is_refreshed(
    fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    """A cached token close to expiry (inside REFRESH_MARGIN) is not reused (each request of
    a model check grants anew); one with an hour left is."""
    fakes.google_tokens.lifetime = 120
    info = tools.service_account(fakes)
    target = vertex_target(fakes, info)
    for _ in range(3):
        assert (await probe_model(target, "gemini-2.5-pro", http)).ok
    account = fakes.google_oauth.accounts[info["client_email"]]
    short = account.grants
    assert short >= 3
    fakes.google_tokens.lifetime = 3600
    for _ in range(3):
        assert (await probe_model(target, "gemini-2.5-pro", http)).ok
    assert account.grants == short + 1


def test_sdk_request_logging_stays_off_even_at_debug_level() -> None:
    """google-auth and botocore log requests (headers, bodies, signed canonical requests) at
    DEBUG: with the operator at --log-level debug those loggers must still be silent."""
    import logging

    import flokoa_controller.providers.bedrock
    import flokoa_controller.providers.google

    assert flokoa_controller.providers.bedrock.SIGNING_SERVICE  # imported: guards are set
    assert flokoa_controller.providers.google.CLOUD_PLATFORM_SCOPE

    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.DEBUG)
    try:
        for name in (
            "google.auth.transport.requests",
            "google.auth.compute_engine._metadata",
            "google.oauth2._client",
            "botocore.auth",
            "botocore.endpoint",
            "botocore.credentials",
        ):
            assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    finally:
        root.setLevel(before)


# -- Vertex model check in the project (issue 14) -------------------------------------------


async def test_vertex_model_check_in_the_project(
    fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    info = tools.service_account(fakes)
    target = vertex_target(fakes, info)
    found = await probe_model(target, "gemini-2.5-pro", http)
    assert (found.ok, found.reason) == (True, "ProbeSucceeded"), found
    catalog, counted = fakes.vertex.requests[-2:]
    assert catalog.path == "/v1beta1/publishers/google/models/gemini-2.5-pro"
    assert (counted.method, counted.path) == (
        "POST",
        "/v1/projects/fake-project/locations/us-central1/publishers/google/models/"
        "gemini-2.5-pro:countTokens",
    )
    assert b'"contents"' in counted.body
    assert found.model is not None
    assert found.model.lifecycle is not None
    assert (found.model.lifecycle.word, found.model.lifecycle.deprecated) == ("GA", False)

    fakes.vertex.predict_denied.add(info["client_email"])
    denied = await probe_model(target, "gemini-2.5-pro", http)
    assert (denied.ok, denied.reason, denied.http_status) == (False, "InvalidCredentials", 403)
    assert "aiplatform.endpoints.predict" in denied.message
    fakes.vertex.predict_denied.clear()

    fakes.vertex.locations.discard("europe-west4")
    elsewhere = await probe_model(
        vertex_target(fakes, info, location="europe-west4"), "gemini-2.5-pro", http
    )
    assert (elsewhere.reason, elsewhere.http_status) == ("ModelNotFound", 404)
    assert 'not available to project "fake-project" in location europe-west4' in elsewhere.message

    partner = await probe_model(target, "anthropic/claude-sonnet-4", http)
    assert (partner.ok, partner.reason) == (True, "ModelAccessNotVerified")
    assert "cannot be checked for free" in partner.message
    assert not fakes.vertex.requests[-1].path.endswith(":countTokens")

    fakes.vertex.launch_stages["google/gemini-2.0-flash"] = "DEPRECATED"
    old = await probe_model(target, "gemini-2.0-flash", http)
    assert old.ok, old
    assert old.model is not None
    assert old.model.lifecycle is not None
    assert old.model.lifecycle.reason == "LaunchStageDeprecated"
