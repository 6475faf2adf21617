"""Fake Google identity: an OAuth2 token endpoint (service-account JWT grant) and a GCE/GKE
metadata server (Workload Identity), both issuing tokens into a shared `GoogleTokens`.

Token endpoint (`FakeGoogleOAuth`, `POST /token`): `grant_type` must be
`urn:ietf:params:oauth:grant-type:jwt-bearer`; the `assertion` is a JWT that must be RS256-
signed by the private key of a service account this fake issued (`issue_service_account()`
returns its key JSON, `token_uri` pointing here), with `kid` = its key ID, `iss` = its email,
`aud` = Google's token audience (or this token URI), a `scope` claim and a current
`iat`/`exp` (at most one hour apart).
Failures are 400 `invalid_grant`/`invalid_scope` like Google's. `disable(email)` makes grants
for that account fail.

Metadata server (`FakeMetadataServer`): every request needs `Metadata-Flavor: Google` (403
otherwise) and every answer carries it. Serves the ping (`/`), project ID, the service
account's email, scopes and `token` (the Workload Identity path google-auth takes with
`GCE_METADATA_HOST`/`GCE_METADATA_IP` pointing here). `workload_identity = False` makes the
token endpoint refuse, as an unbound Kubernetes service account would.

Both endpoints are plain HTTP: google-auth talks to them with its own transport.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from flokoa_envtest.fakes.server import FakeEndpoint, random_token

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
"""The OAuth2 grant type of a service-account assertion."""

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
"""The scope Vertex AI needs."""

GOOGLE_TOKEN_AUDIENCES = (
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
    "https://accounts.google.com/o/oauth2/token",
)
"""JWT audiences Google's token endpoint accepts (google-auth always uses the first)."""


@dataclass
class AccessToken:
    """One issued token: who it is for, its scopes and when it expires (epoch seconds)."""

    principal: str
    scopes: frozenset[str]
    expires_at: float


class GoogleTokens:
    """Access tokens issued by the fake token endpoint and metadata server."""

    def __init__(self, *, clock: Callable[[], float] = time.time, lifetime: int = 3600) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.tokens: dict[str, AccessToken] = {}
        self.issued = 0
        """How many tokens were issued (tests count grants with it)."""

    def issue(self, principal: str, scopes: frozenset[str]) -> tuple[str, int]:
        """A new token for `principal` and its lifetime in seconds."""
        token = random_token("ya29.fake-", 48)
        self.tokens[token] = AccessToken(principal, scopes, self.clock() + self.lifetime)
        self.issued += 1
        return token, self.lifetime

    def check(self, token: str | None, scope: str = CLOUD_PLATFORM_SCOPE) -> AccessToken | None:
        """The grant behind a valid, unexpired `token` carrying `scope`, else None."""
        grant = self.tokens.get(token or "")
        if grant is None or grant.expires_at <= self.clock() or scope not in grant.scopes:
            return None
        return grant

    def revoke_principal(self, principal: str) -> None:
        """Invalidate every token issued to `principal`."""
        self.tokens = {t: g for t, g in self.tokens.items() if g.principal != principal}


@dataclass
class ServiceAccount:
    """A service account the fake token endpoint knows (public half of its key)."""

    email: str
    key_id: str
    public_key: rsa.RSAPublicKey
    project_id: str
    enabled: bool = True
    grants: int = field(default=0)


def oauth_error(error: str, description: str, status: int = 400) -> web.Response:
    """An OAuth2 error reply (`{"error": ..., "error_description": ...}`, RFC 6749 5.2)."""
    return web.json_response({"error": error, "error_description": description}, status=status)


def oauth_error_body(status: int, message: str) -> dict[str, str]:
    """OAuth2's error shape for a forced `status` reply (`FakeEndpoint.error_body`)."""
    return {
        "error": "server_error" if status >= 500 else "invalid_request",
        "error_description": message,
    }


def _b64decode(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class FakeGoogleOAuth(FakeEndpoint):
    """OAuth2 token endpoint for service-account JWT grants (`token_uri` = `url + "/token"`)."""

    name = "google-oauth"

    def __init__(self, tokens: GoogleTokens, *, host: str = "127.0.0.1") -> None:
        super().__init__(tls=None, host=host)
        self.tokens = tokens
        self.accounts: dict[str, ServiceAccount] = {}

    @property
    def token_uri(self) -> str:
        """The `token_uri` service-account keys carry."""
        return f"{self.url}/token"

    def error_body(self, status: int, message: str) -> Any:
        """OAuth2's error shape."""
        return oauth_error_body(status, message)

    def routes(self) -> list[web.RouteDef]:
        """`POST /token`."""
        return [web.post("/token", self._token)]

    def issue_service_account(
        self, email: str | None = None, *, project_id: str = "fake-project"
    ) -> dict[str, Any]:
        """Create a service account and return its key JSON (as `json.load` would give)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        email = email or f"{random_token('sa-', 8).lower()}@{project_id}.iam.gserviceaccount.com"
        key_id = random_token("", 40).lower()
        self.accounts[email] = ServiceAccount(email, key_id, key.public_key(), project_id)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": email,
            "client_id": str(abs(hash(email)) % 10**21),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{email}",
            "universe_domain": "googleapis.com",
        }

    def disable(self, email: str) -> None:
        """Refuse further grants for `email` and invalidate its tokens."""
        self.accounts[email].enabled = False
        self.tokens.revoke_principal(email)

    def enable(self, email: str) -> None:
        """Accept grants for `email` again."""
        self.accounts[email].enabled = True

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != JWT_BEARER_GRANT:
            return oauth_error("unsupported_grant_type", "Invalid grant_type")
        assertion = form.get("assertion")
        if not isinstance(assertion, str) or assertion.count(".") != 2:
            return oauth_error("invalid_request", "Invalid assertion format")
        head_b64, claims_b64, sig_b64 = assertion.split(".")
        try:
            header = json.loads(_b64decode(head_b64))
            claims = json.loads(_b64decode(claims_b64))
            signature = _b64decode(sig_b64)
        except ValueError:
            return oauth_error("invalid_grant", "Invalid JWT: cannot decode")
        account = self.accounts.get(str(claims.get("iss")))
        if account is None:
            return oauth_error("invalid_grant", "Invalid grant: account not found")
        if header.get("alg") != "RS256" or header.get("kid") != account.key_id:
            return oauth_error("invalid_grant", "Invalid JWT Signature.")
        try:
            account.public_key.verify(
                signature,
                f"{head_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return oauth_error("invalid_grant", "Invalid JWT Signature.")
        now = self.tokens.clock()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            return oauth_error("invalid_grant", "Invalid JWT: iat and exp are required")
        if iat > now + 300 or exp < now - 300 or exp - iat > 3600:
            return oauth_error(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe.",
            )
        if claims.get("aud") not in (self.token_uri, *GOOGLE_TOKEN_AUDIENCES):
            return oauth_error("invalid_grant", "Invalid JWT: audience is not the token URI")
        scopes = frozenset(str(claims.get("scope", "")).split())
        if not scopes:
            return oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience.")
        if not account.enabled:
            return oauth_error("invalid_grant", "Invalid grant: account disabled")
        account.grants += 1
        token, lifetime = self.tokens.issue(account.email, scopes)
        return web.json_response(
            {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}
        )


class FakeMetadataServer(FakeEndpoint):
    """GCE/GKE metadata server; point `GCE_METADATA_HOST` and `GCE_METADATA_IP` at `address`."""

    name = "gce-metadata"

    def __init__(
        self,
        tokens: GoogleTokens,
        *,
        email: str = "workload@fake-project.iam.gserviceaccount.com",
        project_id: str = "fake-project",
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(tls=None, host=host)
        self.tokens = tokens
        self.email = email
        self.project_id = project_id
        self.scopes: frozenset[str] = frozenset({CLOUD_PLATFORM_SCOPE})
        self.workload_identity = True
        """False: the token endpoint refuses (an unbound Kubernetes service account)."""

    @property
    def address(self) -> str:
        """`host:port`, the value for `GCE_METADATA_HOST` / `GCE_METADATA_IP`."""
        return f"{self.host}:{self.port}"

    def routes(self) -> list[web.RouteDef]:
        """Ping, project ID, universe domain and the service-account subtree."""
        base = "/computeMetadata/v1"
        account = base + "/instance/service-accounts/{account}"
        return [
            web.get("/", self._ping),
            web.get(base + "/project/project-id", self._project_id),
            web.get(base + "/universe/universe-domain", self._universe),
            web.get(account + "/", self._account),
            web.get(account + "/email", self._email),
            web.get(account + "/scopes", self._scopes),
            web.get(account + "/token", self._token),
        ]

    @staticmethod
    def _text(text: str, status: int = 200) -> web.Response:
        return web.Response(text=text, status=status, headers={"Metadata-Flavor": "Google"})

    def _json(self, data: Any) -> web.Response:
        return web.json_response(data, headers={"Metadata-Flavor": "Google"})

    def _check(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Metadata-Flavor") != "Google":
            return self._text("Missing required header: Metadata-Flavor", 403)
        account = request.match_info.get("account")
        if account is not None and account not in ("default", self.email):
            return self._text("not found", 404)
        return None

    async def _ping(self, request: web.Request) -> web.Response:
        denied = self._check(request)
        return denied if denied is not None else self._text("computeMetadata/\n")

    async def _project_id(self, request: web.Request) -> web.Response:
        denied = self._check(request)
        return denied if denied is not None else self._text(self.project_id)

    async def _universe(self, request: web.Request) -> web.Response:
        denied = self._check(request)
        return denied if denied is not None else self._text("googleapis.com")

    async def _account(self, request: web.Request) -> web.Response:
        denied = self._check(request)
        if denied is not None:
            return denied
        return self._json(
            {"aliases": ["default"], "email": self.email, "scopes": sorted(self.scopes)}
        )

    async def _email(self, request: web.Request) -> web.Response:
        denied = self._check(request)
        return denied if denied is not None else self._text(self.email)

    async def _scopes(self, request: web.Request) -> web.Response:
        denied = self._check(request)
        return denied if denied is not None else self._text("\n".join(sorted(self.scopes)))

    async def _token(self, request: web.Request) -> web.Response:
        denied = self._check(request)
        if denied is not None:
            return denied
        if not self.workload_identity:
            return self._text(
                "Unable to generate access token; IAM returned 403 Forbidden: Permission "
                "'iam.serviceAccounts.getAccessToken' denied",
                403,
            )
        requested = request.query.get("scopes")
        scopes = frozenset(requested.split(",")) if requested else self.scopes
        token, lifetime = self.tokens.issue(self.email, scopes)
        return self._json({"access_token": token, "expires_in": lifetime, "token_type": "Bearer"})
