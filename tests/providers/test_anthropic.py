"""Anthropic specifics: x-api-key and anthropic-version."""

from __future__ import annotations

from flokoa_envtest.fakes import FakeProviders

from flokoa_controller.providers import ProbeHTTP, ProbeTarget, probe_model, probe_provider
from flokoa_controller.providers.anthropic import models_url


def test_urls() -> None:
    assert models_url(ProbeTarget(kind="anthropic")) == "https://api.anthropic.com/v1/models"
    assert models_url(ProbeTarget(kind="anthropic", base_url="https://gw/anthropic/v1/")) == (
        "https://gw/anthropic/v1/models"
    )
    assert models_url(ProbeTarget(kind="anthropic"), "claude-x") == (
        "https://api.anthropic.com/v1/models/claude-x"
    )


async def test_headers(fakes: FakeProviders, http: ProbeHTTP) -> None:
    target = ProbeTarget(
        kind="anthropic",
        base_url=fakes.anthropic.base_url,
        api_key=fakes.anthropic.api_key,
        anthropic_version="2023-01-01",
        default_headers={"anthropic-beta": "tools-2024-04-04"},
    )
    assert (await probe_provider(target, http)).ok
    assert (await probe_model(target, "claude-opus-4-20250514", http)).ok
    for request in fakes.anthropic.requests:
        assert request.header("x-api-key") == fakes.anthropic.api_key
        assert request.header("anthropic-version") == "2023-01-01"
        assert request.header("anthropic-beta") == "tools-2024-04-04"
        assert request.header("Authorization") is None


async def test_default_version(fakes: FakeProviders, http: ProbeHTTP) -> None:
    target = ProbeTarget(
        kind="anthropic", base_url=fakes.anthropic.base_url, api_key=fakes.anthropic.api_key
    )
    assert (await probe_provider(target, http)).ok
    assert fakes.anthropic.requests[-1].header("anthropic-version") == "2023-06-01"


async def test_unknown_version(fakes: FakeProviders, http: ProbeHTTP) -> None:
    target = ProbeTarget(
        kind="anthropic",
        base_url=fakes.anthropic.base_url,
        api_key=fakes.anthropic.api_key,
        anthropic_version="2099-01-01",
    )
    result = await probe_provider(target, http)
    assert (result.reason, result.http_status) == ("UnexpectedResponse", 400)
    assert "anthropic-version" in result.message


async def test_alias_resolves_to_the_dated_model(fakes: FakeProviders, http: ProbeHTTP) -> None:
    target = ProbeTarget(
        kind="anthropic", base_url=fakes.anthropic.base_url, api_key=fakes.anthropic.api_key
    )
    alias = await probe_model(target, "claude-sonnet-4-0", http)
    assert alias.ok, alias
    assert alias.model is not None
    assert alias.model.resolved == "claude-sonnet-4-20250514"
    assert "resolves to claude-sonnet-4-20250514" in alias.message
    dated = await probe_model(target, "claude-sonnet-4-20250514", http)
    assert dated.ok
    assert dated.model is None
    # a hostile answer naming something odd is not reported
    fakes.anthropic.aliases["claude-x"] = "claude-sonnet-4-20250514"
    fakes.anthropic.models.add("bad\nname")
    fakes.anthropic.aliases["claude-y"] = "bad\nname"
    odd = await probe_model(target, "claude-y", http)
    assert odd.ok
    assert odd.model is None
