"""`ProbeResult` and the mapping from HTTP outcomes to condition reasons.

Outcome → reason (`ok` says whether the provider is usable):

| outcome | reason | ok | retryable |
|---|---|---|---|
| 2xx (JSON object body) | `ProbeSucceeded` | yes | no |
| 429 | `RateLimited` (authenticated, but rate-limited or out of quota) | yes | yes |
| 401 / 403 (Gemini: 400 `API_KEY_INVALID`) | `InvalidCredentials` | no | no |
| 404 / 410 on a list | `EndpointNotFound` | no | no |
| 404 / 410 on a model (Bedrock: 400 invalid model identifier) | `ModelNotFound` | no | no |
| 408 | `Timeout` | no | yes |
| 5xx | `ProviderUnavailable` | no | yes |
| timeout | `Timeout` | no | yes |
| TLS handshake / certificate failure | `TLSVerificationFailed` | no | no |
| DNS failure, connection refused or reset, proxy failure | `Unreachable` | no | yes |
| no credentials found (ADC / AWS default chain empty) | `CredentialsUnavailable` | no | no |
| CA bundle unusable | `InvalidCACertificate` | no | no |
| anything else: 3xx (not followed), other 4xx, non-JSON 2xx | `UnexpectedResponse` | no | no |
| invalid URL | `EndpointNotFound` | no | no |
| a bug in a probe (an exception it did not expect) | `ProbeError` | no | yes |
| no free check exists (classic Azure deployment; no request) | `DeploymentNotVerified` | yes | no |

Identity failures (no request reaches the provider's API; `IDENTITY_REASONS`, none
retryable but `TokenRequestFailed`): `AmbientIdentityNotAllowed` (the operator's own identity
in a namespace not allowed to use it), `ServiceAccountNotFound`,
`ServiceAccountAnnotationMissing`, `TokenRequestForbidden` (RBAC refused the ServiceAccount
read or TokenRequest), `TokenRequestFailed`, `TokenExchangeFailed` (the cloud refused; its
error code quoted, never the body), `TokenEndpointNotAllowed` (a token endpoint that is not
the cloud's own), `IdentityEndpointNotAllowed` (an identity-derived credential aimed at a
host not the provider's), `WorkloadIdentityNotConfigured` (an administrator flag is unset).

Credential acquisition failures (malformed service-account key, refused JWT grant, STS
denial) are `InvalidCredentials`; a token endpoint answering 5xx is `ProviderUnavailable`.

Messages name the method, the URL probed (query values other than `api-version` redacted,
user info dropped) and the HTTP status, plus the provider's own error text with every secret
value the target holds scrubbed out.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

Check = Literal["provider", "model"]
"""What a probe checks: the provider (a list endpoint) or one model (a get endpoint)."""


class Reason(StrEnum):
    """CamelCase reasons a probe ends with (usable as condition reasons as they are)."""

    PROBE_SUCCEEDED = "ProbeSucceeded"
    RATE_LIMITED = "RateLimited"
    INVALID_CREDENTIALS = "InvalidCredentials"
    CREDENTIALS_UNAVAILABLE = "CredentialsUnavailable"
    ENDPOINT_NOT_FOUND = "EndpointNotFound"
    MODEL_NOT_FOUND = "ModelNotFound"
    PROVIDER_UNAVAILABLE = "ProviderUnavailable"
    TIMEOUT = "Timeout"
    TLS_VERIFICATION_FAILED = "TLSVerificationFailed"
    INVALID_CA_CERTIFICATE = "InvalidCACertificate"
    UNREACHABLE = "Unreachable"
    UNEXPECTED_RESPONSE = "UnexpectedResponse"
    PROBE_ERROR = "ProbeError"
    DEPLOYMENT_NOT_VERIFIED = "DeploymentNotVerified"
    AMBIENT_IDENTITY_NOT_ALLOWED = "AmbientIdentityNotAllowed"
    SERVICE_ACCOUNT_NOT_FOUND = "ServiceAccountNotFound"
    SERVICE_ACCOUNT_ANNOTATION_MISSING = "ServiceAccountAnnotationMissing"
    TOKEN_REQUEST_FORBIDDEN = "TokenRequestForbidden"
    TOKEN_REQUEST_FAILED = "TokenRequestFailed"
    TOKEN_EXCHANGE_FAILED = "TokenExchangeFailed"
    TOKEN_ENDPOINT_NOT_ALLOWED = "TokenEndpointNotAllowed"
    IDENTITY_ENDPOINT_NOT_ALLOWED = "IdentityEndpointNotAllowed"
    WORKLOAD_IDENTITY_NOT_CONFIGURED = "WorkloadIdentityNotConfigured"


RETRYABLE_REASONS = frozenset(
    {
        Reason.RATE_LIMITED,
        Reason.PROVIDER_UNAVAILABLE,
        Reason.TIMEOUT,
        Reason.UNREACHABLE,
        Reason.PROBE_ERROR,
        Reason.TOKEN_REQUEST_FAILED,
    }
)
"""Reasons a later retry (with backoff) may change."""

IDENTITY_REASONS = frozenset(
    {
        Reason.AMBIENT_IDENTITY_NOT_ALLOWED,
        Reason.SERVICE_ACCOUNT_NOT_FOUND,
        Reason.SERVICE_ACCOUNT_ANNOTATION_MISSING,
        Reason.TOKEN_REQUEST_FORBIDDEN,
        Reason.TOKEN_REQUEST_FAILED,
        Reason.TOKEN_EXCHANGE_FAILED,
        Reason.TOKEN_ENDPOINT_NOT_ALLOWED,
        Reason.IDENTITY_ENDPOINT_NOT_ALLOWED,
        Reason.WORKLOAD_IDENTITY_NOT_CONFIGURED,
    }
)
"""Reasons of a credential that could not be obtained from a cloud identity (no request
reached the provider's API)."""

NETWORK_REASONS = frozenset(
    {
        Reason.TIMEOUT,
        Reason.TLS_VERIFICATION_FAILED,
        Reason.INVALID_CA_CERTIFICATE,
        Reason.UNREACHABLE,
    }
)
"""Reasons that mean the network path (not the credential) is broken."""


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe.

    - `ok`: the provider (or model) is usable; True for 2xx and for 429.
    - `reason`: a `Reason` value.
    - `message`: human-readable, names the URL and HTTP status, never a secret.
    - `url`: the URL probed, redacted like in the message.
    - `http_status`: the status of the last HTTP response, None when none arrived.
    - `duration`: seconds the probe took (credential acquisition included).
    - `rate_limited`: the provider answered 429.
    - `retryable`: a retry with backoff may change the outcome.
    """

    ok: bool
    reason: str
    message: str
    url: str
    http_status: int | None
    duration: float
    rate_limited: bool = False
    retryable: bool = False

    @property
    def network_failure(self) -> bool:
        """True when the network path, not the credential, failed."""
        return self.reason in NETWORK_REASONS


_KEPT_QUERY = frozenset({"api-version", "pagesize"})
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-\*]{8,}")
_JWTLIKE = re.compile(r"\beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}")
"""A signed JWT (a token or an OAuth assertion a token endpoint echoed back)."""


def redact_url(url: str) -> str:
    """The URL without user info, and with every query value but `api-version` redacted."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.netloc.rpartition("@")[2]
    query = ""
    if parts.query:
        pairs = [
            (k, v if k.lower() in _KEPT_QUERY else "REDACTED")
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
        query = urlencode(pairs, safe="-")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value (and anything shaped like an OpenAI key or a signed
    JWT) masked."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    return _JWTLIKE.sub("<redacted JWT>", _KEYLIKE.sub(r"\1…", text))


def _first_text(data: Any) -> str | None:
    if isinstance(data, str):
        return data
    if not isinstance(data, dict):
        return None
    for key in ("message", "Message", "error_description", "detail"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    error = data.get("error")
    if isinstance(error, dict):
        return _first_text(error)
    if isinstance(error, str) and error:
        return error
    return None


def error_detail(body: bytes, secrets: Iterable[str] = (), limit: int = 200) -> str:
    """The provider's error text from a response body (JSON `error.message` and the like),
    secrets scrubbed before it is shortened (so no fragment of one survives)."""
    if not body:
        return ""
    text: str | None = None
    try:
        text = _first_text(orjson.loads(body))
    except orjson.JSONDecodeError:
        match = re.search(rb"<Message>(.*?)</Message>", body, re.S)
        if match:
            text = match.group(1).decode("utf-8", "replace")
        elif not body.lstrip().startswith(b"<"):
            text = body.decode("utf-8", "replace")
    if not text:
        return ""
    text = " ".join(scrub(text, secrets).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _phrase(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def from_response(
    check: Check,
    *,
    method: str,
    url: str,
    status: int,
    body: bytes,
    duration: float,
    secrets: Iterable[str] = (),
    subject: str = "",
    location: str | None = None,
    invalid_key_markers: tuple[bytes, ...] = (),
    missing_model_markers: tuple[bytes, ...] = (),
) -> ProbeResult:
    """Map an HTTP response to a `ProbeResult`.

    `subject` names what was checked (e.g. `model "gpt-4o"`); `invalid_key_markers` are body
    fragments that turn a 400 into `InvalidCredentials` (Gemini answers a bad key with 400),
    `missing_model_markers` fragments that turn a 400 on a model check into `ModelNotFound`
    (Bedrock answers a malformed model ID with 400 `ValidationException`).
    """
    shown = redact_url(url)
    what = f"{method} {shown} returned HTTP {_phrase(status)}"
    secrets = tuple(secrets)
    detail = error_detail(body, secrets) if status >= 300 else ""
    suffix = f": {detail}" if detail else ""
    subject_prefix = f"{subject}: " if subject else ""

    def result(reason: Reason, ok: bool, text: str, **extra: bool) -> ProbeResult:
        return ProbeResult(
            ok=ok,
            reason=reason.value,
            message=scrub(text, secrets),
            url=shown,
            http_status=status,
            duration=duration,
            rate_limited=extra.get("rate_limited", False),
            retryable=reason in RETRYABLE_REASONS,
        )

    if 200 <= status < 300:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            return result(
                Reason.UNEXPECTED_RESPONSE,
                False,
                f"{subject_prefix}{what} but the body is not a JSON object "
                "(is the base URL an API endpoint?)",
            )
        found = f"{subject} found" if check == "model" and subject else "credentials accepted"
        return result(Reason.PROBE_SUCCEEDED, True, f"{found}: {what}")
    if status == 429:
        return result(
            Reason.RATE_LIMITED,
            True,
            f"{subject_prefix}reachable and authenticated but rate-limited: {what}{suffix}",
            rate_limited=True,
        )
    if status in (401, 403) or (
        status == 400 and any(marker in body for marker in invalid_key_markers)
    ):
        return result(
            Reason.INVALID_CREDENTIALS,
            False,
            f"{subject_prefix}credentials rejected: {what}{suffix}",
        )
    missing = status == 400 and any(marker in body for marker in missing_model_markers)
    if status in (404, 410) or (check == "model" and missing):
        if check == "model":
            return result(
                Reason.MODEL_NOT_FOUND, False, f"{subject or 'model'} not found: {what}{suffix}"
            )
        return result(
            Reason.ENDPOINT_NOT_FOUND,
            False,
            f"endpoint not found (check the base URL): {what}{suffix}",
        )
    if status == 408:
        return result(Reason.TIMEOUT, False, f"{subject_prefix}{what}{suffix}")
    if status >= 500:
        return result(
            Reason.PROVIDER_UNAVAILABLE, False, f"{subject_prefix}provider failing: {what}{suffix}"
        )
    if 300 <= status < 400:
        target = f" to {redact_url(location)}" if location else ""
        return result(
            Reason.UNEXPECTED_RESPONSE,
            False,
            f"{subject_prefix}{what}: redirect{target} not followed (check the base URL)",
        )
    return result(Reason.UNEXPECTED_RESPONSE, False, f"{subject_prefix}{what}{suffix}")


def failure(
    reason: Reason,
    message: str,
    *,
    url: str,
    duration: float,
    secrets: Iterable[str] = (),
    http_status: int | None = None,
) -> ProbeResult:
    """A failed probe that got no usable HTTP response (transport or credential failure)."""
    return ProbeResult(
        ok=False,
        reason=reason.value,
        message=scrub(message, secrets),
        url=redact_url(url) if url else "",
        http_status=http_status,
        duration=duration,
        rate_limited=False,
        retryable=reason in RETRYABLE_REASONS,
    )


def raised_at(exc: BaseException) -> str:
    """`" at FILE:LINE"`, where `exc` was raised (empty without a traceback).

    Logs report an unexpected exception by its type and this place, never by its text: the
    text may quote a secret in a form scrubbing misses (encoded, or too short to scrub).
    """
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    return f" at {frame.filename}:{frame.lineno}" if frame is not None else ""
