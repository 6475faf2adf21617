"""Fake Google Security Token Service: Workload Identity Federation's RFC 8693 token exchange.

`POST /v1/token` (form-encoded, as google-auth sends it, or JSON) with
`grant_type=urn:ietf:params:oauth:grant-type:token-exchange`,
`audience=//iam.googleapis.com/projects/NUM/locations/global/workloadIdentityPools/POOL/providers/PROV`,
`subject_token_type=urn:ietf:params:oauth:token-type:jwt` (or `id_token`),
`requested_token_type=urn:ietf:params:oauth:token-type:access_token`, `scope` and the
Kubernetes ServiceAccount token as `subject_token`.

The audience must name a provider registered with `add_provider(...)`; the token must verify
against its issuer's keys (`keys`, shared `IssuerKeys`), carry one of the provider's allowed
audiences in `aud` (default: the provider's name with and without `https:`) and be current;
its `sub` must be allowed by the trust policy (`trust_policy`, identity = the provider name;
`allow_subject(audience, subject)`), standing in for the provider's attribute condition. The
answer is a federated access token for
`principal://iam.googleapis.com/projects/NUM/locations/global/workloadIdentityPools/POOL/subject/SUB`
issued into the shared `GoogleTokens`, so FakeIAMCredentials and FakeVertex recognise it.

Errors are OAuth's `{"error": ..., "error_description": ...}` with Google's codes:
`invalid_target` (unknown or disabled pool/provider), `invalid_grant` (token refused),
`unauthorized_client` (attribute condition), `invalid_request`, `unsupported_grant_type`,
`invalid_scope`. Every exchange that succeeded is in `exchanges`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import trustme
from aiohttp import web

from flokoa_envtest.fakes.google_auth import GoogleTokens, oauth_error, oauth_error_body
from flokoa_envtest.fakes.oidc import (
    FederatedTokenEndpoint,
    IssuerKeys,
    TokenRejected,
)

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
"""RFC 8693's grant type."""
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
"""`subject_token_type` of an OIDC (Kubernetes) token."""
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
"""The other `subject_token_type` Google accepts for OIDC providers."""
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
"""`requested_token_type` (and `issued_token_type`) of a federated access token."""


def provider_name(project_number: str, pool: str, provider: str) -> str:
    """`//iam.googleapis.com/projects/NUM/locations/global/workloadIdentityPools/POOL/providers/PROV`."""
    return (
        f"//iam.googleapis.com/projects/{project_number}/locations/global/"
        f"workloadIdentityPools/{pool}/providers/{provider}"
    )


def federated_principal(project_number: str, pool: str, subject: str) -> str:
    """The IAM principal of a federated identity: `principal://…/subject/SUBJECT`."""
    return (
        f"principal://iam.googleapis.com/projects/{project_number}/locations/global/"
        f"workloadIdentityPools/{pool}/subject/{subject}"
    )


def principal_matches(principal: str, member: str) -> bool:
    """Whether IAM binding `member` covers `principal`.

    `principalSet://…/workloadIdentityPools/POOL/*` covers every `principal://…/POOL/subject/…`
    of that pool (as IAM); any other member is a pattern (`*` matches anything).
    """
    if member.startswith("principalSet://") and member.endswith("/*"):
        pool = member[len("principalSet://") : -1]
        return principal.startswith("principal://" + pool) or principal.startswith(
            "principalSet://" + pool
        )
    return fnmatchcase(principal, member)


@dataclass
class WorkloadIdentityProvider:
    """An OIDC provider of a workload identity pool."""

    name: str
    """`//iam.googleapis.com/projects/NUM/…/providers/PROV` (the exchange's `audience`)."""
    project_number: str
    pool: str
    issuer: str
    allowed_audiences: tuple[str, ...]
    enabled: bool = True


@dataclass(frozen=True)
class Exchange:
    """One successful token exchange."""

    audience: str
    subject: str
    principal: str
    scopes: frozenset[str]


class FakeGoogleSTS(FederatedTokenEndpoint):
    """Google STS; `token_url` (`url + "/v1/token"`) is what the exchange POSTs to.

    `trust_policy`: which subjects each provider accepts (identity = provider name).
    """

    name = "google-sts"

    def __init__(
        self,
        tokens: GoogleTokens,
        *,
        keys: IssuerKeys | None = None,
        tls: trustme.CA | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(clock=tokens.clock, keys=keys, tls=tls, host=host)
        self.tokens = tokens
        self.providers: dict[str, WorkloadIdentityProvider] = {}
        """Provider name (the exchange audience) → provider."""
        self.exchanges: list[Exchange] = []

    @property
    def token_url(self) -> str:
        """The token exchange endpoint (`https://sts.googleapis.com/v1/token` in Google)."""
        return f"{self.url}/v1/token"

    def add_provider(
        self,
        project_number: str,
        pool: str,
        provider: str,
        issuer: str,
        *,
        allowed_audiences: Iterable[str] | None = None,
    ) -> str:
        """Register a pool's OIDC provider trusting `issuer`; returns its name (the audience).

        `allowed_audiences` None: Google's default, the provider name with and without the
        `https:` prefix.
        """
        name = provider_name(project_number, pool, provider)
        audiences = (
            tuple(allowed_audiences)
            if allowed_audiences is not None
            else (
                name,
                "https:" + name,
            )
        )
        self.providers[name] = WorkloadIdentityProvider(
            name, project_number, pool, issuer, audiences
        )
        return name

    def allow_subject(self, audience: str, subject: str) -> None:
        """Accept tokens of `subject` (`*` suffix: a prefix) at provider `audience`."""
        provider = self.providers[audience]
        for allowed in provider.allowed_audiences:
            self.trust_policy.allow(provider.issuer, subject, allowed, provider.name)

    def principal(self, audience: str, subject: str) -> str:
        """The federated principal `subject` becomes at provider `audience`."""
        provider = self.providers[audience]
        return federated_principal(provider.project_number, provider.pool, subject)

    def error_body(self, status: int, message: str) -> Any:
        """OAuth's error shape."""
        return oauth_error_body(status, message)

    def routes(self) -> list[web.RouteDef]:
        """`POST /v1/token`."""
        return [web.post("/v1/token", self._token)]

    async def _params(self, request: web.Request) -> dict[str, str] | None:
        if request.content_type == "application/json":
            try:
                data = json.loads(await request.read())
            except ValueError:
                return None
            if not isinstance(data, dict):
                return None
            return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}
        form = await request.post()
        return {k: str(v) for k, v in form.items()}

    async def _token(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        if params is None:
            return oauth_error("invalid_request", "Invalid JSON payload received.")
        if params.get("grant_type") != TOKEN_EXCHANGE_GRANT:
            return oauth_error(
                "unsupported_grant_type",
                f'Invalid value for "grant_type". Expected "{TOKEN_EXCHANGE_GRANT}".',
            )
        if params.get("requested_token_type") != ACCESS_TOKEN_TYPE:
            return oauth_error(
                "invalid_request",
                f'Invalid value for "requested_token_type". Expected "{ACCESS_TOKEN_TYPE}".',
            )
        if params.get("subject_token_type") not in (JWT_TOKEN_TYPE, ID_TOKEN_TYPE):
            return oauth_error(
                "invalid_request",
                'Invalid value for "subject_token_type". Expected one of '
                f'"{JWT_TOKEN_TYPE}", "{ID_TOKEN_TYPE}".',
            )
        subject_token = params.get("subject_token", "")
        if not subject_token:
            return oauth_error("invalid_request", 'Missing required field "subject_token".')
        provider = self.providers.get(params.get("audience", ""))
        if provider is None or not provider.enabled:
            return oauth_error(
                "invalid_target",
                'The target service indicated by the "audience" parameters is invalid. This '
                "might either be because the pool or provider is disabled or deleted or "
                "because it doesn't exist.",
            )
        scopes = frozenset(params.get("scope", "").split())
        if not scopes:
            return oauth_error("invalid_scope", "Empty or missing scope not allowed.")
        try:
            verified = await self.verify(
                subject_token, issuers=[provider.issuer], audiences=provider.allowed_audiences
            )
        except TokenRejected as exc:
            return oauth_error("invalid_grant", self._describe(exc, provider))
        if not self.trust_policy.allows(verified, provider.name):
            return oauth_error(
                "unauthorized_client",
                "The given credential is rejected by the attribute condition.",
            )
        principal = federated_principal(provider.project_number, provider.pool, verified.subject)
        token, lifetime = self.tokens.issue(principal, scopes)
        self.exchanges.append(Exchange(provider.name, verified.subject, principal, scopes))
        return web.json_response(
            {
                "access_token": token,
                "issued_token_type": ACCESS_TOKEN_TYPE,
                "token_type": "Bearer",
                "expires_in": lifetime,
            }
        )

    @staticmethod
    def _describe(exc: TokenRejected, provider: WorkloadIdentityProvider) -> str:
        """Google's `error_description` for a refused subject token."""
        if exc.reason == "issuer":
            return (
                f"The issuer in ID Token {exc.claims.get('iss')} does not match the expected "
                f"ones: {provider.issuer}."
            )
        if exc.reason == "audience":
            aud = exc.claims.get("aud")
            return f"The audience in ID Token [{aud}] does not match the expected audience."
        if exc.reason == "expired":
            return "The ID Token has expired."
        if exc.reason == "not_yet_valid":
            return "The ID Token is not yet valid."
        if exc.reason == "keys_unavailable":
            return "Failed to retrieve the public keys of the OIDC issuer."
        if exc.reason == "malformed":
            return "Unable to parse the ID Token."
        return "Invalid ID Token signature."


__all__ = [
    "ACCESS_TOKEN_TYPE",
    "JWT_TOKEN_TYPE",
    "TOKEN_EXCHANGE_GRANT",
    "Exchange",
    "FakeGoogleSTS",
    "WorkloadIdentityProvider",
    "federated_principal",
    "principal_matches",
    "provider_name",
]
