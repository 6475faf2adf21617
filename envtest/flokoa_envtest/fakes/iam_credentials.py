"""Fake IAM Service Account Credentials API: `generateAccessToken` for a federated identity.

`POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken` with
`Authorization: Bearer <token>` (a federated token from FakeGoogleSTS, or any token of the
shared `GoogleTokens` with the `cloud-platform` scope) and a JSON body
`{"scope": [...], "lifetime": "3600s"}` → `{"accessToken": ..., "expireTime": ...}`: an access
token for the service account, issued into the shared `GoogleTokens` so FakeVertex accepts it.

The caller's principal must hold `roles/iam.workloadIdentityUser` (or
`serviceAccountTokenCreator`) on the service account: `allow_impersonation(email, principal)`
(`principal` may be a `principalSet://…/workloadIdentityPools/POOL/*` covering the pool, or
end in `*`), undone by `revoke_impersonation`. Errors are Google's
`{"error": {"code", "message", "status"}}`: 401 `UNAUTHENTICATED`, 403 `PERMISSION_DENIED`
(`iam.serviceAccounts.getAccessToken`), 400 `INVALID_ARGUMENT`. Successful calls are in `grants`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import trustme
from aiohttp import web

from flokoa_envtest.fakes.gemini import google_error
from flokoa_envtest.fakes.google_auth import CLOUD_PLATFORM_SCOPE, GoogleTokens
from flokoa_envtest.fakes.google_sts import principal_matches
from flokoa_envtest.fakes.server import FakeEndpoint, bearer_token

GENERATE_ACCESS_TOKEN = "generateAccessToken"
"""The only method served."""

MAX_LIFETIME_SECONDS = 3600
"""The longest `lifetime` without the organisation policy that extends it."""


@dataclass(frozen=True)
class Impersonation:
    """One successful generateAccessToken call."""

    principal: str
    """Who called (the federated principal)."""
    email: str
    """The service account impersonated."""
    scopes: frozenset[str]


class FakeIAMCredentials(FakeEndpoint):
    """iamcredentials.googleapis.com; `url` replaces `https://iamcredentials.googleapis.com`."""

    name = "iam-credentials"

    def __init__(
        self, tokens: GoogleTokens, *, tls: trustme.CA | None = None, host: str = "127.0.0.1"
    ) -> None:
        super().__init__(tls=tls, host=host)
        self.tokens = tokens
        self.impersonators: dict[str, set[str]] = {}
        """Service-account email → principals allowed to impersonate it."""
        self.grants: list[Impersonation] = []

    def generate_access_token_url(self, email: str) -> str:
        """The URL of `generateAccessToken` for `email`."""
        return f"{self.url}/v1/projects/-/serviceAccounts/{email}:{GENERATE_ACCESS_TOKEN}"

    def allow_impersonation(self, email: str, principal: str) -> None:
        """Grant `principal` `roles/iam.workloadIdentityUser` on service account `email`."""
        self.impersonators.setdefault(email, set()).add(principal)

    def revoke_impersonation(self, email: str, principal: str | None = None) -> None:
        """Remove `principal`'s binding on `email` (None: every binding)."""
        if principal is None:
            self.impersonators.pop(email, None)
        else:
            self.impersonators.get(email, set()).discard(principal)

    def may_impersonate(self, principal: str, email: str) -> bool:
        """Whether `principal` may get tokens for `email`."""
        return any(principal_matches(principal, p) for p in self.impersonators.get(email, ()))

    def error_body(self, status: int, message: str) -> Any:
        """Google's error shape."""
        return google_error(status, message)

    def routes(self) -> list[web.RouteDef]:
        """`POST /v1/projects/{project}/serviceAccounts/{email}:generateAccessToken`."""
        return [web.post("/v1/projects/{project}/serviceAccounts/{target}", self._generate)]

    async def _generate(self, request: web.Request) -> web.Response:
        email, _, method = request.match_info["target"].rpartition(":")
        if method != GENERATE_ACCESS_TOKEN or not email:
            return self.error(404, "Method not found.")
        grant = self.tokens.check(bearer_token(request), CLOUD_PLATFORM_SCOPE)
        if grant is None:
            return self.error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential. See "
                "https://developers.google.com/identity/sign-in/web/devconsole-project.",
            )
        if not self.may_impersonate(grant.principal, email):
            body = google_error(
                403,
                "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may "
                "not exist).",
            )
            body["error"]["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "IAM_PERMISSION_DENIED",
                    "domain": "iam.googleapis.com",
                    "metadata": {"permission": "iam.serviceAccounts.getAccessToken"},
                }
            ]
            return web.json_response(body, status=403)
        try:
            payload = json.loads(await request.read() or b"{}")
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return self.error(400, "Invalid JSON payload received.")
        scope = payload.get("scope")
        if not isinstance(scope, list) or not scope or not all(isinstance(s, str) for s in scope):
            return self.error(400, "Scope required.")
        lifetime = str(payload.get("lifetime", f"{self.tokens.lifetime}s"))
        match = re.fullmatch(r"(\d+)(?:\.\d+)?s", lifetime)
        if match is None or not 1 <= int(match.group(1)) <= MAX_LIFETIME_SECONDS:
            return self.error(
                400,
                f"The lifetime {lifetime!r} is invalid: it must be between 1s and "
                f"{MAX_LIFETIME_SECONDS}s.",
            )
        token, seconds = self.tokens.issue(email, frozenset(scope))
        seconds = min(seconds, int(match.group(1)))
        self.tokens.tokens[token].expires_at = self.tokens.clock() + seconds
        self.grants.append(Impersonation(grant.principal, email, frozenset(scope)))
        expire = datetime.fromtimestamp(self.tokens.clock() + seconds, UTC)
        return web.json_response(
            {"accessToken": token, "expireTime": expire.strftime("%Y-%m-%dT%H:%M:%SZ")}
        )


__all__ = ["FakeIAMCredentials", "Impersonation"]
