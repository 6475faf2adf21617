"""The shared HTTP client: TLS trust, proxies from the environment, pooling, per-host bound."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trustme
from flokoa_envtest.dev import DEV_ALLOWED_DESTINATIONS
from flokoa_envtest.fakes import FakeOpenAI, FakeProxy
from flokoa_envtest.testing import poll_until

from flokoa_controller.providers import ProbeHTTP, ProbeTarget, TLSSettings, probe_provider
from flokoa_controller.providers.destinations import DestinationPolicy

LOOPBACK_ALLOWED = DestinationPolicy.build(allow=DEV_ALLOWED_DESTINATIONS)
"""The default policy with loopback allowed (the fakes listen on 127.0.0.1)."""


@pytest.fixture
async def tls_openai(ca: trustme.CA) -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(tls=ca) as fake:
        yield fake


@pytest.fixture
async def proxy() -> AsyncIterator[FakeProxy]:
    async with FakeProxy() as started:
        yield started


def openai_target(fake: FakeOpenAI, tls: TLSSettings, **kw: Any) -> ProbeTarget:
    kw.setdefault("base_url", fake.base_url)
    return ProbeTarget(kind="openai", api_key=fake.api_key, tls=tls, **kw)


def write_pem(path: Path, ca: trustme.CA) -> str:
    path.write_bytes(ca.cert_pem.bytes())
    return str(path)


# -- TLS ------------------------------------------------------------------------------------


async def test_custom_ca_alone(tls_openai: FakeOpenAI, ca: trustme.CA, http: ProbeHTTP) -> None:
    result = await probe_provider(openai_target(tls_openai, TLSSettings(ca.cert_pem.bytes())), http)
    assert result.ok, result


async def test_custom_ca_alone_excludes_system_cas(
    ca: trustme.CA, http: ProbeHTTP, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without useSystemCAs a custom CA replaces the system bundle, it does not extend it."""
    other = trustme.CA()
    monkeypatch.setenv("SSL_CERT_FILE", write_pem(tmp_path / "system.pem", other))
    async with FakeOpenAI(tls=other) as fake:
        alone = TLSSettings(ca.cert_pem.bytes(), use_system_cas=False)
        result = await probe_provider(openai_target(fake, alone), http)
        assert result.reason == "TLSVerificationFailed", result
        both = TLSSettings(ca.cert_pem.bytes(), use_system_cas=True)
        result = await probe_provider(openai_target(fake, both), http)
        assert result.ok, result


async def test_custom_ca_with_system_cas_still_trusts_the_custom_one(
    tls_openai: FakeOpenAI,
    ca: trustme.CA,
    http: ProbeHTTP,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", write_pem(tmp_path / "system.pem", trustme.CA()))
    tls = TLSSettings(ca.cert_pem.bytes(), use_system_cas=True)
    assert (await probe_provider(openai_target(tls_openai, tls), http)).ok


async def test_system_cas_when_no_custom_ca(
    tls_openai: FakeOpenAI,
    ca: trustme.CA,
    http: ProbeHTTP,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = openai_target(tls_openai, TLSSettings())
    assert (await probe_provider(target, http)).reason == "TLSVerificationFailed"
    monkeypatch.setenv("SSL_CERT_FILE", write_pem(tmp_path / "system.pem", ca))
    # contexts are cached per TLS settings: a new client reloads
    fresh = ProbeHTTP(policy=LOOPBACK_ALLOWED)
    try:
        assert (await probe_provider(target, fresh)).ok
    finally:
        await fresh.close()


async def test_wrong_ca(tls_openai: FakeOpenAI, http: ProbeHTTP) -> None:
    tls = TLSSettings(trustme.CA().cert_pem.bytes())
    result = await probe_provider(openai_target(tls_openai, tls), http)
    assert (result.ok, result.reason, result.retryable) == (False, "TLSVerificationFailed", False)
    assert "not trusted" in result.message
    assert tls_openai.requests == []


async def test_insecure_skip_verify(tls_openai: FakeOpenAI, http: ProbeHTTP) -> None:
    tls = TLSSettings(trustme.CA().cert_pem.bytes(), insecure_skip_verify=True)
    result = await probe_provider(openai_target(tls_openai, tls), http)
    assert result.ok, result


async def test_host_name_is_verified(http: ProbeHTTP) -> None:
    """A certificate from a trusted CA but for another name is refused."""
    other = trustme.CA()
    fake = FakeOpenAI(tls=other)
    fake.server_names = ("api.example.test",)
    async with fake:
        trusted = TLSSettings(other.cert_pem.bytes())
        result = await probe_provider(openai_target(fake, trusted), http)
        assert result.reason == "TLSVerificationFailed", result
        assert "127.0.0.1" in result.message
        insecure = TLSSettings(other.cert_pem.bytes(), insecure_skip_verify=True)
        assert (await probe_provider(openai_target(fake, insecure), http)).ok


@pytest.mark.parametrize(
    "pem",
    [b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
)
async def test_invalid_ca_bundle(tls_openai: FakeOpenAI, http: ProbeHTTP, pem: bytes) -> None:
    result = await probe_provider(openai_target(tls_openai, TLSSettings(pem)), http)
    assert (result.ok, result.reason) == (False, "InvalidCACertificate")
    assert tls_openai.requests == []


async def test_tls_contexts_are_cached_and_bounded(ca: trustme.CA) -> None:
    async with ProbeHTTP(max_contexts=2, policy=LOOPBACK_ALLOWED) as http:
        first = http.context(TLSSettings(ca.cert_pem.bytes()))
        assert http.context(TLSSettings(ca.cert_pem.bytes())) is first
        http.context(TLSSettings(insecure_skip_verify=True))
        assert http.context(TLSSettings(ca.cert_pem.bytes())) is first  # most recently used
        http.context(TLSSettings(insecure_skip_verify=True))
        http.context(TLSSettings(use_system_cas=True))  # evicts the CA one
        assert http.context(TLSSettings(ca.cert_pem.bytes())) is not first


# -- proxies --------------------------------------------------------------------------------


async def test_https_proxy_tunnels_with_connect(
    tls_openai: FakeOpenAI,
    ca: trustme.CA,
    http: ProbeHTTP,
    proxy: FakeProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    result = await probe_provider(openai_target(tls_openai, TLSSettings(ca.cert_pem.bytes())), http)
    assert result.ok, result
    assert proxy.connects == [f"127.0.0.1:{tls_openai.port}"]
    assert len(tls_openai.requests) == 1


@pytest.mark.parametrize("variable", ["https_proxy", "HTTPS_PROXY"])
@pytest.mark.parametrize(
    ("no_proxy", "host", "bypassed"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("example.com,127.0.0.1", "127.0.0.1", True),
        ("*", "127.0.0.1", True),
        (".localhost", "localhost", True),
        ("localhost", "localhost", True),
        ("example.com,10.0.0.1", "127.0.0.1", False),
        ("host.localhost", "localhost", False),
    ],
)
async def test_no_proxy(
    tls_openai: FakeOpenAI,
    ca: trustme.CA,
    http: ProbeHTTP,
    proxy: FakeProxy,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    no_proxy: str,
    host: str,
    bypassed: bool,
) -> None:
    monkeypatch.setenv(variable, proxy.url)
    monkeypatch.setenv("NO_PROXY" if variable.isupper() else "no_proxy", no_proxy)
    target = openai_target(
        tls_openai,
        TLSSettings(ca.cert_pem.bytes()),
        base_url=f"https://{host}:{tls_openai.port}/v1",
    )
    result = await probe_provider(target, http)
    assert result.ok, result
    assert proxy.connects == ([] if bypassed else [f"{host}:{tls_openai.port}"])


async def test_proxy_credentials_from_the_proxy_url(
    tls_openai: FakeOpenAI,
    ca: trustme.CA,
    http: ProbeHTTP,
    proxy: FakeProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy.require_auth = ("probe", "s3cret-proxy-pass")
    target = openai_target(tls_openai, TLSSettings(ca.cert_pem.bytes()))
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    refused = await probe_provider(target, http)
    assert (refused.ok, refused.reason) == (False, "Unreachable")
    assert "407" in refused.message
    monkeypatch.setenv(
        "HTTPS_PROXY", proxy.url.replace("http://", "http://probe:s3cret-proxy-pass@")
    )
    result = await probe_provider(target, http)
    assert result.ok, result
    assert "s3cret-proxy-pass" not in repr(refused) + repr(result)


async def test_proxy_down_is_unreachable(
    tls_openai: FakeOpenAI,
    ca: trustme.CA,
    http: ProbeHTTP,
    tools: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{tools.closed_port()}")
    result = await probe_provider(openai_target(tls_openai, TLSSettings(ca.cert_pem.bytes())), http)
    assert (result.ok, result.reason) == (False, "Unreachable")
    assert "proxy" in result.message
    assert tls_openai.requests == []


async def test_http_proxy_for_plain_http(
    http: ProbeHTTP, proxy: FakeProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY applies to http:// URLs (absolute-form request; the fake proxy refuses it)."""
    async with FakeOpenAI() as fake:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # not used for http://
        result = await probe_provider(openai_target(fake, TLSSettings()), http)
        assert result.http_status == 405
        assert proxy.request_lines == [f"GET http://127.0.0.1:{fake.port}/v1/models HTTP/1.1"]
        assert fake.requests == []


async def test_proxy_table_is_reread_only_when_the_proxy_variables_change(
    http: ProbeHTTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment is scanned once per change of a proxy variable, not per request."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy-a:3128")
    first = http.proxies()
    assert first["https"] == "http://proxy-a:3128"
    monkeypatch.setenv("UNRELATED_VARIABLE", "x")
    assert http.proxies() is first
    monkeypatch.setenv("NO_PROXY", "example.com")
    second = http.proxies()
    assert second is not first
    assert second["no"] == "example.com"
    monkeypatch.delenv("HTTPS_PROXY")
    assert "https" not in http.proxies()


# -- pooling and bounds ---------------------------------------------------------------------


async def test_connections_are_reused(
    tls_openai: FakeOpenAI, ca: trustme.CA, http: ProbeHTTP
) -> None:
    target = openai_target(tls_openai, TLSSettings(ca.cert_pem.bytes()))
    for _ in range(3):
        assert (await probe_provider(target, http)).ok
    peers = {r.peer for r in tls_openai.requests}
    assert len(tls_openai.requests) == 3
    assert len(peers) == 1, "each probe opened a new connection"


async def test_per_host_concurrency_bound(tools: SimpleNamespace) -> None:
    async with FakeOpenAI() as fake, ProbeHTTP(max_per_host=2, policy=LOOPBACK_ALLOWED) as http:
        fake.gate = asyncio.Event()
        target = openai_target(fake, TLSSettings())
        probes = [asyncio.create_task(probe_provider(target, http)) for _ in range(6)]
        await poll_until(
            lambda: fake.in_flight >= 2, within=5, what="two probes in flight", interval=0.005
        )
        for _ in range(20):  # give a third request every chance to slip through
            await asyncio.sleep(0)
        assert fake.in_flight == 2
        fake.gate.set()
        results = await asyncio.gather(*probes)
        assert all(r.ok for r in results)
        assert fake.max_in_flight == 2
        assert len(fake.requests) == 6


async def test_default_headers_do_not_override_protocol_headers(http: ProbeHTTP) -> None:
    async with FakeOpenAI() as fake:
        target = openai_target(
            fake,
            TLSSettings(),
            default_headers={"Authorization": "Bearer not-the-key", "User-Agent": "custom/1"},
        )
        assert (await probe_provider(target, http)).ok
        assert fake.requests[0].header("Authorization") == f"Bearer {fake.api_key}"
        assert fake.requests[0].header("User-Agent") == "custom/1"


async def test_closed_client_refuses_requests(
    tls_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    http = ProbeHTTP(policy=LOOPBACK_ALLOWED)
    await http.close()
    await http.close()
    target = openai_target(tls_openai, TLSSettings())
    with pytest.raises(RuntimeError, match="closed"):
        await http.request(target, "GET", tls_openai.base_url + "/models")
    # The probe entry points never raise: a bug becomes a ProbeError result, logged.
    result = await probe_provider(target, http)
    assert (result.ok, result.reason, result.retryable) == (False, "ProbeError", True)
    assert "RuntimeError" in result.message
    assert "openai probe failed unexpectedly: RuntimeError at" in caplog.text


def test_targets_are_hashable_keys() -> None:
    """TLS settings key the context cache, so equal settings must hash equal."""
    a = TLSSettings(b"pem", use_system_cas=True)
    assert hash(a) == hash(dataclasses.replace(a))
