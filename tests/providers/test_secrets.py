"""Secret values never reach results, logs or exception text, whatever the provider echoes."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from flokoa_envtest.fakes import FakeProviders

from flokoa_controller.providers import (
    BedrockSettings,
    ProbeHTTP,
    ProbeResult,
    ProbeTarget,
    probe_model,
    probe_provider,
)
from flokoa_controller.providers.target import AmbientIdentity

AUTH_HEADERS = ("Authorization", "api-key", "x-api-key", "x-goog-api-key", "X-Amz-Security-Token")


async def run_all(target: ProbeTarget, http: ProbeHTTP, model: str) -> list[ProbeResult]:
    return [await probe_provider(target, http), await probe_model(target, model, http)]


def check(
    results: list[ProbeResult], logs: str, secrets: list[str], tools: SimpleNamespace
) -> None:
    assert secrets, "nothing to look for"
    for result in results:
        tools.assert_no_secrets(result, *secrets)
    for secret in secrets:
        assert secret not in logs


async def test_echoed_secrets_are_scrubbed(
    case: Any,
    fakes: FakeProviders,
    http: ProbeHTTP,
    tools: SimpleNamespace,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The provider answers with every secret it was sent, in the body and the Location."""
    caplog.set_level(logging.DEBUG)
    target = case.build(fakes)
    api = case.api(fakes)
    ok = await run_all(target, http, case.model)
    assert all(r.ok for r in ok)
    sent: list[str] = list(tools.secrets_of(target))

    def credentials_in(request: Any) -> list[str]:
        """Everything in a request that authenticates it (a SigV4 signature does not)."""
        found = []
        for name in AUTH_HEADERS:
            value = request.header(name)
            if value and not value.startswith("AWS4-HMAC-SHA256"):
                found.append(value.split(" ")[-1])
        return found

    def echo(request: Any) -> str:
        """What a careless provider answers: every credential it received."""
        received = credentials_in(request)
        sent.extend(received)
        return " / ".join([*received, *tools.secrets_of(target)])

    results = []
    for status in (400, 401, 403, 404, 429, 500):
        if status == 403:
            api.force(status, body=lambda r: {"message": f"you sent {echo(r)}"})
        elif status == 500:
            api.force(status, body=lambda r: f"you sent {echo(r)}")
        else:
            api.force(status, body=lambda r: {"error": {"message": f"you sent {echo(r)}"}})
        results += await run_all(target, http, case.model)
        api.forced.clear()
    for request in api.requests:
        sent.extend(credentials_in(request))
    api.force(302, headers={"Location": f"https://login.example/?token={sent[-1]}"})
    results += await run_all(target, http, case.model)
    assert any(r.reason == "InvalidCredentials" for r in results)
    assert any("you sent" in r.message for r in results), "the provider's text was dropped"
    check(results, caplog.text, sent, tools)


async def test_credential_failures_keep_secrets(
    fakes: FakeProviders,
    http: ProbeHTTP,
    tools: SimpleNamespace,
    caplog: pytest.LogCaptureFixture,
    web_identity: SimpleNamespace,
) -> None:
    """STS and token-endpoint failures, botocore and google-auth at DEBUG: nothing leaks."""
    caplog.set_level(logging.DEBUG)
    irsa = ProbeTarget(
        kind="bedrock",
        base_url=fakes.bedrock.url,
        bedrock=BedrockSettings("us-east-1"),
        identity=AmbientIdentity(allowed=True),
    )
    results = await run_all(irsa, http, "amazon.titan-text-express-v1")
    assert all(r.ok for r in results)
    issued = list(fakes.aws_credentials.keys.values())
    fakes.sts.roles.clear()
    chained = ProbeTarget(
        kind="bedrock",
        base_url=fakes.bedrock.url,
        bedrock=BedrockSettings("us-east-1", role_arn="arn:aws:iam::1:role/x"),
        identity=AmbientIdentity(allowed=True),
    )
    results += await run_all(chained, http, "amazon.titan-text-express-v1")
    static = tools.cases["bedrock"].build(fakes, valid=False)
    results += await run_all(static, http, "amazon.titan-text-express-v1")
    vertex = tools.cases["vertex"].build(fakes)
    results += await run_all(vertex, http, "gemini-2.5-pro")
    forged = tools.cases["vertex"].build(fakes, valid=False)
    results += await run_all(forged, http, "gemini-2.5-pro")
    secrets = [web_identity.token, *tools.secrets_of(static), *tools.secrets_of(vertex)]
    for key in issued:
        secrets += [key.secret_access_key, key.session_token or ""]
    secrets += list(fakes.google_tokens.tokens)
    assert any(r.reason == "InvalidCredentials" for r in results)
    check(results, caplog.text, [s for s in secrets if s], tools)
