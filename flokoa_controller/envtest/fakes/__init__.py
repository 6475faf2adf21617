"""Fake LLM provider endpoints enforcing each provider's real auth scheme (tests and `dev`).

`async with FakeProviders(tls=ca) as fakes:` starts one of each and wires the shared stores:

| attribute | serves | auth |
|---|---|---|
| `openai` | OpenAI-compatible `/v1/models` | `Bearer` |
| `azure` | Azure OpenAI classic (`api-version`) and v1 | `api-key` |
| `anthropic` | `/v1/models` | `x-api-key` + `anthropic-version` |
| `gemini` | `/v1beta/models` | `x-goog-api-key` / `?key=` |
| `google_oauth` | service-account JWT grant (`token_uri`) | RS256 assertion |
| `metadata` | GCE/GKE metadata server (Workload Identity) | `Metadata-Flavor: Google` |
| `vertex` | model registry list, publisher models | `Bearer` token from the two above |
| `sts` | `AssumeRoleWithWebIdentity`, `AssumeRole` | web identity token / SigV4 |
| `bedrock` | `/foundation-models` | SigV4 (static or STS keys) / `Bearer` API key |

`tls` (a `trustme.CA`) applies to the model APIs (`openai`, `azure`, `anthropic`, `gemini`,
`vertex`, `bedrock`); the identity endpoints (`google_oauth`, `metadata`, `sts`) are always
plain HTTP, as the SDKs that talk to them use their own transports. Every fake records its
requests and can be forced to answer a status or to stall (`FakeEndpoint.force`, `.delay`).
`FakeProxy` is a CONNECT proxy for proxy tests. Nothing here imports the operator.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Self

import trustme

from flokoa_controller.envtest.fakes.anthropic import FakeAnthropic
from flokoa_controller.envtest.fakes.aws import AWSCredentialStore, AWSKey, verify_sigv4
from flokoa_controller.envtest.fakes.azure import FakeAzureOpenAI
from flokoa_controller.envtest.fakes.bedrock import FakeBedrock
from flokoa_controller.envtest.fakes.gemini import FakeGemini
from flokoa_controller.envtest.fakes.google_auth import (
    FakeGoogleOAuth,
    FakeMetadataServer,
    GoogleTokens,
)
from flokoa_controller.envtest.fakes.oidc import (
    IssuerKeys,
    TokenRejected,
    TrustPolicy,
    TrustRule,
    VerifiedToken,
    verify_token,
)
from flokoa_controller.envtest.fakes.openai import FakeOpenAI
from flokoa_controller.envtest.fakes.proxy import FakeProxy
from flokoa_controller.envtest.fakes.server import FakeEndpoint, ForcedResponse, RecordedRequest
from flokoa_controller.envtest.fakes.sts import (
    DEFAULT_ROLE_ARN,
    STS_AUDIENCE,
    AssumedSession,
    FakeSTS,
    RoleConditions,
)
from flokoa_controller.envtest.fakes.vertex import FakeVertex


class FakeProviders:
    """Every fake provider endpoint, started and stopped together.

    - `tls`: serve the model APIs over HTTPS with certificates from this CA.
    - `bedrock_region`: the region the fake Bedrock expects in signatures.
    """

    def __init__(self, *, tls: trustme.CA | None = None, bedrock_region: str = "us-east-1") -> None:
        self.tls = tls
        self.google_tokens = GoogleTokens()
        self.aws_credentials = AWSCredentialStore()
        self.oidc_keys = IssuerKeys()
        """Signing keys of the Kubernetes issuers the identity fakes verify tokens against."""
        self.openai = FakeOpenAI(tls=tls)
        self.azure = FakeAzureOpenAI(tls=tls)
        self.anthropic = FakeAnthropic(tls=tls)
        self.gemini = FakeGemini(tls=tls)
        self.google_oauth = FakeGoogleOAuth(self.google_tokens)
        self.metadata = FakeMetadataServer(self.google_tokens)
        self.vertex = FakeVertex(self.google_tokens, tls=tls)
        self.sts = FakeSTS(self.aws_credentials, keys=self.oidc_keys)
        self.bedrock = FakeBedrock(self.aws_credentials, region=bedrock_region, tls=tls)

    @property
    def endpoints(self) -> tuple[FakeEndpoint, ...]:
        """Every fake endpoint."""
        return (
            self.openai,
            self.azure,
            self.anthropic,
            self.gemini,
            self.google_oauth,
            self.metadata,
            self.vertex,
            self.sts,
            self.bedrock,
        )

    def trust_issuer(
        self, issuer: str, *, jwks: dict[str, Any] | None = None, ca_pem: bytes | None = None
    ) -> None:
        """Where the identity fakes get `issuer`'s keys: `jwks` in-process, or else over HTTP
        from its discovery document (`ca_pem`: the CA of an HTTPS issuer, e.g. envtest's).

        This only says how keys are found; which issuers each cloud trusts is configured on
        the fake (`sts.add_oidc_provider`, `google_sts.add_provider`,
        `entra.add_federated_credential`).
        """
        if jwks is not None:
            self.oidc_keys.set_jwks(issuer, jwks)
        else:
            self.oidc_keys.forget(issuer)
        if ca_pem is not None:
            self.oidc_keys.ca_pem = ca_pem

    @property
    def ca_pem(self) -> bytes | None:
        """PEM of the CA behind the model APIs' certificates (None for plain HTTP)."""
        return self.tls.cert_pem.bytes() if self.tls is not None else None

    def clear(self) -> None:
        """Forget recorded requests, forced statuses and delays on every endpoint."""
        for endpoint in self.endpoints:
            endpoint.clear()

    async def start(self) -> None:
        """Start every endpoint (all or none)."""
        try:
            await asyncio.gather(*(e.start() for e in self.endpoints))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every endpoint."""
        await asyncio.gather(*(e.stop() for e in self.endpoints), return_exceptions=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


__all__ = [
    "DEFAULT_ROLE_ARN",
    "STS_AUDIENCE",
    "AWSCredentialStore",
    "AWSKey",
    "AssumedSession",
    "FakeAnthropic",
    "FakeAzureOpenAI",
    "FakeBedrock",
    "FakeEndpoint",
    "FakeGemini",
    "FakeGoogleOAuth",
    "FakeMetadataServer",
    "FakeOpenAI",
    "FakeProviders",
    "FakeProxy",
    "FakeSTS",
    "FakeVertex",
    "ForcedResponse",
    "GoogleTokens",
    "IssuerKeys",
    "RecordedRequest",
    "RoleConditions",
    "TokenRejected",
    "TrustPolicy",
    "TrustRule",
    "VerifiedToken",
    "verify_sigv4",
    "verify_token",
]
