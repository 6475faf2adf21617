"""Cloud identities: per-namespace workload identity, pinned token endpoints, ambient policy.

A ModelProvider's credential comes from one of three places (`ProbeTarget.identity`):

- **its own Secrets** (`identity is None`): API keys, static AWS keys, a Google
  service-account key. They are the tenant's to send wherever its spec says; a Google key's
  `token_uri` must still be Google's token endpoint (`GOOGLE_TOKEN_URI`, others only when the
  administrator lists them in `IdentitySettings.google_token_uris`).
- **a ServiceAccount of its namespace** (`ServiceAccountIdentity`, `spec.serviceAccountName`):
  the operator reads the ServiceAccount (annotations, UID), requests a short-lived token for
  it with the TokenRequest API (`TOKEN_EXPIRATION_SECONDS`, the shortest kube-apiserver
  allows; the audience the cloud expects) and exchanges it, exactly as the cloud SDKs do in a
  pod running as that ServiceAccount:
  AWS `AssumeRoleWithWebIdentity` into annotation `eks.amazonaws.com/role-arn`; Google STS
  token exchange for the administrator's workload identity pool, then (annotation
  `iam.gke.io/gcp-service-account`) `generateAccessToken`; Entra ID client-assertion grant
  for annotation `azure.workload.identity/client-id` in `azure.workload.identity/tenant-id`
  (or the administrator's default tenant), scope `AZURE_COGNITIVE_SCOPE`.
- **the operator's own identity** (`AmbientIdentity`): botocore's default chain or Google
  ADC, only when the administrator allows the namespace; otherwise
  `AmbientIdentityNotAllowed` and nothing is sent.

Every token request is an aiohttp request through `ProbeHTTP` (system CAs, proxies from the
environment, the probe's deadline, no redirects, no tenant headers, no tenant TLS settings):
the JWT-bearer grant is signed with google-auth's `crypt` (CPU only), AWS STS requests are
plain Query POSTs (`AssumeRole` signed with botocore's `SigV4Auth`, CPU only). Only the
ambient chains' own discovery runs in botocore/google-auth, on the bounded
`AmbientExecutor`. Responses are parsed defensively (`MAX_TOKEN_RESPONSE` bytes, XML without
a DTD); errors quote only the cloud's error *code*, never a body.

A credential obtained from an identity (ServiceAccount or ambient) is sent only to the
provider's own API hosts (`identity_host_allowed`) or hosts the administrator allows.
Credentials are cached in memory only (`IdentityBroker`), keyed by the ServiceAccount's UID
(or the target), and refreshed `REFRESH_MARGIN` before they expire; a provider probe always
exchanges afresh, so a revoked trust shows at the next re-validation.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import time
import xml.etree.ElementTree as ElementTree
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from flokoa_controller.providers.ambient import AmbientBusy, AmbientExecutor
from flokoa_controller.providers.endpoints import (
    AWS_DOMAIN,
    AWS_DOMAIN_CN,
    VERTEX_HOST,
    bedrock_endpoint_overrides,
    is_azure_host,
    sts_endpoint,
)
from flokoa_controller.providers.result import ProbeResult, Reason, failure
from flokoa_controller.providers.target import (
    AmbientIdentity,
    AWSCredentials,
    ProbeTarget,
    ServiceAccountIdentity,
    TLSSettings,
)

if TYPE_CHECKING:
    from flokoa_controller.providers.http import ProbeHTTP

log = logging.getLogger(__name__)

T = TypeVar("T")

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
"""Google's OAuth2 token endpoint: the only `token_uri` a service-account key may name
unless the administrator allows others (`--google-token-uris`)."""
GOOGLE_STS_URL = "https://sts.googleapis.com/v1/token"
"""Google Security Token Service (workload identity federation token exchange)."""
GOOGLE_IAM_CREDENTIALS_URL = "https://iamcredentials.googleapis.com"
"""IAM Service Account Credentials API root (`generateAccessToken`)."""
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
"""OAuth2 scope of Vertex AI access tokens."""
ENTRA_AUTHORITY = "https://login.microsoftonline.com"
"""Entra ID's authority in Azure's public cloud (`--azure-authority-host` for sovereign
clouds)."""
AZURE_COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"
"""Scope of Azure OpenAI access tokens."""
AZURE_TOKEN_AUDIENCE = "api://AzureADTokenExchange"
"""Audience of a ServiceAccount token presented to Entra ID (Entra Workload ID)."""
AWS_TOKEN_AUDIENCE = "sts.amazonaws.com"
"""Audience of a ServiceAccount token presented to AWS STS (IRSA)."""
TOKEN_EXPIRATION_SECONDS = 600
"""`expirationSeconds` of every TokenRequest: the shortest kube-apiserver allows."""
AWS_SESSION_SECONDS = 3600
"""`DurationSeconds` of the STS sessions the operator opens (role chaining allows 1 h)."""
REFRESH_MARGIN = 300.0
"""A cached credential is refreshed when it has less than this many seconds left."""
MAX_LIFETIME = 86400.0
"""Seconds a cached credential is kept at most, whatever its issuer claims."""
MAX_TOKEN_RESPONSE = 64 << 10
"""Bytes of a token endpoint's answer the operator parses at most."""

ANNOTATION_AWS_ROLE_ARN = "eks.amazonaws.com/role-arn"
"""IRSA: the IAM role a ServiceAccount assumes."""
ANNOTATION_AWS_STS_REGIONAL = "eks.amazonaws.com/sts-regional-endpoints"
"""IRSA: `"false"` selects the global STS endpoint (default: the regional one)."""
ANNOTATION_GCP_SERVICE_ACCOUNT = "iam.gke.io/gcp-service-account"
"""Workload Identity: the Google service account to impersonate (optional)."""
ANNOTATION_AZURE_CLIENT_ID = "azure.workload.identity/client-id"
"""Entra Workload ID: the application (client) ID of the federated identity."""
ANNOTATION_AZURE_TENANT_ID = "azure.workload.identity/tenant-id"
"""Entra Workload ID: the tenant (optional with `--azure-tenant-id`)."""

AMBIENT_FLAG = "--ambient-identity-namespaces"
"""The flag that lets namespaces use the operator's own cloud identity."""
TOKEN_URIS_FLAG = "--google-token-uris"
"""The flag that allows more service-account `token_uri`s."""
ALLOWED_HOSTS_FLAG = "--identity-allowed-hosts"
"""The flag that allows more hosts to receive identity-derived credentials."""
GOOGLE_AUDIENCE_FLAG = "--google-workload-identity-audience"
"""The flag naming the workload identity pool provider."""

_ROLE_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[-A-Za-z0-9+=,.@_/]{1,512}$")
_GOOGLE_SA_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,100}@[A-Za-z0-9.-]{1,200}$")
_AZURE_ID = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9.]{0,126}$")
OAUTH_ERROR_CODES = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
        "server_error",
        "temporarily_unavailable",
        "invalid_target",
    }
)
"""The registered OAuth 2.0 error codes (RFC 6749 5.2 and 4.1.2.1, RFC 8693 `invalid_target`)
a refusal may name: Google's token endpoint, Google STS and Entra ID answer with these; any
other `error` value is not quoted."""
_GOOGLE_STATUS = re.compile(r"^[A-Z][A-Z_]{0,39}$")
"""google.rpc.Code names (`PERMISSION_DENIED`)."""
_AWS_CODE = re.compile(r"^[A-Z][A-Za-z.]{0,63}$")
"""AWS error codes (`AccessDenied`, `InvalidIdentityToken`): letters and dots only."""
_SESSION_CHARS = re.compile(r"[^\w+=,.@-]")


class IdentityError(Exception):
    """No credential could be obtained; `reason` and `message` (never a secret or a body)."""

    def __init__(self, reason: Reason, message: str, url: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.url = url


def identity_failure(
    exc: IdentityError, target: ProbeTarget, *, subject: str, started: float
) -> ProbeResult:
    """The failed probe of `target` whose credential could not be obtained: `exc`'s reason
    and message (after `subject: `), no URL, timed from `started` (`time.monotonic()`)."""
    return failure(
        exc.reason,
        f"{subject + ': ' if subject else ''}{exc.message}",
        url="",
        duration=time.monotonic() - started,
        secrets=target.secret_values(),
    )


@dataclass(frozen=True)
class IdentitySettings:
    """The administrator's identity settings (controller flags; see `controllers.setup`)."""

    google_token_uris: tuple[str, ...] = ()
    """Service-account `token_uri`s allowed besides `GOOGLE_TOKEN_URI` (exact URLs)."""
    google_workload_identity_audience: str | None = None
    """The workload identity pool provider (`//iam.googleapis.com/projects/N/locations/
    global/workloadIdentityPools/POOL/providers/PROVIDER`); unset: no Google workload
    identity (`WorkloadIdentityNotConfigured`)."""
    google_token_audience: str | None = None
    """Audience of the ServiceAccount token for Google; unset: `https:` + the pool
    provider (Google's default allowed audience)."""
    google_sts_url: str = GOOGLE_STS_URL
    """Google STS token endpoint."""
    google_iam_credentials_url: str = GOOGLE_IAM_CREDENTIALS_URL
    """IAM Credentials API root."""
    azure_authority_host: str = ENTRA_AUTHORITY
    """Entra ID authority."""
    azure_tenant_id: str | None = None
    """Tenant used when a ServiceAccount has no `azure.workload.identity/tenant-id`."""
    allowed_hosts: tuple[str, ...] = ()
    """More hosts (`name` or `*.domain`) that may receive identity-derived credentials."""
    aws_sts_endpoint: str | None = None
    """STS endpoint; unset: the operator's `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL`
    (read at use, like botocore), else regional STS. Never from a tenant."""

    def sts_override(self) -> str | None:
        """The STS endpoint the administrator set (flag or environment), if any."""
        env = os.environ
        return (
            self.aws_sts_endpoint
            or env.get("AWS_ENDPOINT_URL_STS")
            or env.get("AWS_ENDPOINT_URL")
            or None
        )


@dataclass(frozen=True)
class ServiceAccountInfo:
    """What the operator reads of a ServiceAccount (the UID keys its cached credentials:
    a re-created ServiceAccount of the same name starts afresh)."""

    uid: str
    annotations: Mapping[str, str] = field(default_factory=dict)


class ServiceAccountTokens(Protocol):
    """ServiceAccount reads and TokenRequests (`controllers.identity` implements it with the
    API client). Both raise `IdentityError`."""

    async def service_account(self, namespace: str, name: str) -> ServiceAccountInfo:
        """Read the ServiceAccount (`ServiceAccountNotFound`, `TokenRequestForbidden`)."""
        ...

    async def token(self, namespace: str, name: str, audience: str, expiration_seconds: int) -> str:
        """A TokenRequest for the ServiceAccount."""
        ...


class NoServiceAccountTokens:
    """Used when the operator has no API client (provider tests): every lookup fails."""

    async def service_account(self, namespace: str, name: str) -> ServiceAccountInfo:
        """Always `TokenRequestForbidden`."""
        raise IdentityError(
            Reason.TOKEN_REQUEST_FORBIDDEN, "no Kubernetes API client to read ServiceAccounts"
        )

    async def token(self, namespace: str, name: str, audience: str, expiration_seconds: int) -> str:
        """Always `TokenRequestForbidden`."""
        raise IdentityError(Reason.TOKEN_REQUEST_FORBIDDEN, "no Kubernetes API client")


# --- policy checks ---------------------------------------------------------------------------


def _host_of(url: str) -> tuple[str, str]:
    try:
        parts = urlsplit(url)
        return parts.scheme.lower(), (parts.hostname or "").lower()
    except ValueError:
        return "", ""


def _host_matches(host: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        p = pattern.strip().lower()
        if not p:
            continue
        if p.startswith("*."):
            if host.endswith(p[1:]):
                return True
        elif host == p:
            return True
    return False


def _bedrock_host(region: str) -> re.Pattern[str]:
    """Bedrock's control-plane hosts in `region`: the public (and FIPS) endpoint and VPC
    interface endpoints — nothing else under amazonaws.com (S3 website buckets live there
    too, and would receive the signature and session token)."""
    r = re.escape(region)
    return re.compile(
        rf"^(bedrock(-fips)?\.{r}|vpce-[a-z0-9-]+\.bedrock\.{r}\.vpce)"
        rf"\.({re.escape(AWS_DOMAIN)}|{re.escape(AWS_DOMAIN_CN)})$"
    )


def provider_api_host(target: ProbeTarget, url: str) -> bool:
    """Whether `url` is one of the provider's own API hosts, over HTTPS."""
    scheme, host = _host_of(url)
    if scheme != "https" or not host:
        return False
    if target.flavor == "vertex":
        return bool(VERTEX_HOST.match(host))
    if target.kind == "bedrock":
        region = target.bedrock.region if target.bedrock is not None else ""
        return bool(region) and bool(_bedrock_host(region).match(host))
    if target.flavor in ("azure-classic", "azure-v1"):
        return is_azure_host(url)
    return False


def identity_host_allowed(target: ProbeTarget, url: str, settings: IdentitySettings) -> bool:
    """Whether an identity-derived credential of `target` may be sent to `url`."""
    if provider_api_host(target, url):
        return True
    _scheme, host = _host_of(url)
    if _host_matches(host, settings.allowed_hosts):
        return True
    return target.kind == "bedrock" and any(
        _host_of(e)[1] == host for e in bedrock_endpoint_overrides()
    )


def check_identity(target: ProbeTarget, url: str, settings: IdentitySettings) -> None:
    """Refuse, before anything is sent, what the identity policy forbids.

    Raises `IdentityError` (`AmbientIdentityNotAllowed`, `IdentityEndpointNotAllowed`).
    """
    identity = target.identity
    if identity is None:
        return
    if isinstance(identity, AmbientIdentity) and not identity.allowed:
        raise IdentityError(
            Reason.AMBIENT_IDENTITY_NOT_ALLOWED,
            f'namespace "{target.namespace}" may not use the operator\'s own cloud identity: '
            "set serviceAccountName (or a credential Secret); the administrator allows "
            f"namespaces with {AMBIENT_FLAG}",
        )
    if not identity_host_allowed(target, url, settings):
        _scheme, host = _host_of(url)
        what = (
            "the operator's own cloud identity"
            if isinstance(identity, AmbientIdentity)
            else f'ServiceAccount "{identity.name}"'
        )
        raise IdentityError(
            Reason.IDENTITY_ENDPOINT_NOT_ALLOWED,
            f"a credential of {what} is only sent to the provider's own API hosts over "
            f'HTTPS, not to "{host}": remove the endpoint override, or ask the administrator '
            f"to allow the host with {ALLOWED_HOSTS_FLAG}",
        )


def check_token_uri(token_uri: object, settings: IdentitySettings) -> str:
    """The service-account key's `token_uri` if allowed, else `TokenEndpointNotAllowed`."""
    if token_uri == GOOGLE_TOKEN_URI or (
        isinstance(token_uri, str) and token_uri in settings.google_token_uris
    ):
        return str(token_uri)
    raise IdentityError(
        Reason.TOKEN_ENDPOINT_NOT_ALLOWED,
        f"the service-account key's token_uri is not Google's token endpoint {GOOGLE_TOKEN_URI} "
        f"(the administrator may allow others with {TOKEN_URIS_FLAG}); nothing was sent",
    )


def role_session_name(namespace: str, name: str) -> str:
    """`flokoa-NAMESPACE-NAME` as an STS RoleSessionName (at most 64 characters; a hash
    keeps long names distinct)."""
    full = _SESSION_CHARS.sub("-", f"flokoa-{namespace}-{name}")
    if len(full) <= 64:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[:55]}-{digest}"


# --- parsing --------------------------------------------------------------------------------


def _bounded(body: bytes, where: str) -> bytes:
    if len(body) > MAX_TOKEN_RESPONSE:
        raise IdentityError(
            Reason.TOKEN_EXCHANGE_FAILED, f"{where} answered more than {MAX_TOKEN_RESPONSE} bytes"
        )
    return body


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _code(value: object, shape: re.Pattern[str]) -> str | None:
    """`value` when it has the shape of an error code (so no free text passes for one)."""
    return value if isinstance(value, str) and shape.match(value) else None


def oauth_error_code(body: bytes) -> str | None:
    """The OAuth2 / Google / Entra error code of an error answer (never its description)."""
    obj = _json_object(body[:MAX_TOKEN_RESPONSE])
    if obj is None:
        return None
    error = obj.get("error")
    if isinstance(error, dict):  # Google APIs: {"error": {"code", "status", "message"}}
        return _code(error.get("status"), _GOOGLE_STATUS)
    code = error if isinstance(error, str) and error in OAUTH_ERROR_CODES else None
    codes = obj.get("error_codes")
    if code and isinstance(codes, list) and codes and isinstance(codes[0], int):
        code = f"{code} (AADSTS{codes[0]})"
    return code


def parse_xml(body: bytes, where: str) -> ElementTree.Element:
    """An STS XML answer, refused when oversized or carrying a DTD (no entity expansion)."""
    data = _bounded(body, where)
    if b"<!" in data:
        raise IdentityError(Reason.TOKEN_EXCHANGE_FAILED, f"{where} answered malformed XML")
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError:
        raise IdentityError(
            Reason.TOKEN_EXCHANGE_FAILED, f"{where} answered malformed XML"
        ) from None


def _find(root: ElementTree.Element, name: str) -> str | None:
    for element in root.iter():
        if element.tag.rpartition("}")[2] == name:
            return (element.text or "").strip() or None
    return None


def sts_error_code(body: bytes) -> str | None:
    """The `Error/Code` of an STS error answer (never its Message)."""
    try:
        root = parse_xml(body, "STS")
    except IdentityError:
        return None
    return _code(_find(root, "Code"), _AWS_CODE)


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Token:
    """A bearer access token and when it expires (epoch seconds)."""

    value: str = field(repr=False)
    expires_at: float


@dataclass(frozen=True)
class AWSSession:
    """Temporary AWS credentials and when they expire (epoch seconds)."""

    credentials: AWSCredentials
    expires_at: float


def _ambient_error(exc: BaseException, what: str) -> IdentityError:
    """An ambient chain's failure by its class and, for AWS, STS's error code: botocore and
    google-auth exception texts can quote their environment (role ARNs, bodies)."""
    name = type(exc).__name__
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):  # botocore ClientError
        error = response.get("Error") or {}
        code = _code(error.get("Code"), _AWS_CODE) if isinstance(error, Mapping) else None
        meta = response.get("ResponseMetadata") or {}
        status = meta.get("HTTPStatusCode") if isinstance(meta, Mapping) else None
        reason = (
            Reason.PROVIDER_UNAVAILABLE
            if isinstance(status, int) and status >= 500
            else Reason.INVALID_CREDENTIALS
        )
        return IdentityError(reason, f"{what}: STS refused" + (f" ({code})" if code else ""))
    lowered = name.lower()
    if "timeout" in lowered:
        return IdentityError(Reason.TIMEOUT, f"{what}: no answer in time")
    if "connection" in lowered or "connect" in lowered or name == "TransportError":
        return IdentityError(Reason.UNREACHABLE, f"{what}: cannot connect ({name})")
    if name == "DefaultCredentialsError":
        return IdentityError(Reason.CREDENTIALS_UNAVAILABLE, f"{what}: no Google credentials found")
    if name == "RefreshError":
        return IdentityError(Reason.INVALID_CREDENTIALS, f"{what}: token refresh refused")
    return IdentityError(Reason.CREDENTIALS_UNAVAILABLE, f"{what}: {name}")


# --- the broker -----------------------------------------------------------------------------


@dataclass
class _Entry:
    value: Any
    expires_at: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    attempts: int = 0
    error: IdentityError | None = None


class IdentityBroker:
    """Obtains (and caches in memory) credentials for identity-bearing targets.

    `settings`: the administrator's settings. `service_accounts`: ServiceAccount reads and
    TokenRequests. `executor`: the ambient chains' threads. `clock`: epoch seconds.
    `max_entries`: credentials kept (expired ones dropped first, then least recently used).
    """

    def __init__(
        self,
        settings: IdentitySettings | None = None,
        service_accounts: ServiceAccountTokens | None = None,
        *,
        executor: AmbientExecutor | None = None,
        clock: Callable[[], float] = time.time,
        max_entries: int = 16384,
    ) -> None:
        self.settings = settings or IdentitySettings()
        self.service_accounts: ServiceAccountTokens = service_accounts or NoServiceAccountTokens()
        self.executor = executor or AmbientExecutor()
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._max_entries = max_entries
        self.exchanges = 0
        """Exchanges made (cache misses): tests read it."""

    def clear(self) -> None:
        """Forget every cached credential."""
        self._entries.clear()

    def invalidate(self, prefix: str) -> None:
        """Forget the cached credentials whose key starts with `prefix`."""
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]

    def close(self) -> None:
        """Forget everything and release the ambient threads."""
        self.clear()
        self.executor.shutdown()

    async def cached(
        self,
        key: str,
        fresh: bool,
        obtain: Callable[[], Awaitable[tuple[T, float]]],
    ) -> T:
        """The credential under `key`, obtained when missing, due for refresh, or `fresh`."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(None, 0.0)
            if len(self._entries) > self._max_entries:
                now = self.clock()
                for stale in [
                    k
                    for k, e in self._entries.items()
                    if e.expires_at < now and not e.lock.locked() and k != key
                ]:
                    del self._entries[stale]
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        self._entries.move_to_end(key)
        attempts = entry.attempts
        async with entry.lock:
            if entry.attempts != attempts and entry.error is not None:
                # the exchange this call waited for failed: its callers share the outcome
                # (N model checks of one provider never wait N deadlines in a row)
                raise IdentityError(entry.error.reason, entry.error.message, entry.error.url)
            if fresh and entry.attempts != attempts and entry.value is not None:
                fresh = False  # an exchange finished while this call waited: it is fresh
            if fresh or entry.value is None or entry.expires_at - self.clock() < REFRESH_MARGIN:
                entry.value, entry.error = None, None
                entry.attempts += 1
                try:
                    value, expires_at = await obtain()
                except IdentityError as exc:
                    entry.error = exc
                    raise
                except BaseException:
                    entry.error = IdentityError(Reason.TIMEOUT, "the exchange was abandoned")
                    raise
                self.exchanges += 1
                # an endpoint's claimed lifetime is believed for a day at most
                entry.value, entry.expires_at = value, min(expires_at, self.clock() + MAX_LIFETIME)
            result: T = entry.value
            return result

    # -- ServiceAccount -----------------------------------------------------------------

    async def _service_account(self, target: ProbeTarget) -> tuple[str, ServiceAccountInfo]:
        identity = target.identity
        assert isinstance(identity, ServiceAccountIdentity)
        info = await self.service_accounts.service_account(target.namespace, identity.name)
        return identity.name, info

    def _annotation(self, target: ProbeTarget, info: ServiceAccountInfo, key: str) -> str:
        value = info.annotations.get(key)
        if not value:
            identity = target.identity
            name = identity.name if isinstance(identity, ServiceAccountIdentity) else "?"
            raise IdentityError(
                Reason.SERVICE_ACCOUNT_ANNOTATION_MISSING,
                f'ServiceAccount "{name}" has no annotation {key}',
            )
        return value

    async def _sa_token(
        self, target: ProbeTarget, name: str, info: ServiceAccountInfo, aud: str
    ) -> str:
        return await self.service_accounts.token(
            target.namespace, name, aud, TOKEN_EXPIRATION_SECONDS
        )

    # -- HTTP ---------------------------------------------------------------------------

    async def post(
        self,
        http: ProbeHTTP,
        target: ProbeTarget,
        url: str,
        data: bytes,
        headers: Mapping[str, str],
        where: str,
    ) -> tuple[int, bytes]:
        """POST to a token endpoint: system CAs, no tenant headers, the probe's timeout.

        Every URL here is the administrator's or the cloud's own (flags, the operator's
        environment, Google's pinned token endpoint or one the administrator lists), never a
        tenant's: the destination policy exempts it (`trusted_endpoint`), and only it."""
        from flokoa_controller.providers.destinations import trusted_endpoint
        from flokoa_controller.providers.http import TransportError

        neutral = replace(
            target,
            default_headers={},
            tls=TLSSettings(),
            api_key=None,
            identity=None,
            flavor=target.flavor,
        )
        try:
            with trusted_endpoint(url):
                response = await http.request(neutral, "POST", url, headers, data=data)
        except TransportError as exc:
            raise IdentityError(exc.reason, f"{where}: {exc.message}") from None
        return response.status, response.body

    # -- Google -------------------------------------------------------------------------

    async def google_token(self, target: ProbeTarget, http: ProbeHTTP, fresh: bool) -> str:
        """A Vertex AI access token for `target` (raises `IdentityError`)."""
        assert target.vertex is not None
        identity = target.identity
        info = target.vertex.service_account_info
        if identity is None:
            if info is None:
                raise IdentityError(Reason.CREDENTIALS_UNAVAILABLE, "no Google credential")
            token_uri = check_token_uri(info.get("token_uri"), self.settings)
            key = f"google-key:{target.fingerprint()}"
            return await self.cached(
                key, fresh, lambda: self._google_jwt_grant(target, http, info, token_uri)
            )
        if isinstance(identity, AmbientIdentity):
            key = f"google-ambient:{target.fingerprint()}"
            return await self.cached(key, fresh, lambda: self._google_ambient(target))
        name, sa = await self._service_account(target)
        audience = self.settings.google_workload_identity_audience
        if not audience:
            raise IdentityError(
                Reason.WORKLOAD_IDENTITY_NOT_CONFIGURED,
                "Google workload identity is not configured: the administrator sets the pool "
                f"provider with {GOOGLE_AUDIENCE_FLAG}",
            )
        impersonate = sa.annotations.get(ANNOTATION_GCP_SERVICE_ACCOUNT) or None
        if impersonate is not None and not _GOOGLE_SA_EMAIL.match(impersonate):
            raise IdentityError(
                Reason.SERVICE_ACCOUNT_ANNOTATION_MISSING,
                f'ServiceAccount "{name}" annotation {ANNOTATION_GCP_SERVICE_ACCOUNT} is not a '
                "service-account email",
            )
        key = f"sa:{sa.uid}:google:{audience}:{impersonate}"
        return await self.cached(
            key,
            fresh,
            lambda: self._google_federated(target, http, name, sa, audience, impersonate),
        )

    async def _google_jwt_grant(
        self, target: ProbeTarget, http: ProbeHTTP, info: Mapping[str, Any], token_uri: str
    ) -> tuple[str, float]:
        from google.auth import crypt, jwt

        try:
            signer = crypt.RSASigner.from_service_account_info(dict(info))  # type: ignore[no-untyped-call]
            now = int(self.clock())
            payload = {
                "iss": info["client_email"],
                "scope": CLOUD_PLATFORM_SCOPE,
                "aud": token_uri,
                "iat": now,
                "exp": now + 3600,
            }
            assertion = jwt.encode(signer, payload).decode()  # type: ignore[no-untyped-call]
        except (ValueError, KeyError, TypeError, IndexError):
            raise IdentityError(
                Reason.INVALID_CREDENTIALS, "the service-account key is malformed"
            ) from None
        body = urlencode(
            {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
        ).encode()
        return await self._oauth_token(
            http,
            target,
            token_uri,
            body,
            {"Content-Type": "application/x-www-form-urlencoded"},
            "Google's token endpoint",
            refused=Reason.INVALID_CREDENTIALS,
        )

    async def _oauth_token(
        self,
        http: ProbeHTTP,
        target: ProbeTarget,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        where: str,
        *,
        refused: Reason = Reason.TOKEN_EXCHANGE_FAILED,
        token_field: str = "access_token",
    ) -> tuple[str, float]:
        status, answer = await self.post(http, target, url, body, headers, where)
        _bounded(answer, where)
        if status >= 500:
            raise IdentityError(Reason.PROVIDER_UNAVAILABLE, f"{where} failing (HTTP {status})")
        obj = _json_object(answer) if 200 <= status < 300 else None
        token = obj.get(token_field) if obj else None
        if not isinstance(token, str) or not token:
            if 200 <= status < 300:
                raise IdentityError(
                    Reason.TOKEN_EXCHANGE_FAILED, f"{where} answered HTTP {status} without a token"
                )
            code = oauth_error_code(answer)
            raise IdentityError(
                refused,
                f"{where} refused the token request (HTTP {status}"
                + (f", {code})" if code else ")"),
            )
        expires_in = obj.get("expires_in") if obj else None
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
        return token, self.clock() + max(lifetime, 0.0)

    async def _google_federated(
        self,
        target: ProbeTarget,
        http: ProbeHTTP,
        name: str,
        sa: ServiceAccountInfo,
        audience: str,
        impersonate: str | None,
    ) -> tuple[str, float]:
        token_audience = self.settings.google_token_audience or (
            "https:" + audience if audience.startswith("//") else audience
        )
        subject = await self._sa_token(target, name, sa, token_audience)
        body = urlencode(
            {
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "audience": audience,
                "scope": CLOUD_PLATFORM_SCOPE,
                "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "subject_token": subject,
                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            }
        ).encode()
        federated, expires_at = await self._oauth_token(
            http,
            target,
            self.settings.google_sts_url,
            body,
            {"Content-Type": "application/x-www-form-urlencoded"},
            "Google STS",
        )
        if impersonate is None:
            return federated, expires_at
        url = (
            f"{self.settings.google_iam_credentials_url.rstrip('/')}/v1/projects/-/"
            f"serviceAccounts/{quote(impersonate, safe='@.')}:generateAccessToken"
        )
        request = json.dumps({"scope": [CLOUD_PLATFORM_SCOPE], "lifetime": "3600s"}).encode()
        where = f"IAM Credentials (impersonating {impersonate})"
        status, answer = await self.post(
            http,
            target,
            url,
            request,
            {"Content-Type": "application/json", "Authorization": f"Bearer {federated}"},
            where,
        )
        _bounded(answer, where)
        obj = _json_object(answer) if 200 <= status < 300 else None
        token = obj.get("accessToken") if obj else None
        if not isinstance(token, str) or not token:
            if status >= 500:
                raise IdentityError(Reason.PROVIDER_UNAVAILABLE, f"{where} failing (HTTP {status})")
            code = oauth_error_code(answer)
            raise IdentityError(
                Reason.TOKEN_EXCHANGE_FAILED,
                f"{where} refused generateAccessToken (HTTP {status}"
                + (f", {code})" if code else ")"),
            )
        expiry = _parse_time(obj.get("expireTime") if obj else None)
        return token, expiry if expiry is not None else self.clock() + 3600.0

    async def _google_ambient(self, target: ProbeTarget) -> tuple[str, float]:
        def adc() -> tuple[str, float]:
            import google.auth
            import google.auth.transport.requests
            import requests

            creds, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
            with requests.Session() as session:
                creds.refresh(google.auth.transport.requests.Request(session=session))  # type: ignore[no-untyped-call]
            expiry = creds.expiry.timestamp() if creds.expiry is not None else time.time() + 300
            return str(creds.token), float(expiry)

        return await self._ambient(adc, target, "Google application default credentials")

    async def _ambient(self, fn: Callable[[], T], target: ProbeTarget, what: str) -> T:
        try:
            return await self.executor.run(fn, target.timeout)
        except TimeoutError:
            raise IdentityError(Reason.TIMEOUT, f"{what}: no answer in time") from None
        except AmbientBusy:
            raise IdentityError(
                Reason.TIMEOUT, f"{what}: every ambient-identity thread is busy"
            ) from None
        except IdentityError:
            raise
        except Exception as exc:
            raise _ambient_error(exc, what) from None

    # -- AWS ----------------------------------------------------------------------------

    def sts_endpoint(self, region: str, regional: bool = True) -> str:
        """The STS endpoint: the operator's `AWS_ENDPOINT_URL_STS`, else by region."""
        return sts_endpoint(region, regional, self.settings.sts_override())

    async def aws_credentials(
        self, target: ProbeTarget, http: ProbeHTTP, fresh: bool
    ) -> AWSCredentials:
        """The SigV4 credentials for `target` (base identity, then `role_arn` chaining)."""
        settings = target.bedrock
        assert settings is not None
        identity = target.identity
        region = settings.region
        if identity is None:
            if settings.static_credentials is None:
                raise IdentityError(Reason.CREDENTIALS_UNAVAILABLE, "no AWS credentials")
            base_key = f"aws-static:{target.fingerprint()}"

            async def static() -> tuple[AWSCredentials, float]:
                assert settings.static_credentials is not None
                return settings.static_credentials, float("inf")

            base_get: Callable[[], Awaitable[tuple[AWSCredentials, float]]] = static
        elif isinstance(identity, AmbientIdentity):
            base_key = f"aws-ambient:{region}"
            base_get = self._aws_ambient_getter(target)
        else:
            name, sa = await self._service_account(target)
            role = self._annotation(target, sa, ANNOTATION_AWS_ROLE_ARN)
            if not _ROLE_ARN.match(role):
                raise IdentityError(
                    Reason.SERVICE_ACCOUNT_ANNOTATION_MISSING,
                    f'ServiceAccount "{name}" annotation {ANNOTATION_AWS_ROLE_ARN} '
                    "is not a role ARN",
                )
            regional = sa.annotations.get(ANNOTATION_AWS_STS_REGIONAL, "true").lower() != "false"
            owner = f"{target.namespace}/{target.name}"
            base_key = f"sa:{sa.uid}:aws:{role}:{regional}:{region}:{owner}"

            async def web_identity() -> tuple[AWSCredentials, float]:
                token = await self._sa_token(target, name, sa, AWS_TOKEN_AUDIENCE)
                session = await self.assume_role_with_web_identity(
                    http, target, role, token, self.sts_endpoint(region, regional)
                )
                return session.credentials, session.expires_at

            base_get = web_identity
        role_arn = settings.role_arn
        if role_arn is None:
            return await self.cached(base_key, fresh, base_get)

        async def chained() -> tuple[AWSCredentials, float]:
            base = await self.cached(base_key, fresh, base_get)
            session = await self.assume_role(http, target, base, role_arn)
            return session.credentials, session.expires_at

        return await self.cached(f"{base_key}->{role_arn}:{settings.external_id}", fresh, chained)

    def _aws_ambient_getter(
        self, target: ProbeTarget
    ) -> Callable[[], Awaitable[tuple[AWSCredentials, float]]]:
        region = target.bedrock.region if target.bedrock else ""

        def chain() -> tuple[AWSCredentials, float]:
            import botocore.session

            session = botocore.session.Session()
            session.set_config_variable("region", region)
            creds = session.get_credentials()
            if creds is None:
                raise IdentityError(
                    Reason.CREDENTIALS_UNAVAILABLE,
                    "no AWS credentials found in the operator's environment (botocore's default "
                    "chain: environment, web identity, Pod Identity, shared config, IMDS)",
                )
            frozen = creds.get_frozen_credentials()
            expiry = getattr(creds, "_expiry_time", None)
            expires_at = expiry.timestamp() if expiry is not None else time.time() + 900
            return (
                AWSCredentials(frozen.access_key, frozen.secret_key, frozen.token or None),
                float(expires_at),
            )

        async def get() -> tuple[AWSCredentials, float]:
            return await self._ambient(chain, target, "the operator's AWS credential chain")

        return get

    async def _sts(
        self,
        http: ProbeHTTP,
        target: ProbeTarget,
        url: str,
        params: Mapping[str, str],
        action: str,
        credentials: AWSCredentials | None,
        region: str,
    ) -> AWSSession:
        body = urlencode({"Action": action, "Version": "2011-06-15", **params}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        if credentials is not None:
            from botocore.auth import SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials

            request = AWSRequest(method="POST", url=url, data=body, headers=headers)
            SigV4Auth(
                Credentials(
                    credentials.access_key_id,
                    credentials.secret_access_key,
                    credentials.session_token,
                ),
                "sts",
                region,
            ).add_auth(request)
            headers = {k: str(v) for k, v in request.headers.items()}
        where = f"STS {action}"
        status, answer = await self.post(http, target, url, body, headers, where)
        if status >= 500:
            raise IdentityError(Reason.PROVIDER_UNAVAILABLE, f"{where} failing (HTTP {status})")
        if not 200 <= status < 300:
            code = sts_error_code(answer[:MAX_TOKEN_RESPONSE])
            raise IdentityError(
                Reason.TOKEN_EXCHANGE_FAILED,
                f"{where} refused (HTTP {status}" + (f", {code})" if code else ")"),
            )
        root = parse_xml(answer, where)
        key_id, secret, token = (
            _find(root, "AccessKeyId"),
            _find(root, "SecretAccessKey"),
            _find(root, "SessionToken"),
        )
        if not key_id or not secret:
            raise IdentityError(Reason.TOKEN_EXCHANGE_FAILED, f"{where} answered no credentials")
        expiry = _parse_time(_find(root, "Expiration"))
        return AWSSession(
            AWSCredentials(key_id, secret, token),
            expiry if expiry is not None else self.clock() + 900.0,
        )

    async def assume_role_with_web_identity(
        self, http: ProbeHTTP, target: ProbeTarget, role_arn: str, token: str, url: str
    ) -> AWSSession:
        """STS `AssumeRoleWithWebIdentity` (unsigned Query POST)."""
        return await self._sts(
            http,
            target,
            url,
            {
                "RoleArn": role_arn,
                "RoleSessionName": role_session_name(target.namespace, target.name),
                "WebIdentityToken": token,
                "DurationSeconds": str(AWS_SESSION_SECONDS),
            },
            "AssumeRoleWithWebIdentity",
            None,
            target.bedrock.region if target.bedrock else "us-east-1",
        )

    async def assume_role(
        self, http: ProbeHTTP, target: ProbeTarget, base: AWSCredentials, role_arn: str
    ) -> AWSSession:
        """STS `AssumeRole` (SigV4-signed) into `role_arn`, named after the ModelProvider,
        `SourceIdentity` its namespace, `ExternalId` when set."""
        settings = target.bedrock
        assert settings is not None
        params = {
            "RoleArn": role_arn,
            "RoleSessionName": (
                role_session_name(target.namespace, target.name)
                if target.namespace
                else settings.role_session_name
            ),
            "DurationSeconds": str(AWS_SESSION_SECONDS),
        }
        if target.namespace:
            params["SourceIdentity"] = target.namespace
        if settings.external_id:
            params["ExternalId"] = settings.external_id
        return await self._sts(
            http,
            target,
            self.sts_endpoint(settings.region),
            params,
            "AssumeRole",
            base,
            settings.region,
        )

    # -- Azure --------------------------------------------------------------------------

    async def azure_token(self, target: ProbeTarget, http: ProbeHTTP, fresh: bool) -> str:
        """An Entra ID access token for Azure OpenAI (`ServiceAccountIdentity` only)."""
        if not isinstance(target.identity, ServiceAccountIdentity):
            raise IdentityError(Reason.CREDENTIALS_UNAVAILABLE, "no Azure credential")
        name, sa = await self._service_account(target)
        client_id = self._annotation(target, sa, ANNOTATION_AZURE_CLIENT_ID)
        tenant = sa.annotations.get(ANNOTATION_AZURE_TENANT_ID) or self.settings.azure_tenant_id
        if not tenant:
            raise IdentityError(
                Reason.SERVICE_ACCOUNT_ANNOTATION_MISSING,
                f'ServiceAccount "{name}" has no annotation {ANNOTATION_AZURE_TENANT_ID} and '
                "the administrator set no default tenant (--azure-tenant-id)",
            )
        for label, value in (("client-id", client_id), ("tenant-id", tenant)):
            if not _AZURE_ID.match(value):
                raise IdentityError(
                    Reason.SERVICE_ACCOUNT_ANNOTATION_MISSING,
                    f'ServiceAccount "{name}" annotation azure.workload.identity/{label} '
                    "is malformed",
                )

        async def exchange() -> tuple[str, float]:
            assertion = await self._sa_token(target, name, sa, AZURE_TOKEN_AUDIENCE)
            body = urlencode(
                {
                    "client_id": client_id,
                    "scope": AZURE_COGNITIVE_SCOPE,
                    "grant_type": "client_credentials",
                    "client_assertion_type": (
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                    ),
                    "client_assertion": assertion,
                }
            ).encode()
            url = f"{self.settings.azure_authority_host.rstrip('/')}/{tenant}/oauth2/v2.0/token"
            return await self._oauth_token(
                http,
                target,
                url,
                body,
                {"Content-Type": "application/x-www-form-urlencoded"},
                "Entra ID",
            )

        return await self.cached(f"sa:{sa.uid}:azure:{client_id}:{tenant}", fresh, exchange)
