"""Fake Microsoft Entra ID token endpoint: Workload Identity's client-assertion grant.

`POST /{tenant}/oauth2/v2.0/token` (form-encoded) with `grant_type=client_credentials`,
`client_id`, `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`,
`client_assertion` (the Kubernetes ServiceAccount token, audience `api://AzureADTokenExchange`)
and `scope=https://cognitiveservices.azure.com/.default` →
`{"token_type": "Bearer", "expires_in": ..., "ext_expires_in": ..., "access_token": ...}`.

An application (tenant, client ID) accepts an assertion only through a federated identity
credential: `add_federated_credential(tenant, client_id, issuer, subject, audience)` — a rule
of `trust_policy` (identity `TENANT/CLIENT_ID`), removable at run time. The assertion must
verify against its issuer's keys (`keys`, shared `IssuerKeys`) and be current. Access tokens
go into the shared `EntraTokens`, which FakeAzureOpenAI checks for `Authorization: Bearer`.

Errors are Entra's JSON (`error`, `error_description` starting with the AADSTS code, plus
trace and correlation IDs, `error_codes`, `timestamp`, `error_uri`), status 400:
AADSTS90002 unknown tenant, 700016 unknown application, 70003 grant type,
7000218 no assertion, 700211/700212/700213 no federated credential matching the assertion's
issuer/audience/subject, 700024 assertion outside its validity, 700027 bad signature, 50166
issuer keys unreachable, 1002012 scope without `/.default`, 500011 unknown resource.
Successful grants are in `grants`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import trustme
from aiohttp import web

from flokoa_envtest.fakes.oidc import (
    FederatedTokenEndpoint,
    IssuerKeys,
    TokenRejected,
    VerifiedToken,
    decode_unverified,
)
from flokoa_envtest.fakes.server import random_token

ENTRA_AUDIENCE = "api://AzureADTokenExchange"
"""The audience of a ServiceAccount token exchanged with Entra (Azure Workload Identity)."""
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
"""`client_assertion_type` of a JWT client assertion."""
COGNITIVE_SERVICES_RESOURCE = "https://cognitiveservices.azure.com"
"""The resource of Azure OpenAI (the access token's audience)."""
COGNITIVE_SERVICES_SCOPE = COGNITIVE_SERVICES_RESOURCE + "/.default"
"""The scope to request for Azure OpenAI."""


@dataclass
class EntraAccessToken:
    """One issued access token: for which application, which resource, until when."""

    tenant: str
    client_id: str
    resource: str
    expires_at: float

    @property
    def principal(self) -> str:
        """`TENANT/CLIENT_ID`."""
        return f"{self.tenant}/{self.client_id}"


class EntraTokens:
    """Access tokens issued by FakeEntra and accepted by FakeAzureOpenAI."""

    def __init__(self, *, clock: Callable[[], float] = time.time, lifetime: int = 3599) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.tokens: dict[str, EntraAccessToken] = {}

    def issue(self, tenant: str, client_id: str, resource: str) -> tuple[str, int]:
        """A new access token and its lifetime in seconds."""
        token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + random_token("", 64) + ".fake"
        self.tokens[token] = EntraAccessToken(
            tenant, client_id, resource, self.clock() + self.lifetime
        )
        return token, self.lifetime

    def check(self, token: str | None, resource: str) -> EntraAccessToken | None:
        """The grant behind a valid, unexpired `token` for `resource`, else None."""
        grant = self.tokens.get(token or "")
        if grant is None or grant.expires_at <= self.clock() or grant.resource != resource:
            return None
        return grant

    def revoke(self, tenant: str, client_id: str) -> None:
        """Invalidate every token of the application."""
        self.tokens = {
            t: g for t, g in self.tokens.items() if (g.tenant, g.client_id) != (tenant, client_id)
        }


@dataclass(frozen=True)
class EntraGrant:
    """One successful token request."""

    tenant: str
    client_id: str
    subject: str
    issuer: str
    scope: str


class FakeEntra(FederatedTokenEndpoint):
    """`login.microsoftonline.com`; `authority` is `url`, `token_url(tenant)` the endpoint.

    `trust_policy` holds the federated identity credentials (identity = `TENANT/CLIENT_ID`).
    """

    name = "entra"

    def __init__(
        self,
        tokens: EntraTokens,
        *,
        keys: IssuerKeys | None = None,
        tls: trustme.CA | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(clock=tokens.clock, keys=keys, tls=tls, host=host)
        self.tokens = tokens
        self.applications: dict[str, set[str]] = {}
        """Tenant ID → client IDs of its applications (managed identities included)."""
        self.resources: set[str] = {COGNITIVE_SERVICES_RESOURCE}
        """Resources (scope without `/.default`) tokens may be requested for."""
        self.grants: list[EntraGrant] = []

    @property
    def authority(self) -> str:
        """The authority host URL (`https://login.microsoftonline.com` in Azure)."""
        return self.url

    def token_url(self, tenant: str) -> str:
        """`{authority}/{tenant}/oauth2/v2.0/token`."""
        return f"{self.url}/{tenant}/oauth2/v2.0/token"

    def add_application(self, tenant: str, client_id: str) -> None:
        """Create an application (or user-assigned managed identity) in `tenant`."""
        self.applications.setdefault(tenant, set()).add(client_id)

    def add_federated_credential(
        self,
        tenant: str,
        client_id: str,
        issuer: str,
        subject: str,
        audience: str = ENTRA_AUDIENCE,
    ) -> None:
        """Trust tokens of `issuer` for `subject` and `audience` as application `client_id`
        (the application is created if needed)."""
        self.add_application(tenant, client_id)
        self.trust_policy.allow(issuer, subject, audience, f"{tenant}/{client_id}")

    def remove_federated_credential(
        self, tenant: str, client_id: str, *, subject: str | None = None
    ) -> int:
        """Delete the application's credentials (only `subject`'s when given); how many."""
        return self.trust_policy.revoke(identity=f"{tenant}/{client_id}", subject=subject)

    def error_body(self, status: int, message: str) -> Any:
        """Entra's error shape (generic server error)."""
        return _aad_error("temporarily_unavailable", 90033, message)

    def routes(self) -> list[web.RouteDef]:
        """`POST /{tenant}/oauth2/v2.0/token`."""
        return [web.post("/{tenant}/oauth2/v2.0/token", self._token)]

    async def _token(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        form = {k: str(v) for k, v in (await request.post()).items()}
        if tenant not in self.applications:
            return _fail(
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant "
                "ID and are signing into the correct cloud. Check with your subscription "
                "administrator, this may happen if there are no active subscriptions for the "
                "tenant.",
            )
        grant_type = form.get("grant_type", "")
        if grant_type != "client_credentials":
            return _fail(
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        client_id = form.get("client_id", "")
        if not client_id:
            return _fail(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        if client_id not in self.applications[tenant]:
            return _fail(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'. This can happen if the application has not been installed by "
                "the administrator of the tenant or consented to by any user in the tenant. "
                "You may have sent your authentication request to the wrong tenant.",
            )
        assertion = form.get("client_assertion", "")
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE or not assertion:
            return _fail(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
            )
        scope = form.get("scope", "")
        if not scope.endswith("/.default") or " " in scope.strip():
            return _fail(
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        resource = scope.removesuffix("/.default")
        if resource not in self.resources:
            return _fail(
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named "
                f"{tenant}. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You "
                "might have sent your authentication request to the wrong tenant.",
            )
        refused = await self._check_assertion(tenant, client_id, assertion)
        if isinstance(refused, web.Response):
            return refused
        token, lifetime = self.tokens.issue(tenant, client_id, resource)
        self.grants.append(EntraGrant(tenant, client_id, refused.subject, refused.issuer, scope))
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            }
        )

    async def _check_assertion(
        self, tenant: str, client_id: str, assertion: str
    ) -> VerifiedToken | web.Response:
        """The verified assertion, or Entra's refusal."""
        identity = f"{tenant}/{client_id}"
        rules = self.trust_policy.rules_for(identity)
        try:
            _, claims, _, _ = decode_unverified(assertion)
        except TokenRejected:
            return _fail(
                "invalid_client",
                50027,
                "JWT token is invalid or malformed.",
            )
        issuer = str(claims.get("iss", ""))
        if not any(r.issuer == issuer for r in rules):
            return _fail(
                "invalid_client",
                700211,
                f"No matching federated identity record found for presented assertion issuer "
                f"'{issuer}'. Please check your federated identity credential Subject, "
                "Audience and Issuer against the presented assertion.",
            )
        try:
            verified = await self.verify(assertion, issuers=[issuer], audiences=None)
        except TokenRejected as exc:
            return self._rejected(exc)
        if not any(r.issuer == issuer and r.audience in verified.audiences for r in rules):
            return _fail(
                "invalid_client",
                700212,
                "No matching federated identity record found for presented assertion audience "
                f"'{','.join(verified.audiences)}'. Please check your federated identity "
                "credential Subject, Audience and Issuer against the presented assertion.",
            )
        if not self.trust_policy.allows(verified, identity):
            return _fail(
                "invalid_client",
                700213,
                "No matching federated identity record found for presented assertion subject "
                f"'{verified.subject}'. Check your federated identity credential Subject, "
                "Audience and Issuer against the presented assertion.",
            )
        return verified

    def _rejected(self, exc: TokenRejected) -> web.Response:
        if exc.reason in ("expired", "not_yet_valid"):
            now = datetime.fromtimestamp(self.tokens.clock(), UTC)
            valid_from = _when(exc.claims.get("nbf"))
            expiry = _when(exc.claims.get("exp"))
            return _fail(
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range. Current time: "
                f"{now.isoformat()}, assertion valid from {valid_from}, expiry time of "
                f"assertion {expiry}.",
            )
        if exc.reason == "keys_unavailable":
            return _fail("invalid_client", 50166, "Request to External OIDC endpoint failed.")
        return _fail("invalid_client", 700027, "Client assertion failed signature validation.")


def _when(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).isoformat()
    return "(none)"


def _aad_error(error: str, code: int, message: str) -> dict[str, Any]:
    """Entra's error body: the AADSTS code leads the description, with trace IDs."""
    now = datetime.now(UTC)
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    return {
        "error": error,
        "error_description": (
            f"AADSTS{code}: {message} Trace ID: {trace} Correlation ID: {correlation} "
            f"Timestamp: {stamp}"
        ),
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }


def _fail(error: str, code: int, message: str, status: int = 400) -> web.Response:
    return web.json_response(_aad_error(error, code, message), status=status)


__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "COGNITIVE_SERVICES_RESOURCE",
    "COGNITIVE_SERVICES_SCOPE",
    "ENTRA_AUDIENCE",
    "EntraAccessToken",
    "EntraGrant",
    "EntraTokens",
    "FakeEntra",
]
