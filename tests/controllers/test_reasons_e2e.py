"""End to end: every failure reason, for every provider kind, lands in status as it should.

Each test creates one ModelProvider per (kind, case) at once and waits for all of them, so a
whole matrix costs one operator start.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conftest import Harness

KINDS = ("openai", "azure", "anthropic", "gemini", "vertex", "bedrock")


def spec_for(
    h: Harness,
    kind: str,
    case: str,
    *,
    url: str | None = None,
    key_secret: str | None = None,
    timeout: int = 5,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A spec of ``kind`` pointing at its fake (or ``url``), tagged with ``X-Case: case``."""
    f = h.fakes
    key_ref = {"name": key_secret or f"{kind}-key"}
    if kind == "openai":
        spec: dict[str, Any] = {
            "apiKeySecretRef": key_ref,
            "openai": {"baseURL": f"{url}/v1" if url else f.openai.base_url},
        }
    elif kind == "azure":
        spec = {
            "apiKeySecretRef": key_ref,
            "openai": {
                "baseURL": f"{url}/openai" if url else f.azure.classic_base_url,
                "apiVersion": "2024-10-21",
            },
        }
    elif kind == "anthropic":
        spec = {"apiKeySecretRef": key_ref, "anthropic": {"baseURL": url or f.anthropic.base_url}}
    elif kind == "gemini":
        spec = {"apiKeySecretRef": key_ref, "google": {"baseURL": url or f.gemini.base_url}}
    elif kind == "vertex":
        spec = {
            "google": {
                "baseURL": url or f.vertex.base_url,
                "vertex": {
                    "projectID": "fake-project",
                    "location": "us-central1",
                    "serviceAccountKeySecretRef": {"name": key_secret or "vertex-sa"},
                },
            }
        }
    else:
        spec = {
            "bedrock": {
                "region": "us-east-1",
                "endpointURL": url or f.bedrock.url,
                "credentialsSecretRef": {"name": key_secret or "aws-keys"},
            }
        }
    block = next(k for k in ("openai", "anthropic", "google", "bedrock") if k in spec)
    spec[block]["timeoutSeconds"] = timeout
    spec["defaultHeaders"] = {"X-Case": case}
    spec.update(extra or {})
    return spec


async def put_valid_secrets(h: Harness) -> None:
    """A working credential for every kind, under the default secret names of spec_for."""
    f = h.fakes
    await h.put_secret("openai-key", {"api-key": f.openai.api_key})
    await h.put_secret("azure-key", {"api-key": f.azure.api_key})
    await h.put_secret("anthropic-key", {"api-key": f.anthropic.api_key})
    await h.put_secret("gemini-key", {"api-key": f.gemini.api_key})
    sa = f.google_oauth.issue_service_account(project_id="fake-project")
    await h.put_secret("vertex-sa", {"credentials.json": json.dumps(sa)})
    aws = f.aws_credentials.add_static()
    await h.put_secret(
        "aws-keys",
        {"AWS_ACCESS_KEY_ID": aws.access_key_id, "AWS_SECRET_ACCESS_KEY": aws.secret_access_key},
    )


def requests_tagged(h: Harness, case: str) -> list[Any]:
    """Requests any fake received carrying ``X-Case: case``."""
    return [r for e in h.fakes.endpoints for r in e.requests if r.header("X-Case") == case]


async def test_secret_reasons_for_every_kind(harness: Harness) -> None:
    h = harness
    await put_valid_secrets(h)
    key_of = {
        "openai": "api-key",
        "azure": "api-key",
        "anthropic": "api-key",
        "gemini": "api-key",
        "vertex": "credentials.json",
        "bedrock": "AWS_SECRET_ACCESS_KEY",
    }
    malformed = {
        "openai": "  \n",
        "azure": "key with spaces",
        "anthropic": "sk-ant\r\nX-Evil: 1",
        "gemini": "",
        "vertex": '{"type": "authorized_user"}',
        "bedrock": "has a\nline break",
    }
    cases: list[tuple[str, str, str]] = []  # (provider name, expected reason, secret named)
    for kind in KINDS:
        key = key_of[kind]
        name = f"{kind}-nosecret"
        await h.put_provider(name, spec_for(h, kind, name, key_secret=f"{kind}-absent"))
        cases.append((name, "SecretNotFound", f"{kind}-absent"))

        name = f"{kind}-nokey"
        await h.put_secret(f"{kind}-wrongkey", {"unrelated": "x"})
        await h.put_provider(name, spec_for(h, kind, name, key_secret=f"{kind}-wrongkey"))
        cases.append((name, "SecretKeyNotFound", f"{kind}-wrongkey"))

        name = f"{kind}-invalid"
        data = {key: malformed[kind]}
        if kind == "bedrock":
            data["AWS_ACCESS_KEY_ID"] = "AKIAFAKEFAKEFAKE"
        await h.put_secret(f"{kind}-malformed", data)
        await h.put_provider(name, spec_for(h, kind, name, key_secret=f"{kind}-malformed"))
        cases.append((name, "InvalidSecret", f"{kind}-malformed"))

        name = f"{kind}-badca"
        await h.put_secret(f"{kind}-ca", {"ca.crt": "-----BEGIN CERTIFICATE-----\nnope\n"})
        tls = {"tls": {"caSecretRef": {"name": f"{kind}-ca"}}}
        await h.put_provider(name, spec_for(h, kind, name, extra=tls))
        cases.append((name, "InvalidCACertificate", f"{kind}-ca"))

    for name, reason, secret in cases:
        obj = await h.wait_reason("provider", name, reason, status="False")
        assert obj["status"]["ready"] is False
        resolved = h.condition(obj, "SecretResolved")
        assert (resolved["status"], resolved["reason"]) == ("False", reason)
        assert f"{h.namespace}/{secret}" in resolved["message"], resolved["message"]
        for type_ in ("CredentialsValid", "EndpointReachable"):
            assert h.condition(obj, type_)["status"] == "Unknown"
        assert not requests_tagged(h, name), f"{name}: probed despite an unusable Secret"
    for kind in KINDS:
        await h.wait_event(f"{kind}-nosecret", "SecretNotFound")


async def test_invalid_credentials_for_every_kind(harness: Harness) -> None:
    h = harness
    f = h.fakes
    await put_valid_secrets(h)
    revoked = f.openai.keys.new()
    f.openai.keys.revoke(revoked)
    await h.put_secret("openai-bad", {"api-key": revoked})
    await h.put_secret("azure-bad", {"api-key": "azk-unknown"})
    await h.put_secret("anthropic-bad", {"api-key": "sk-ant-unknown"})
    await h.put_secret("gemini-bad", {"api-key": "AIzaUnknown"})
    sa = f.google_oauth.issue_service_account(project_id="fake-project")
    f.google_oauth.disable(sa["client_email"])
    await h.put_secret("vertex-bad", {"credentials.json": json.dumps(sa)})
    aws = f.aws_credentials.add_static()
    f.aws_credentials.revoke(aws.access_key_id)
    await h.put_secret(
        "bedrock-bad",
        {"AWS_ACCESS_KEY_ID": aws.access_key_id, "AWS_SECRET_ACCESS_KEY": aws.secret_access_key},
    )
    for kind in KINDS:
        await h.put_provider(f"{kind}-creds", spec_for(h, kind, kind, key_secret=f"{kind}-bad"))
    for kind in KINDS:
        obj = await h.wait_reason("provider", f"{kind}-creds", "InvalidCredentials", status="False")
        creds = h.condition(obj, "CredentialsValid")
        assert (creds["status"], creds["reason"]) == ("False", "InvalidCredentials")
        assert h.condition(obj, "SecretResolved")["status"] == "True"
        if kind != "vertex":  # Vertex fails at the token endpoint, before the API
            assert h.condition(obj, "EndpointReachable")["status"] == "True"
            assert (
                "401" in creds["message"] or "403" in creds["message"] or "400" in creds["message"]
            )
        event = await h.wait_event(f"{kind}-creds", "ProbeFailed")
        assert event["type"] == "Warning"
        assert event["message"].startswith("InvalidCredentials")


async def test_network_and_http_reasons_for_every_kind(harness: Harness) -> None:
    h = harness
    await put_valid_secrets(h)
    StatusServer = h.StatusServer
    async with (
        StatusServer(503) as unavailable,
        StatusServer(404) as missing,
        StatusServer(429) as limited,
        StatusServer(None) as stalled,
    ):
        expectations = {
            "unreachable": (f"http://127.0.0.1:{h.closed_port()}", "Unreachable", "False", 5),
            "tls": (h.tls_openai.url, "TLSVerificationFailed", "False", 5),
            "timeout": (stalled.url, "Timeout", "False", 1),
            "unavailable": (unavailable.url, "ProviderUnavailable", "False", 5),
            "notfound": (missing.url, "EndpointNotFound", "False", 5),
            "ratelimited": (limited.url, "RateLimited", "True", 5),
        }
        for kind in KINDS:
            for case, (url, _, _, timeout) in expectations.items():
                name = f"{kind}-{case}"
                await h.put_provider(name, spec_for(h, kind, name, url=url, timeout=timeout))
        for kind in KINDS:
            for case, (_, reason, status, _) in expectations.items():
                obj = await h.wait_reason("provider", f"{kind}-{case}", reason, status=status)
                endpoint = h.condition(obj, "EndpointReachable")
                ready = h.ready_condition(obj)
                assert ready is not None
                if status == "True":
                    assert "rate-limited" in ready["message"]
                    assert endpoint["status"] == "True"
                    continue
                assert (endpoint["status"], endpoint["reason"]) == ("False", reason)
                assert h.condition(obj, "CredentialsValid")["status"] == "Unknown"
                assert "127.0.0.1" in ready["message"], ready["message"]
        assert unavailable.requests >= len(KINDS)
