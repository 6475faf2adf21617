"""Typed errors of the API client, built from a kube-apiserver `Status` body.

The class is chosen from the Status `reason` first (the API server's own classification),
falling back on the HTTP code when the reason is missing or unknown, like client-go's
`errors.ReasonForError` / `errors.IsNotFound` helpers.

Exception text is limited to the verb, the path, the code, the reason and the Status
message: never a request body (it may be a Secret) nor a response body other than the
Status message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = [
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "Gone",
    "Invalid",
    "MethodNotAllowed",
    "NotFound",
    "ServerError",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "error_from_response",
    "parse_retry_after",
]

_MAX_PLAIN_MESSAGE = 200
"""Longest non-Status response text kept as the message (e.g. "404 page not found")."""


class ApiError(Exception):
    """An API request failed: the server answered with an error status (or, for the
    `ConnectionFailed` subclass, did not answer at all).

    Attributes are safe to log: none of them holds a request body.
    """

    code: int
    """HTTP status code (0 for `ConnectionFailed`)."""
    reason: str
    """Status reason (e.g. "NotFound", "Expired"), or "" when the server gave none."""
    message: str
    """Status message from the server."""
    retry_after: float | None
    """Seconds the server asked the client to wait before retrying, if it said so."""
    verb: str | None
    """HTTP method of the failed request, when known."""
    path: str | None
    """URL path of the failed request, when known."""
    details: Mapping[str, Any] | None
    """Status `details` (name, group, kind, causes, retryAfterSeconds), when given."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        retry_after: float | None = None,
        *,
        verb: str | None = None,
        path: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.code = code
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.verb = verb
        self.path = path
        self.details = details
        super().__init__(self._text())

    def _text(self) -> str:
        where = " ".join(p for p in (self.verb, self.path) if p)
        what = f"{self.code} {self.reason}".strip() if self.code else self.reason
        text = f"{where}: {what}" if where else what
        return f"{text}: {self.message}" if self.message else text

    def __str__(self) -> str:
        """`VERB /path: code Reason: message`."""
        return self._text()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with all attributes (exceptions are pickled by their args otherwise)."""
        return (
            _rebuild,
            (
                type(self),
                (self.code, self.reason, self.message, self.retry_after),
                {"verb": self.verb, "path": self.path, "details": self.details},
            ),
        )


def _rebuild(cls: type[ApiError], args: tuple[Any, ...], kwargs: dict[str, Any]) -> ApiError:
    """Unpickle an error: `cls(*args, **kwargs)`."""
    return cls(*args, **kwargs)


class BadRequest(ApiError):
    """400: the request is malformed (e.g. a bad selector or patch)."""


class Unauthorized(ApiError):
    """401: the credentials were missing, invalid or expired."""


class Forbidden(ApiError):
    """403: authenticated but not allowed (RBAC), or the namespace is terminating."""


class NotFound(ApiError):
    """404: the object (or the resource type) does not exist."""


class MethodNotAllowed(ApiError):
    """405: the verb is not supported on this resource."""


class Conflict(ApiError):
    """409 Conflict: the object was modified (stale resourceVersion); re-read and retry."""


class AlreadyExists(ApiError):
    """409 AlreadyExists: create of an object whose name is taken."""


class Gone(ApiError):
    """410 Gone / Expired: a resourceVersion or continue token too old; relist."""


class UnsupportedMediaType(ApiError):
    """415: the patch type is not supported for this resource."""


class Invalid(ApiError):
    """422: the object failed validation; `details["causes"]` lists the fields."""


class TooManyRequests(ApiError):
    """429: throttled (API Priority and Fairness) or the server is shutting down."""


class ServerError(ApiError):
    """5xx: internal error, service unavailable or server timeout."""


class ConnectionFailed(ApiError):
    """No HTTP answer: refused, reset, disconnected, TLS failure or timeout.

    `code` is 0; `reason` names the failure class (e.g. "ServerDisconnectedError").
    A subclass of `ApiError` so that `except ApiError` covers every client failure.
    """

    request_sent: bool
    """Whether the request may have reached the server (False: no connection was made)."""
    permanent: bool
    """Whether retrying cannot help (e.g. the server certificate failed verification)."""

    def __init__(
        self,
        reason: str,
        message: str = "",
        *,
        verb: str | None = None,
        path: str | None = None,
        request_sent: bool = True,
        permanent: bool = False,
    ) -> None:
        self.request_sent = request_sent
        self.permanent = permanent
        super().__init__(0, reason, message, None, verb=verb, path=path)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with all attributes."""
        return (
            _rebuild,
            (
                type(self),
                (self.reason, self.message),
                {
                    "verb": self.verb,
                    "path": self.path,
                    "request_sent": self.request_sent,
                    "permanent": self.permanent,
                },
            ),
        )


_BY_REASON: dict[str, type[ApiError]] = {
    "BadRequest": BadRequest,
    "Unauthorized": Unauthorized,
    "Forbidden": Forbidden,
    "NotFound": NotFound,
    "MethodNotAllowed": MethodNotAllowed,
    "Conflict": Conflict,
    "AlreadyExists": AlreadyExists,
    "Gone": Gone,
    "Expired": Gone,
    "UnsupportedMediaType": UnsupportedMediaType,
    "Invalid": Invalid,
    "TooManyRequests": TooManyRequests,
    "InternalError": ServerError,
    "ServiceUnavailable": ServerError,
    "ServerTimeout": ServerError,
    "Timeout": ServerError,
}

_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    410: Gone,
    415: UnsupportedMediaType,
    422: Invalid,
    429: TooManyRequests,
}


def error_class(code: int, reason: str) -> type[ApiError]:
    """The error class for a Status `reason`, falling back on the HTTP `code`."""
    cls = _BY_REASON.get(reason)
    if cls is not None:
        return cls
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls
    return ServerError if 500 <= code <= 599 else ApiError


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header given in delta-seconds; None if absent or not a
    non-negative number (an HTTP date is not used by kube-apiserver)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        return None
    return seconds


def _as_status(body: bytes | str | Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if body is None:
        return None
    if isinstance(body, Mapping):
        return body
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return decoded if isinstance(decoded, Mapping) else None


def _plain_text(body: bytes | str | Mapping[str, Any] | None) -> str:
    """A short non-JSON response text (e.g. a proxy's "502 Bad Gateway" page title)."""
    if body is None or isinstance(body, Mapping):
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    if len(text) > _MAX_PLAIN_MESSAGE:
        text = text[:_MAX_PLAIN_MESSAGE] + "…"
    return text


def error_from_response(
    code: int,
    body: bytes | str | Mapping[str, Any] | None,
    *,
    verb: str | None = None,
    path: str | None = None,
    retry_after_header: str | None = None,
) -> ApiError:
    """Build the typed error for an HTTP error response (or a watch `ERROR` event's Status).

    `body` is the raw response body or an already decoded Status. When the body is a
    Status, its `code` (if any) wins over `code` only when `code` is 0 (watch events carry no
    HTTP code). `retry_after` comes from the `Retry-After` header, else from
    `details.retryAfterSeconds`.
    """
    status = _as_status(body)
    reason = ""
    message = ""
    details: Mapping[str, Any] | None = None
    if status is not None and status.get("kind") in ("Status", None):
        reason = str(status.get("reason") or "")
        message = str(status.get("message") or "")
        raw_details = status.get("details")
        details = raw_details if isinstance(raw_details, Mapping) else None
        status_code = status.get("code")
        if not code and isinstance(status_code, int):
            code = status_code
    elif status is None:
        message = _plain_text(body)
    retry_after = parse_retry_after(retry_after_header)
    if retry_after is None and details is not None:
        seconds = details.get("retryAfterSeconds")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
            retry_after = float(seconds)
    cls = error_class(code, reason)
    return cls(code, reason, message, retry_after, verb=verb, path=path, details=details)
