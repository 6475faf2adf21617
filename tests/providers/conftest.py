"""Fixtures for the provider probe tests: hermetic environment, fakes, targets per provider."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import trustme
from flokoa_envtest.dev import DEV_ALLOWED_DESTINATIONS
from flokoa_envtest.fakes import DEFAULT_ROLE_ARN, FakeEndpoint, FakeProviders
from flokoa_envtest.testing import closed_port

from flokoa_controller.providers import (
    AWSCredentials,
    BedrockSettings,
    ProbeHTTP,
    ProbeResult,
    ProbeTarget,
    TLSSettings,
    VertexSettings,
)
from flokoa_controller.providers.destinations import DestinationPolicy
from flokoa_controller.providers.identity import IdentityBroker, IdentitySettings

LOOPBACK_ALLOWED = DestinationPolicy.build(allow=DEV_ALLOWED_DESTINATIONS)
"""The default destination policy with loopback allowed, as for `flokoa-controller dev`."""


@pytest.fixture(autouse=True)
def _hermetic(hermetic_env: None) -> None:
    """Every test here runs with the root conftest's hermetic environment."""


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """The CA the TLS fakes' certificates come from."""
    return trustme.CA()


@pytest.fixture
async def fakes() -> AsyncIterator[FakeProviders]:
    """Every fake provider over plain HTTP."""
    async with FakeProviders() as started:
        yield started


@pytest.fixture
async def tls_fakes(ca: trustme.CA) -> AsyncIterator[FakeProviders]:
    """Every fake provider, model APIs over HTTPS with certificates from `ca`."""
    async with FakeProviders(tls=ca) as started:
        yield started


def identity_settings(*fakes: FakeProviders, **kw: Any) -> IdentitySettings:
    """Identity settings an administrator would give for the fakes: their token endpoint
    allowed, their loopback hosts allowed to receive identity-derived credentials."""
    uris = tuple(f.google_oauth.token_uri for f in fakes)
    kw.setdefault("allowed_hosts", ("127.0.0.1", "localhost"))
    return IdentitySettings(google_token_uris=uris, **kw)


@pytest.fixture
async def http(request: pytest.FixtureRequest) -> AsyncIterator[ProbeHTTP]:
    """The probes' HTTP client: loopback allowed (the fakes listen on 127.0.0.1), identity
    settings allowing the test's fakes."""
    started = [
        request.getfixturevalue(name)
        for name in ("fakes", "tls_fakes")
        if name in request.fixturenames
    ]
    broker = IdentityBroker(identity_settings(*started))
    async with ProbeHTTP(policy=LOOPBACK_ALLOWED, identity=broker) as client:
        yield client


@pytest.fixture
def web_identity(
    fakes: FakeProviders, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> SimpleNamespace:
    """The IRSA environment EKS injects, with STS at the fake."""
    token_file = tmp_path / "token"
    token = fakes.sts.new_web_identity_token()
    token_file.write_text(token)
    monkeypatch.setenv("AWS_ROLE_ARN", DEFAULT_ROLE_ARN)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", fakes.sts.url)
    return SimpleNamespace(token=token, token_file=token_file)


def tls_for(fakes: FakeProviders) -> TLSSettings:
    """TLS settings trusting the fakes' CA (plain defaults when they are not TLS)."""
    return TLSSettings(ca_pem=fakes.ca_pem) if fakes.ca_pem else TLSSettings()


def rebase(target: ProbeTarget, root: str) -> ProbeTarget:
    """`target` with its base URL's scheme and host:port replaced by `root`'s."""
    assert target.base_url is not None
    new = urlsplit(root)
    old = urlsplit(target.base_url)
    url = urlunsplit((new.scheme, new.netloc, old.path, old.query, ""))
    return dataclasses.replace(target, base_url=url)


@dataclass(frozen=True)
class Case:
    """How to build a target for one provider flavor against `FakeProviders`."""

    name: str
    build: Callable[..., ProbeTarget]
    api: Callable[[FakeProviders], FakeEndpoint]
    model: str


def _openai(f: FakeProviders, valid: bool = True, **kw: Any) -> ProbeTarget:
    key = f.openai.api_key if valid else "sk-fake-not-a-valid-key-0123456789"
    return ProbeTarget(kind="openai", base_url=f.openai.base_url, api_key=key, tls=tls_for(f), **kw)


def _azure_classic(f: FakeProviders, valid: bool = True, **kw: Any) -> ProbeTarget:
    key = f.azure.api_key if valid else "azk-not-a-valid-key-0123456789"
    kw.setdefault("api_version", "2024-10-21")
    return ProbeTarget(
        kind="openai", base_url=f.azure.classic_base_url, api_key=key, tls=tls_for(f), **kw
    )


def _azure_v1(f: FakeProviders, valid: bool = True, **kw: Any) -> ProbeTarget:
    key = f.azure.api_key if valid else "azk-not-a-valid-key-0123456789"
    return ProbeTarget(
        kind="openai",
        flavor="azure-v1",
        base_url=f.azure.v1_base_url,
        api_key=key,
        tls=tls_for(f),
        **kw,
    )


def _anthropic(f: FakeProviders, valid: bool = True, **kw: Any) -> ProbeTarget:
    key = f.anthropic.api_key if valid else "sk-ant-not-a-valid-key-0123456789"
    return ProbeTarget(
        kind="anthropic", base_url=f.anthropic.base_url, api_key=key, tls=tls_for(f), **kw
    )


def _gemini(f: FakeProviders, valid: bool = True, **kw: Any) -> ProbeTarget:
    key = f.gemini.api_key if valid else "AIzaNotAValidKey0123456789"
    return ProbeTarget(kind="google", base_url=f.gemini.base_url, api_key=key, tls=tls_for(f), **kw)


def service_account(f: FakeProviders) -> dict[str, Any]:
    """One service account per `FakeProviders` (RSA key generation is the slow part)."""
    cached = getattr(f, "_test_sa", None)
    if cached is None:
        cached = f.google_oauth.issue_service_account(project_id="fake-project")
        f._test_sa = cached  # type: ignore[attr-defined]
    return dict(cached)


def _vertex(f: FakeProviders, valid: bool = True, **kw: Any) -> ProbeTarget:
    info = service_account(f)
    if not valid:
        info["client_email"] = "unknown@fake-project.iam.gserviceaccount.com"
    return ProbeTarget(
        kind="google",
        base_url=f.vertex.base_url,
        vertex=VertexSettings("fake-project", "us-central1", info),
        tls=tls_for(f),
        **kw,
    )


def static_key(f: FakeProviders) -> AWSCredentials:
    """A static AWS key the fake Bedrock accepts (one per `FakeProviders`)."""
    cached = getattr(f, "_test_aws", None)
    if cached is None:
        key = f.aws_credentials.add_static()
        cached = AWSCredentials(key.access_key_id, key.secret_access_key)
        f._test_aws = cached  # type: ignore[attr-defined]
    assert isinstance(cached, AWSCredentials)
    return cached


def _bedrock(f: FakeProviders, valid: bool = True, **kw: Any) -> ProbeTarget:
    creds = static_key(f)
    if not valid:
        creds = AWSCredentials(creds.access_key_id, "wrong" + creds.secret_access_key[5:])
    return ProbeTarget(
        kind="bedrock",
        base_url=f.bedrock.url,
        bedrock=BedrockSettings(region="us-east-1", static_credentials=creds),
        tls=tls_for(f),
        **kw,
    )


def _bedrock_api_key(f: FakeProviders, valid: bool = True, **kw: Any) -> ProbeTarget:
    key = f.bedrock.api_keys.new() if valid else "ABSKnot-a-valid-key-0123456789"
    return ProbeTarget(
        kind="bedrock",
        base_url=f.bedrock.url,
        api_key=key,
        bedrock=BedrockSettings(region="us-east-1"),
        tls=tls_for(f),
        **kw,
    )


CASES: dict[str, Case] = {
    c.name: c
    for c in (
        Case("openai", _openai, lambda f: f.openai, "gpt-4o"),
        Case("azure-classic", _azure_classic, lambda f: f.azure, "gpt-4o"),
        Case("azure-v1", _azure_v1, lambda f: f.azure, "gpt-4o-mini"),
        Case("anthropic", _anthropic, lambda f: f.anthropic, "claude-sonnet-4-20250514"),
        Case("gemini", _gemini, lambda f: f.gemini, "gemini-2.0-flash"),
        Case("vertex", _vertex, lambda f: f.vertex, "gemini-2.5-pro"),
        Case(
            "bedrock",
            _bedrock,
            lambda f: f.bedrock,
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
        ),
        Case(
            "bedrock-api-key", _bedrock_api_key, lambda f: f.bedrock, "amazon.titan-text-express-v1"
        ),
    )
}
"""Every provider flavor the probes speak."""


def assert_no_secrets(result: ProbeResult, *secrets: str) -> None:
    """No secret value (nor a long slice of one) appears anywhere in `result`."""
    text = repr(result) + str(result)
    for secret in secrets:
        if not secret:
            continue
        assert secret not in text
        for start in range(0, max(1, len(secret) - 12), 6):
            assert secret[start : start + 12] not in text, "a slice of a secret leaked"


def secrets_of(target: ProbeTarget) -> tuple[str, ...]:
    """Every secret value `target` holds."""
    return target.secret_values()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test taking `case` runs once per provider flavor (restricted by `case_names`)."""
    if "case" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("cases")
        names = marker.args if marker is not None else tuple(CASES)
        metafunc.parametrize("case", [CASES[n] for n in names], ids=list(names))


def pytest_configure(config: pytest.Config) -> None:
    """Register the `cases` marker."""
    config.addinivalue_line("markers", "cases(*names): provider flavors a `case` test runs for")


@pytest.fixture
def tools() -> SimpleNamespace:
    """Helpers for the test modules (they cannot import this conftest)."""
    return SimpleNamespace(
        rebase=rebase,
        closed_port=closed_port,
        assert_no_secrets=assert_no_secrets,
        secrets_of=secrets_of,
        tls_for=tls_for,
        service_account=service_account,
        static_key=static_key,
        cases=CASES,
    )
