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
| refused by the destination policy (nothing sent) | `DestinationNotAllowed` | no | no |
| no credentials found (ADC / AWS default chain empty) | `CredentialsUnavailable` | no | no |
| CA bundle unusable | `InvalidCACertificate` | no | no |
| anything else: 3xx (not followed), other 4xx, non-JSON 2xx | `UnexpectedResponse` | no | no |
| invalid URL | `EndpointNotFound` | no | no |
| a bug in a probe (an exception it did not expect) | `ProbeError` | no | yes |
| no free check exists (classic Azure deployment; no request) | `DeploymentNotVerified` | yes | no |
| Bedrock model exists, not usable (`bedrock_models.py`) | `ModelAccessNotGranted`, ... | no | no |
| Vertex partner model: no free project check | `ModelAccessNotVerified` | yes | no |

(`...`: also `ModelAgreementNotAccepted`, `ModelNotOfferedInRegion`.)

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
user info dropped) and the HTTP status, plus the provider's own error text — only what its
known error shape yields (`error_detail`: OpenAI/Azure `error.message`, Anthropic
`error.type`/`error.message`, Google `error.status`/`error.message`, AWS error code and
message), at most 200 characters, with every secret value the target holds (and anything
shaped like a key or a signed JWT) scrubbed out. Any other body is described, never quoted:
`HTTP 500 Internal Server Error (text/html, 1843 bytes)`.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from flokoa_controller.providers.models import ModelDetails

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
    MODEL_ACCESS_NOT_GRANTED = "ModelAccessNotGranted"
    MODEL_AGREEMENT_NOT_ACCEPTED = "ModelAgreementNotAccepted"
    MODEL_NOT_OFFERED_IN_REGION = "ModelNotOfferedInRegion"
    MODEL_ACCESS_NOT_VERIFIED = "ModelAccessNotVerified"
    DESTINATION_NOT_ALLOWED = "DestinationNotAllowed"


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
        Reason.DESTINATION_NOT_ALLOWED,
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
    - `model`: a model check's `ModelDetails` (None for provider probes and failures).
    """

    ok: bool
    reason: str
    message: str
    url: str
    http_status: int | None
    duration: float
    rate_limited: bool = False
    retryable: bool = False
    model: ModelDetails | None = None
    """What a successful model check learnt beyond existence (resolved name, lifecycle)."""

    @property
    def network_failure(self) -> bool:
        """True when the network path, not the credential, failed."""
        return self.reason in NETWORK_REASONS


_KEPT_QUERY = frozenset({"api-version", "pagesize"})
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-\*]{8,}")
_TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.*"
"""The characters `_KEYLIKE` and `_JWTLIKE` span (a token cut at a window's end is dropped)."""
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


def _mask_secrets(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    return text


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value (and anything shaped like an OpenAI key or a signed
    JWT) masked.

    The shape patterns cost up to the square of the text's length on hostile input
    (`eyJ-eyJ-...`): give them bounded text (`error_detail` cuts a body's text first).
    """
    return _JWTLIKE.sub("<redacted JWT>", _KEYLIKE.sub(r"\1…", _mask_secrets(text, secrets)))


ErrorShape = Literal["openai", "anthropic", "google", "aws"]
"""The error-body shape of a provider kind (`shape_of`): what `error_detail` may quote."""

SHAPES: dict[str, ErrorShape] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google",
    "bedrock": "aws",
}
"""Provider kind → the error shape its API answers with."""

_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,63}$")
"""An error code or status worth quoting (`PERMISSION_DENIED`, `AccessDeniedException`)."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64}$")


def _code(value: object) -> str | None:
    return value if isinstance(value, str) and _CODE.match(value) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _error_object(data: Any) -> dict[str, Any] | None:
    if isinstance(data, list) and len(data) == 1:  # Gemini may wrap the error in a list
        data = data[0]
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            return error
    return None


def _openai_text(data: Any) -> str | None:
    """OpenAI and Azure OpenAI: `{"error": {"message": ...}}` (OpenAI-compatible servers such
    as Ollama and vLLM: `{"error": "..."}`)."""
    error = _error_object(data)
    if error is not None:
        return _text(error.get("message"))
    if isinstance(data, dict):
        return _text(data.get("error"))
    return None


def _coded_message(data: Any, code_field: str) -> str | None:
    """`CODE: message` of an `{"error": {"message": ..., code_field: CODE}}` answer (either
    part alone when the other is missing)."""
    error = _error_object(data)
    if error is None:
        return None
    message = _text(error.get("message"))
    code = _code(error.get(code_field))
    if message and code:
        return f"{code}: {message}"
    return message or code


def _anthropic_text(data: Any) -> str | None:
    """Anthropic: `{"type": "error", "error": {"type": "...", "message": "..."}}`."""
    return _coded_message(data, "type")


def _google_text(data: Any) -> str | None:
    """Google APIs: `{"error": {"code": 403, "status": "PERMISSION_DENIED", "message": ...}}`."""
    return _coded_message(data, "status")


def _between(data: bytes, start: bytes, end: bytes) -> bytes | None:
    """The bytes between the first `start` and the next `end` in `data`, or None.

    `find`, not a lazy regex: `<Error>.*?</Error>` costs the square of the body's length
    on a body of unclosed `<Error>` tags (a hostile endpoint's 8 MiB stall the event loop
    for hours)."""
    begin = data.find(start)
    if begin < 0:
        return None
    begin += len(start)
    stop = data.find(end, begin)
    return data[begin:stop] if stop >= 0 else None


def _aws_text(data: Any, body: bytes, headers: Mapping[str, str]) -> str | None:
    """AWS: the `x-amzn-ErrorType` header's code and a JSON `message`/`Message`, or the XML
    `<Code>`/`<Message>` of an `<Error>`."""
    code = None
    for name, value in headers.items():
        if name.lower() == "x-amzn-errortype":
            code = _code(value.partition(":")[0])
    message = None
    if isinstance(data, dict):
        message = _text(data.get("message")) or _text(data.get("Message"))
        kind = data.get("__type")
        if isinstance(kind, str):
            code = code or _code(kind.rpartition("#")[2])
    elif data is None and body.lstrip().startswith(b"<"):
        found = _between(body, b"<Error>", b"</Error>")
        if found is not None:
            xml_code = _between(found, b"<Code>", b"</Code>")
            xml_message = _between(found, b"<Message>", b"</Message>")
            if xml_code is not None:
                code = code or _code(xml_code.decode("utf-8", "replace").strip())
            if xml_message is not None:
                message = _text(xml_message.decode("utf-8", "replace"))
    if message and code:
        return f"{code}: {message}"
    return message or code


def error_detail(
    body: bytes,
    secrets: Iterable[str] = (),
    limit: int = 200,
    *,
    shape: ErrorShape | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    """The provider's error text, parsed from its known error shape (`shape`; None: any of
    them), secrets scrubbed before it is shortened to `limit` characters (so no fragment of
    one survives). Empty when the body is not in that shape: nothing else is ever quoted.
    """
    if not body:
        return ""
    headers = headers or {}
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    parsers: dict[ErrorShape, Callable[[], str | None]] = {
        "openai": lambda: _openai_text(data),
        "anthropic": lambda: _anthropic_text(data),
        "google": lambda: _google_text(data),
        "aws": lambda: _aws_text(data, body, headers),
    }
    text = None
    for name in (shape,) if shape is not None else parsers:
        text = parsers[name]()
        if text:
            break
    if not text:
        return ""
    # Known secrets are masked over the whole text and control characters folded (both
    # linear); the shape patterns of `scrub` then see a bounded window, cut before a token
    # that straddles its end (so no fragment of one survives the cut).
    text = " ".join(_CONTROL.sub(" ", _mask_secrets(text, secrets)).split())
    window = 16 * limit
    if len(text) > window:
        text = text[:window].rstrip(_TOKEN_CHARS) + " …"
    text = scrub(text, ())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_body(body: bytes, headers: Mapping[str, str] | None = None) -> str:
    """What a response body is, without quoting it: `text/html, 1843 bytes`."""
    media = ""
    for name, value in (headers or {}).items():
        if name.lower() == "content-type":
            candidate = value.partition(";")[0].strip().lower()
            media = candidate if _MEDIA_TYPE.match(candidate) else "unknown type"
    size = f"{len(body)} byte{'' if len(body) == 1 else 's'}"
    return f"{media}, {size}" if media else size


def _shown_location(location: str, limit: int = 200) -> str:
    """A redirect's `Location` as a message may show it: redacted (`redact_url`), control
    and bidi characters folded, at most `limit` characters (the server chose every byte)."""
    text = " ".join(_CONTROL.sub(" ", redact_url(location)).split())
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
    shape: ErrorShape | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProbeResult:
    """Map an HTTP response to a `ProbeResult`.

    `subject` names what was checked (e.g. `model "gpt-4o"`); `invalid_key_markers` are body
    fragments that turn a 400 into `InvalidCredentials` (Gemini answers a bad key with 400),
    `missing_model_markers` fragments that turn a 400 on a model check into `ModelNotFound`
    (Bedrock answers a malformed model ID with 400 `ValidationException`). `shape` is the
    provider's error shape (`SHAPES`), `headers` the response headers: the message quotes
    only what that shape yields (`error_detail`); any other error body is described by its
    media type and size (`describe_body`), never quoted.
    """
    shown = redact_url(url)
    what = f"{method} {shown} returned HTTP {_phrase(status)}"
    secrets = tuple(secrets)
    detail = error_detail(body, secrets, shape=shape, headers=headers) if status >= 300 else ""
    suffix = f": {detail}" if detail else ""
    if status >= 300 and not detail and not 300 <= status < 400 and body:
        suffix = f" ({describe_body(body, headers)})"
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
        target = f" to {_shown_location(location)}" if location else ""
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
