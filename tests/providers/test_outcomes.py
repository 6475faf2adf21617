"""Every outcome → reason, for every provider flavor, against the fakes (real auth schemes)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import pytest
from flokoa_envtest.fakes import FakeProviders

from flokoa_controller.providers import ProbeHTTP, TLSSettings, probe_model, probe_provider


async def test_success(
    case: Any, fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    target = case.build(fakes)
    result = await probe_provider(target, http)
    assert result.ok, result
    assert result.reason == "ProbeSucceeded"
    assert result.http_status == 200
    assert not result.rate_limited
    assert not result.retryable
    assert result.url in result.message
    assert "200" in result.message
    assert result.duration >= 0
    tools.assert_no_secrets(result, *tools.secrets_of(target))

    model = await probe_model(target, case.model, http)
    assert model.ok, model
    assert model.reason == (
        "DeploymentNotVerified" if case.name == "azure-classic" else "ProbeSucceeded"
    )
    assert case.model in model.message


async def test_unknown_model(
    case: Any, fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    target = case.build(fakes)
    result = await probe_model(target, "no-such-model", http)
    if case.name == "azure-classic":  # deployments cannot be checked: no request, no verdict
        assert (result.ok, result.reason) == (True, "DeploymentNotVerified"), result
        assert case.api(fakes).requests == []
        return
    assert result.http_status == 404
    if case.name == "azure-v1":  # a miss may be a deployment named unlike its model
        assert (result.ok, result.reason) == (True, "DeploymentNotVerified"), result
        tools.assert_no_secrets(result, *tools.secrets_of(target))
        return
    assert not result.ok
    assert result.reason == "ModelNotFound", result
    assert "no-such-model" in result.message
    assert "404" in result.message
    tools.assert_no_secrets(result, *tools.secrets_of(target))


async def test_rejected_credentials(
    case: Any, fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    """The fake's own auth check refuses a wrong key / signature / service account."""
    target = case.build(fakes, valid=False)
    result = await probe_provider(target, http)
    assert not result.ok
    assert result.reason == "InvalidCredentials", result
    assert not result.retryable
    tools.assert_no_secrets(result, *tools.secrets_of(target))


@pytest.mark.parametrize(
    ("status", "reason", "ok", "retryable"),
    [
        (401, "InvalidCredentials", False, False),
        (403, "InvalidCredentials", False, False),
        (404, "EndpointNotFound", False, False),
        (429, "RateLimited", True, True),
        (500, "ProviderUnavailable", False, True),
        (503, "ProviderUnavailable", False, True),
        (408, "Timeout", False, True),
        (418, "UnexpectedResponse", False, False),
    ],
)
async def test_forced_status(
    case: Any,
    fakes: FakeProviders,
    http: ProbeHTTP,
    tools: SimpleNamespace,
    status: int,
    reason: str,
    ok: bool,
    retryable: bool,
) -> None:
    target = case.build(fakes)
    case.api(fakes).force(status)
    result = await probe_provider(target, http)
    assert (result.ok, result.reason, result.retryable) == (ok, reason, retryable), result
    assert result.http_status == status
    assert str(status) in result.message
    assert result.url in result.message
    assert result.rate_limited == (status == 429)
    if status == 429:
        assert "rate-limited" in result.message
    tools.assert_no_secrets(result, *tools.secrets_of(target))


@pytest.mark.cases("openai", "vertex", "bedrock")
async def test_redirect_is_not_followed(case: Any, fakes: FakeProviders, http: ProbeHTTP) -> None:
    target = case.build(fakes)
    api = case.api(fakes)
    api.force(302, headers={"Location": "http://elsewhere.invalid/login?token=abc"})
    result = await probe_provider(target, http)
    assert result.reason == "UnexpectedResponse"
    assert "not followed" in result.message
    assert "elsewhere.invalid" in result.message
    assert "abc" not in result.message
    assert len(api.requests) == 1


async def test_timeout(case: Any, fakes: FakeProviders, http: ProbeHTTP) -> None:
    target = dataclasses.replace(case.build(fakes), timeout=0.3)
    api = case.api(fakes)
    api.delay = 30.0
    result = await probe_provider(target, http)
    assert (result.ok, result.reason, result.retryable) == (False, "Timeout", True), result
    assert result.http_status is None
    assert "in time" in result.message


async def test_connection_refused(
    case: Any, fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    target = tools.rebase(case.build(fakes), f"http://127.0.0.1:{tools.closed_port()}")
    result = await probe_provider(target, http)
    assert (result.ok, result.reason, result.retryable) == (False, "Unreachable", True), result
    assert "cannot connect" in result.message
    assert result.url in result.message


async def test_dns_failure(
    case: Any, fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    target = tools.rebase(case.build(fakes), "http://llm.flokoa-probe.invalid:8080")
    result = await probe_provider(target, http)
    assert (result.ok, result.reason) == (False, "Unreachable"), result
    assert "DNS" in result.message
    assert "llm.flokoa-probe.invalid" in result.message


async def test_tls_success_with_custom_ca(
    case: Any, tls_fakes: FakeProviders, http: ProbeHTTP
) -> None:
    target = case.build(tls_fakes)
    assert target.base_url.startswith("https://")
    result = await probe_provider(target, http)
    assert result.ok, result


async def test_tls_untrusted_certificate(
    case: Any, tls_fakes: FakeProviders, http: ProbeHTTP
) -> None:
    """System CAs only (no custom CA): the fake's private CA is not trusted."""
    target = dataclasses.replace(case.build(tls_fakes), tls=TLSSettings())
    result = await probe_provider(target, http)
    assert (result.ok, result.reason) == (False, "TLSVerificationFailed"), result
    assert "certificate" in result.message
    assert case.api(tls_fakes).requests == []


async def test_default_headers_reach_every_provider(
    case: Any, fakes: FakeProviders, http: ProbeHTTP
) -> None:
    headers = {"X-Tenant-ID": "tenant-123", "X-Request-Source": "flokoa"}
    target = case.build(fakes, default_headers=headers)
    assert (await probe_provider(target, http)).ok
    assert (await probe_model(target, case.model, http)).ok
    received = case.api(fakes).requests
    # one list, and the model check's requests: Vertex (Gemini) = catalog + countTokens,
    # Bedrock = GetFoundationModel + GetFoundationModelAvailability
    checks = {"azure-classic": 0, "vertex": 2, "bedrock": 2, "bedrock-api-key": 2}
    assert len(received) == 1 + checks.get(case.name, 1)
    for request in received:
        assert request.header("X-Tenant-ID") == "tenant-123"
        assert request.header("X-Request-Source") == "flokoa"
        assert request.header("User-Agent").startswith("flokoa-controller/")
