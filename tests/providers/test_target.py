"""ProbeTarget (flavor detection, repr without secrets, fingerprint) and result mapping."""

from __future__ import annotations

import dataclasses

import pytest

from flokoa_controller.providers import (
    AWSCredentials,
    BedrockSettings,
    ProbeTarget,
    TLSSettings,
    VertexSettings,
    detect_flavor,
)
from flokoa_controller.providers.result import from_response, redact_url, scrub

CANARY = "canary-Zq8vX2kP9mW4tR7y"
PEM_KEY = f"-----BEGIN PRIVATE KEY-----\n{CANARY}-pem\n-----END PRIVATE KEY-----\n"
CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBcanarycert\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    ("base_url", "api_version", "headers", "flavor"),
    [
        (None, None, {}, "openai"),
        ("https://api.openai.com/v1", None, {}, "openai"),
        ("http://vllm.local:8000/v1", None, {}, "openai"),
        ("https://r.openai.azure.com/openai/deployments/gpt-4o", None, {}, "azure-classic"),
        ("https://r.openai.azure.com", None, {}, "azure-classic"),
        ("https://r.cognitiveservices.azure.com/", None, {}, "azure-classic"),
        ("https://r.services.ai.azure.com/openai/v1/", None, {}, "azure-v1"),
        ("https://r.openai.azure.com/openai/v1", None, {}, "azure-v1"),
        ("https://gateway.corp/openai/deployments/x", "2024-10-21", {}, "azure-classic"),
        # an api-version header on another host is an ordinary header (issue 14)
        (
            "https://gateway.corp/openai/deployments/x",
            None,
            {"API-Version": "2024-02-01"},
            "openai",
        ),
        ("https://gw.corp/v1", None, {"api-version": "2024-02-01"}, "openai"),
        ("https://r.openai.azure.com/openai", None, {"api-version": "2024-02-01"}, "azure-classic"),
        ("https://evil.com/?h=openai.azure.com", None, {}, "openai"),
    ],
)
def test_openai_flavor(
    base_url: str | None, api_version: str | None, headers: dict[str, str], flavor: str
) -> None:
    assert detect_flavor("openai", base_url=base_url, api_version=api_version) == flavor
    target = ProbeTarget(
        kind="openai", base_url=base_url, api_version=api_version, default_headers=headers
    )
    assert target.flavor == flavor


def test_other_flavors() -> None:
    assert ProbeTarget(kind="anthropic").flavor == "anthropic"
    assert ProbeTarget(kind="google").flavor == "gemini"
    vertex = VertexSettings("p", "us-central1")
    assert ProbeTarget(kind="google", vertex=vertex).flavor == "vertex"
    assert ProbeTarget(kind="bedrock", bedrock=BedrockSettings("us-east-1")).flavor == "bedrock"


def test_invalid_targets() -> None:
    with pytest.raises(ValueError, match="kind"):
        ProbeTarget(kind="cohere")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="BedrockSettings"):
        ProbeTarget(kind="bedrock")
    with pytest.raises(ValueError, match="VertexSettings"):
        ProbeTarget(kind="google", flavor="vertex")
    with pytest.raises(ValueError, match="timeout"):
        ProbeTarget(kind="openai", timeout=0)


def every_secret_target() -> list[ProbeTarget]:
    tls = TLSSettings(CA_PEM, use_system_cas=True)
    return [
        ProbeTarget(kind="openai", api_key=CANARY, organization_id="org-1", tls=tls),
        ProbeTarget(kind="anthropic", api_key=CANARY, default_headers={"X-Auth": "h"}),
        ProbeTarget(kind="google", api_key=CANARY),
        ProbeTarget(
            kind="google",
            vertex=VertexSettings(
                "p",
                "us-central1",
                {"client_email": "sa@p.iam", "private_key": PEM_KEY, "private_key_id": CANARY},
            ),
        ),
        ProbeTarget(
            kind="bedrock",
            bedrock=BedrockSettings(
                "us-east-1",
                role_arn="arn:aws:iam::1:role/r",
                static_credentials=AWSCredentials(CANARY + "id", CANARY + "secret", CANARY + "tok"),
            ),
        ),
        ProbeTarget(kind="bedrock", api_key=CANARY, bedrock=BedrockSettings("us-east-1")),
    ]


@pytest.mark.parametrize("target", every_secret_target(), ids=lambda t: t.flavor)
def test_repr_never_shows_secrets(target: ProbeTarget) -> None:
    for text in (
        repr(target),
        str(target),
        f"{target}",
        repr(target.tls),
        repr(target.vertex),
        repr(target.bedrock),
    ):
        assert CANARY not in text
        assert "MIIBcanarycert" not in text
    assert target.kind in repr(target)
    if target.bedrock is not None and target.bedrock.static_credentials is not None:
        assert CANARY not in repr(target.bedrock.static_credentials)
        assert "session_token=<set>" in repr(target.bedrock.static_credentials)


def test_secret_values_cover_every_secret() -> None:
    found = [t.secret_values() for t in every_secret_target()]
    assert all(found), "a target with secrets reported none"
    assert any(PEM_KEY in values for values in found)
    assert any(CANARY + "tok" in values for values in found)
    assert any(CANARY + "id" in values for values in found)  # the access key ID too


def test_fingerprint() -> None:
    base = ProbeTarget(kind="openai", api_key="k1", base_url="https://a/v1")
    same = ProbeTarget(kind="openai", api_key="k1", base_url="https://a/v1")
    assert base.fingerprint() == same.fingerprint()
    assert "k1" not in base.fingerprint()
    for changed in (
        dataclasses.replace(base, api_key="k2"),
        dataclasses.replace(base, base_url="https://b/v1"),
        dataclasses.replace(base, tls=TLSSettings(CA_PEM)),
        dataclasses.replace(base, default_headers={"X": "1"}),
        dataclasses.replace(base, timeout=5),
    ):
        assert changed.fingerprint() != base.fingerprint()
    creds = AWSCredentials("id", "secret")
    b1 = ProbeTarget(kind="bedrock", bedrock=BedrockSettings("us-east-1", static_credentials=creds))
    b2 = dataclasses.replace(
        b1, bedrock=BedrockSettings("us-east-1", static_credentials=AWSCredentials("id", "other"))
    )
    assert b1.fingerprint() != b2.fingerprint()


def test_default_headers_are_read_only() -> None:
    headers = {"X": "1"}
    target = ProbeTarget(kind="openai", default_headers=headers)
    headers["Y"] = "2"
    assert dict(target.default_headers) == {"X": "1"}
    with pytest.raises(TypeError):
        target.default_headers["Z"] = "3"  # type: ignore[index]


# -- result mapping -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h/v1beta/models?key=AIzaSECRET", "https://h/v1beta/models?key=REDACTED"),
        (
            "https://u:pw@h/openai/models?api-version=2024-10-21",
            "https://h/openai/models?api-version=2024-10-21",
        ),
        (
            "https://h/x?api-version=1&sig=abc&pageSize=1",
            "https://h/x?api-version=1&sig=REDACTED&pageSize=1",
        ),
        ("https://h/x#frag", "https://h/x"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_scrub() -> None:
    assert scrub("key sk-proj-abcdefghijklmnop was wrong", ()) == "key sk-proj… was wrong"
    assert (
        scrub("token abcdef-secret-123 leaked", ["abcdef-secret-123"]) == "token <redacted> leaked"
    )
    assert scrub("short", ["ab"]) == "short"
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJzYUBwIn0.c2lnbmF0dXJlLWJ5dGVz"
    assert scrub(f"body: assertion={jwt}&x=1", ()) == "body: assertion=<redacted JWT>&x=1"


@pytest.mark.parametrize(
    ("check", "status", "body", "reason", "ok"),
    [
        ("provider", 200, b'{"data": []}', "ProbeSucceeded", True),
        ("provider", 200, b"<html>login</html>", "UnexpectedResponse", False),
        ("provider", 200, b"[]", "UnexpectedResponse", False),
        ("provider", 204, b"", "UnexpectedResponse", False),
        ("model", 404, b"{}", "ModelNotFound", False),
        ("provider", 404, b"{}", "EndpointNotFound", False),
        ("provider", 410, b"{}", "EndpointNotFound", False),
        ("provider", 400, b'{"error": {"message": "bad"}}', "UnexpectedResponse", False),
        ("provider", 502, b"gateway", "ProviderUnavailable", False),
        ("provider", 429, b"{}", "RateLimited", True),
    ],
)
def test_from_response(check: str, status: int, body: bytes, reason: str, ok: bool) -> None:
    result = from_response(
        check,  # type: ignore[arg-type]
        method="GET",
        url="https://h/v1/models",
        status=status,
        body=body,
        duration=0.1,
        subject='model "m"',
    )
    assert (result.reason, result.ok) == (reason, ok)
    assert "GET https://h/v1/models" in result.message
    assert str(status) in result.message


def test_error_text_of_providers_is_kept_and_scrubbed() -> None:
    body = b'{"error": {"message": "Incorrect API key provided: sk-live-1234567890abcdef"}}'
    result = from_response(
        "provider",
        method="GET",
        url="https://h/v1/models",
        status=401,
        body=body,
        duration=0,
        secrets=["sk-live-1234567890abcdef"],
    )
    assert "Incorrect API key provided" in result.message
    assert "1234567890abcdef" not in result.message
    xml = (
        b"<ErrorResponse><Error><Code>AccessDenied</Code>"
        b"<Message>Not authorized</Message></Error></ErrorResponse>"
    )
    result = from_response(
        "provider", method="GET", url="https://h/", status=403, body=xml, duration=0
    )
    assert result.message.endswith("Not authorized")
    long = b'{"message": "' + b"x" * 1000 + b'"}'
    result = from_response(
        "provider", method="GET", url="https://h/", status=500, body=long, duration=0
    )
    assert len(result.message) < 400
