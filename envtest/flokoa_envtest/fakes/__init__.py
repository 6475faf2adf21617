"""Fake LLM provider endpoints enforcing each provider's real auth scheme (tests and `dev`).

`async with FakeProviders(tls=ca) as fakes:` starts one of each and wires the shared stores:

| attribute | serves | auth |
|---|---|---|
| `openai` | OpenAI-compatible `/v1/models` | `Bearer` |
| `azure` | Azure OpenAI classic (`api-version`) and v1 | `api-key` / Entra `Bearer` |
| `anthropic` | `/v1/models` (aliases resolved) | `x-api-key` + `anthropic-version` |
| `gemini` | `/v1beta/models` | `x-goog-api-key` / `?key=` |
| `google_oauth` | service-account JWT grant (`token_uri`) | RS256 assertion |
| `metadata` | GCE/GKE metadata server (Workload Identity) | `Metadata-Flavor: Google` |
| `vertex` | model registry, publisher models, `countTokens` | Google `Bearer` (1) |
| `google_sts` | `POST /v1/token`, RFC 8693 (`token_url`) | ServiceAccount token |
| `iam_credentials` | `…/serviceAccounts/EMAIL:generateAccessToken` | federated `Bearer` |
| `entra` | `POST /{tenant}/oauth2/v2.0/token` (`token_url(t)`) | ServiceAccount token |
| `sts` | `AssumeRoleWithWebIdentity`, `AssumeRole` | ServiceAccount token / SigV4 |
| `bedrock` | models, availability, inference profiles | SigV4 (static, STS) / `Bearer` API key |

(1) tokens from `google_oauth`, `metadata` or `iam_credentials`; a federated token from
`google_sts` only in projects where its principal was granted (`vertex.grant`).

Shared stores: `google_tokens` (GoogleTokens), `aws_credentials` (AWSCredentialStore),
`entra_tokens` (EntraTokens) and `oidc_keys` (IssuerKeys: how the identity fakes find a
cluster issuer's keys; `trust_issuer(issuer, jwks=..., ca_pem=...)`, by default fetched from
`{issuer}/.well-known/openid-configuration`).

Keyless identity per ServiceAccount (tokens from envtest's TokenRequest API) — the trust each
test configures, and what the operator then sends:

- AWS: `sts.add_oidc_provider(issuer, account=...)`, `sts.allow_web_identity(role_arn, issuer,
  subject)`, optionally `sts.set_role_conditions(role, external_id=, source_identity=)`;
  `AssumeRoleWithWebIdentity` with a token of audience `sts.amazonaws.com` (botocore), then
  SigV4 with the keys (Bedrock; chained `AssumeRole`).
- Google: `aud = google_sts.add_provider(project_number, pool, provider, issuer)`,
  `google_sts.allow_subject(aud, subject)`; then
  `iam_credentials.allow_impersonation(email, google_sts.principal(aud, subject))` and/or
  `vertex.grant(project, principal)`. Exchange at `google_sts.token_url` (token audience `aud`
  or `"https:" + aud`), then `iam_credentials.generate_access_token_url(email)`.
- Azure: `entra.add_federated_credential(tenant, client_id, issuer, subject)` (audience
  `api://AzureADTokenExchange`); client credentials with `client_assertion` at
  `entra.token_url(tenant)`, scope `https://cognitiveservices.azure.com/.default`, then
  `Authorization: Bearer` to `azure`.

Each verifies the RS256 signature, `iss`, `aud`, `exp`/`nbf` and the subject against its
`trust_policy` (a `TrustPolicy`; rotate at run time with `revoke(subject=...)`), and answers
refusals in the cloud's own error shape and codes. Successful exchanges are recorded in
`sts.sessions`, `google_sts.exchanges`, `iam_credentials.grants`, `entra.grants`.

`tls` (a `trustme.CA`) applies to the model APIs (`openai`, `azure`, `anthropic`, `gemini`,
`vertex`, `bedrock`) and to `google_sts`, `iam_credentials` and `entra` (which the operator
calls through its own HTTP stack); `google_oauth`, `metadata` and `sts` are always plain HTTP,
as the SDKs that talk to them use their own transports. Every fake records its requests and
can be forced to answer a status or to stall (`FakeEndpoint.force`, `.delay`). `FakeProxy` is
a CONNECT proxy for proxy tests; `FakeDNS` a UDP DNS server (answers configured names,
never answers a black-hole suffix) for resolver tests. Nothing here imports the operator.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Self

import trustme

from flokoa_envtest.fakes.anthropic import FakeAnthropic
from flokoa_envtest.fakes.aws import AWSCredentialStore, AWSKey, verify_sigv4
from flokoa_envtest.fakes.azure import FakeAzureOpenAI
from flokoa_envtest.fakes.bedrock import FakeBedrock
from flokoa_envtest.fakes.dns import FakeDNS
from flokoa_envtest.fakes.entra import (
    COGNITIVE_SERVICES_SCOPE,
    ENTRA_AUDIENCE,
    EntraTokens,
    FakeEntra,
)
from flokoa_envtest.fakes.gemini import FakeGemini
from flokoa_envtest.fakes.google_auth import (
    FakeGoogleOAuth,
    FakeMetadataServer,
    GoogleTokens,
)
from flokoa_envtest.fakes.google_sts import (
    FakeGoogleSTS,
    federated_principal,
    provider_name,
)
from flokoa_envtest.fakes.iam_credentials import FakeIAMCredentials
from flokoa_envtest.fakes.oidc import (
    IssuerKeys,
    TokenRejected,
    TrustPolicy,
    TrustRule,
    VerifiedToken,
    verify_token,
)
from flokoa_envtest.fakes.openai import FakeOpenAI
from flokoa_envtest.fakes.proxy import FakeProxy
from flokoa_envtest.fakes.server import FakeEndpoint, ForcedResponse, RecordedRequest
from flokoa_envtest.fakes.sts import (
    DEFAULT_ROLE_ARN,
    STS_AUDIENCE,
    AssumedSession,
    FakeSTS,
    RoleConditions,
)
from flokoa_envtest.fakes.vertex import FakeVertex


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
        self.entra_tokens = EntraTokens()
        self.azure = FakeAzureOpenAI(tls=tls, entra_tokens=self.entra_tokens)
        self.anthropic = FakeAnthropic(tls=tls)
        self.gemini = FakeGemini(tls=tls)
        self.google_oauth = FakeGoogleOAuth(self.google_tokens)
        self.metadata = FakeMetadataServer(self.google_tokens)
        self.vertex = FakeVertex(self.google_tokens, tls=tls)
        self.google_sts = FakeGoogleSTS(self.google_tokens, keys=self.oidc_keys, tls=tls)
        self.iam_credentials = FakeIAMCredentials(self.google_tokens, tls=tls)
        self.entra = FakeEntra(self.entra_tokens, keys=self.oidc_keys, tls=tls)
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
            self.google_sts,
            self.iam_credentials,
            self.entra,
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
    "COGNITIVE_SERVICES_SCOPE",
    "DEFAULT_ROLE_ARN",
    "ENTRA_AUDIENCE",
    "STS_AUDIENCE",
    "AWSCredentialStore",
    "AWSKey",
    "AssumedSession",
    "EntraTokens",
    "FakeAnthropic",
    "FakeAzureOpenAI",
    "FakeBedrock",
    "FakeDNS",
    "FakeEndpoint",
    "FakeEntra",
    "FakeGemini",
    "FakeGoogleOAuth",
    "FakeGoogleSTS",
    "FakeIAMCredentials",
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
    "federated_principal",
    "provider_name",
    "verify_sigv4",
    "verify_token",
]
