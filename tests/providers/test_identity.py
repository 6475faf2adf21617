"""providers.identity: the pinning and parsing rules, and that no token request holds a thread.

The token exchanges themselves run end to end against the verifying fakes in
tests/controllers/test_identity_e2e.py; here are the rules they rest on.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from flokoa_envtest.fakes import FakeProviders
from flokoa_envtest.testing import serve_local

from flokoa_controller.providers import ProbeHTTP, ProbeTarget, VertexSettings, probe_provider
from flokoa_controller.providers.ambient import AmbientBusy, AmbientExecutor
from flokoa_controller.providers.identity import (
    GOOGLE_TOKEN_URI,
    MAX_TOKEN_RESPONSE,
    IdentityBroker,
    IdentityError,
    IdentitySettings,
    check_identity,
    check_token_uri,
    identity_host_allowed,
    oauth_error_code,
    parse_xml,
    role_session_name,
    sts_error_code,
)
from flokoa_controller.providers.target import (
    AmbientIdentity,
    BedrockSettings,
    ServiceAccountIdentity,
)

VERTEX = ProbeTarget(
    kind="google",
    vertex=VertexSettings("p", "us-central1"),
    identity=ServiceAccountIdentity("agent"),
    namespace="team-a",
)
BEDROCK = ProbeTarget(
    kind="bedrock", bedrock=BedrockSettings("us-east-1"), identity=AmbientIdentity(True)
)
AZURE = ProbeTarget(kind="openai", api_version="2024-10-21", identity=ServiceAccountIdentity("a"))


@pytest.mark.parametrize(
    ("target", "url", "allowed"),
    [
        (VERTEX, "https://us-central1-aiplatform.googleapis.com/v1/x", True),
        (VERTEX, "https://aiplatform.googleapis.com/v1beta1/x", True),
        (VERTEX, "http://us-central1-aiplatform.googleapis.com/v1/x", False),
        (VERTEX, "https://aiplatform.googleapis.com.evil.example/v1", False),
        (VERTEX, "https://evil-aiplatform.googleapis.com.example/v1", False),
        (VERTEX, "https://169.254.169.254/computeMetadata", False),
        (BEDROCK, "https://bedrock.us-east-1.amazonaws.com/foundation-models", True),
        (BEDROCK, "https://vpce-0a1b-c2d3.bedrock.us-east-1.vpce.amazonaws.com/x", True),
        (BEDROCK, "https://bedrock.us-east-1.amazonaws.com.attacker.io/x", False),
        (BEDROCK, "https://s3.amazonaws.com/x", False),
        (BEDROCK, "https://bedrock-fips.us-east-1.amazonaws.com/x", True),
        (BEDROCK, "https://bedrock.eu-west-1.amazonaws.com/x", False),
        (BEDROCK, "https://bedrock.x.s3-website-us-east-1.amazonaws.com/x", False),
        (BEDROCK, "https://bedrock.us-east-1.s3-website.amazonaws.com/x", False),
        (VERTEX, "https://a.b-aiplatform.googleapis.com/x", False),
        (AZURE, "https://r.openai.azure.com/openai/v1/models", True),
        (AZURE, "https://r.openai.azure.com.attacker.io/openai", False),
        (AZURE, "http://r.openai.azure.com/openai", False),
    ],
)
def test_identity_credentials_go_to_the_providers_own_hosts(
    target: ProbeTarget, url: str, allowed: bool
) -> None:
    assert identity_host_allowed(target, url, IdentitySettings()) is allowed


def test_administrator_allowed_hosts() -> None:
    settings = IdentitySettings(allowed_hosts=("gateway.internal", "*.llm.corp"))
    assert identity_host_allowed(VERTEX, "http://gateway.internal:8080/v1", settings)
    assert identity_host_allowed(VERTEX, "https://eu.llm.corp/v1", settings)
    assert not identity_host_allowed(VERTEX, "https://llm.corp.evil/v1", settings)
    with pytest.raises(IdentityError) as refused:
        check_identity(VERTEX, "https://tenant.example/v1", settings)
    assert refused.value.reason == "IdentityEndpointNotAllowed"
    assert "--identity-allowed-hosts" in refused.value.message


def test_ambient_identity_refused_unless_allowed() -> None:
    target = ProbeTarget(
        kind="bedrock",
        bedrock=BedrockSettings("us-east-1"),
        identity=AmbientIdentity(False),
        namespace="team-b",
    )
    with pytest.raises(IdentityError) as refused:
        check_identity(target, "https://bedrock.us-east-1.amazonaws.com", IdentitySettings())
    assert refused.value.reason == "AmbientIdentityNotAllowed"
    assert "team-b" in refused.value.message
    assert "--ambient-identity-namespaces" in refused.value.message


def test_token_uri_is_pinned() -> None:
    assert check_token_uri(GOOGLE_TOKEN_URI, IdentitySettings()) == GOOGLE_TOKEN_URI
    for uri in (
        "http://127.0.0.1:9/token",
        "https://oauth2.googleapis.com/token/../x",
        "https://oauth2.googleapis.com.evil/token",
        None,
        42,
    ):
        with pytest.raises(IdentityError) as refused:
            check_token_uri(uri, IdentitySettings())
        assert refused.value.reason == "TokenEndpointNotAllowed"
        assert str(uri) not in refused.value.message or uri is None
    allowed = IdentitySettings(google_token_uris=("https://oauth2.private/token",))
    assert check_token_uri("https://oauth2.private/token", allowed)


def test_role_session_name() -> None:
    assert role_session_name("team-a", "bedrock") == "flokoa-team-a-bedrock"
    long = role_session_name("n" * 63, "m" * 253)
    assert len(long) == 64
    assert long != role_session_name("n" * 63, "m" * 252 + "x")
    assert role_session_name("a", "b.c") == "flokoa-a-b.c"


def test_sts_xml_without_a_dtd_only() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><r>&b;</r>'
    )
    with pytest.raises(IdentityError):
        parse_xml(bomb, "STS")
    with pytest.raises(IdentityError):
        parse_xml(b"<r>" + b"x" * MAX_TOKEN_RESPONSE + b"</r>", "STS")
    error = (
        b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
        b"<Code>AccessDenied</Code><Message>User arn:aws:sts::1:assumed-role/op/x is not "
        b"authorized</Message></Error></ErrorResponse>"
    )
    assert sts_error_code(error) == "AccessDenied"
    assert sts_error_code(b"<html>no</html>") is None


def test_oauth_error_code_never_the_description() -> None:
    assert oauth_error_code(b'{"error":"invalid_grant","error_description":"x y z"}') == (
        "invalid_grant"
    )
    assert (
        oauth_error_code(b'{"error":"invalid_client","error_codes":[700016],"trace_id":"t"}')
        == "invalid_client (AADSTS700016)"
    )
    google = b'{"error":{"code":403,"status":"PERMISSION_DENIED","message":"secret"}}'
    assert oauth_error_code(google) == "PERMISSION_DENIED"
    assert oauth_error_code(b'{"error":"internal-secret do not echo <html>"}') is None
    assert oauth_error_code(b"<html>secret</html>") is None


# -- no provider I/O holds a thread --------------------------------------------------------------


class Trickler:
    """Accepts, then answers one byte a second, forever."""

    def __init__(self) -> None:
        self.url = ""
        self.hits = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        while True:
            await response.write(b" ")
            await asyncio.sleep(1.0)

    async def __aenter__(self) -> Trickler:
        self._runner, port = await serve_local(self._handle, shutdown_timeout=0.1)
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


@pytest.fixture
async def trickler() -> AsyncIterator[Trickler]:
    async with Trickler() as server:
        yield server


async def test_a_trickling_token_endpoint_holds_no_thread(
    fakes: FakeProviders, tools: SimpleNamespace, trickler: Trickler
) -> None:
    """Ten Vertex probes whose token endpoint trickles: each ends at its deadline, on the
    event loop alone (no thread started, the default executor untouched)."""
    info = {**tools.service_account(fakes), "token_uri": trickler.url + "/token"}
    settings = IdentitySettings(
        google_token_uris=(info["token_uri"],), allowed_hosts=("127.0.0.1",)
    )
    target = ProbeTarget(
        kind="google",
        base_url=fakes.vertex.base_url,
        vertex=VertexSettings("fake-project", "us-central1", info),
        timeout=1.0,
    )
    threads = threading.active_count()
    broker = IdentityBroker(settings)
    async with ProbeHTTP(identity=broker) as http:
        started = time.monotonic()
        results = await asyncio.gather(*(probe_provider(target, http) for _ in range(10)))
        elapsed = time.monotonic() - started
    assert {r.reason for r in results} == {"Timeout"}
    assert trickler.hits >= 1
    assert broker.executor.threads == 0
    assert threading.active_count() == threads
    assert fakes.vertex.requests == []
    print(f"10 trickled token requests ended in {elapsed:.2f}s")  # a figure, not an assert


async def test_the_ambient_executor_is_bounded_and_never_blocks_exit() -> None:
    """Stuck ambient work: the awaiting probe gives up at its deadline; at most max_workers
    (daemon) threads exist; past max_pending, calls are refused at once."""
    executor = AmbientExecutor(max_workers=2, max_pending=2)
    release = threading.Event()
    try:

        def stuck() -> str:
            release.wait()
            return "late"

        outcomes = await asyncio.gather(
            *(executor.run(stuck, 0.2) for _ in range(4)), return_exceptions=True
        )
        assert all(isinstance(o, TimeoutError) for o in outcomes)
        assert executor.threads == 2
        assert all(t.daemon for t in executor._threads)
        # 2 running, 2 queued (cancelled futures still hold their place until dequeued)
        with pytest.raises(AmbientBusy):
            executor.submit(stuck)
    finally:
        release.set()
        executor.shutdown()
    await asyncio.sleep(0.05)
    assert await AmbientExecutor().run(lambda: 41 + 1, 5.0) == 42


class Answering:
    """A token endpoint answering ``status`` with ``body``, counting requests."""

    def __init__(self, status: int, body: str) -> None:
        self.status, self.body, self.hits, self.url = status, body, 0, ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(status=self.status, text=self.body, content_type="application/json")

    async def __aenter__(self) -> Answering:
        self._runner, port = await serve_local(self._handle)
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, "internal-secret-body-1234 <html>stack trace</html>", "ProviderUnavailable"),
        (
            400,
            '{"error":"internal-secret-body-1234","error_description":"x"}',
            "InvalidCredentials",
        ),
        (
            400,
            '{"error":"invalid_grant","error_description":"internal-secret-body-1234"}',
            "InvalidCredentials",
        ),
        (200, '{"token":"internal-secret-body-1234"}', "TokenExchangeFailed"),
    ],
)
async def test_token_endpoint_bodies_are_never_echoed(
    fakes: FakeProviders,
    tools: SimpleNamespace,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: str,
    reason: str,
) -> None:
    """Even an allowed token endpoint: its answer is reduced to an HTTP status and an error
    code matching the OAuth2 shape, nothing else."""
    import logging

    caplog.set_level(logging.DEBUG)
    async with Answering(status, body) as endpoint:
        info = {**tools.service_account(fakes), "token_uri": endpoint.url + "/token"}
        broker = IdentityBroker(IdentitySettings(google_token_uris=(info["token_uri"],)))
        target = ProbeTarget(
            kind="google",
            base_url=fakes.vertex.base_url,
            vertex=VertexSettings("fake-project", "us-central1", info),
        )
        async with ProbeHTTP(identity=broker) as http:
            result = await probe_provider(target, http)
    assert endpoint.hits == 1
    assert result.reason == reason, result
    assert "internal-secret-body" not in repr(result)
    assert "internal-secret-body" not in caplog.text
    assert fakes.vertex.requests == []


async def test_cached_credentials_are_refreshed_before_expiry_and_bounded() -> None:
    now = [1000.0]
    broker = IdentityBroker(clock=lambda: now[0], max_entries=2)
    calls: list[str] = []

    def obtain(name: str, lifetime: float) -> Any:
        async def get() -> tuple[str, float]:
            calls.append(name)
            return f"{name}-{len(calls)}", now[0] + lifetime

        return get

    assert await broker.cached("a", False, obtain("a", 3600)) == "a-1"
    assert await broker.cached("a", False, obtain("a", 3600)) == "a-1"  # reused
    assert await broker.cached("a", True, obtain("a", 3600)) == "a-2"  # a re-validation
    now[0] += 3600 - 299  # inside the refresh margin
    assert await broker.cached("a", False, obtain("a", 3600)) == "a-3"
    await broker.cached("b", False, obtain("b", 10))
    now[0] += 20  # b expired
    await broker.cached("c", False, obtain("c", 3600))
    assert set(broker._entries) == {"a", "c"}, "the expired entry went first"
    broker.close()
