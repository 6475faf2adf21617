"""API errors as kube-apiserver reports them: ``metav1.Status`` bodies and the field causes of 422s.

Every failure the envtest server answers is a :class:`StatusError` carrying the exact ``Status``
document kube-apiserver would send (``reason``, ``code``, ``message``, ``details``), so clients
that switch on the reason (client-go, the ``kubernetes`` package, kubectl) behave unchanged.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


def status_body(
    code: int,
    reason: str,
    message: str,
    details: JSON | None = None,
    *,
    status: str = "Failure",
) -> JSON:
    """A ``Status`` object (apiVersion v1) with the given code, reason, message and details.

    ``details`` is left out when None, as kube's errors without details marshal
    (``NewBadRequest``, ``NewResourceExpired``, negotiation errors); ``{}`` is kept
    (``NewGenericServerResponse`` always carries one). A Success status has no message, reason
    or code.
    """
    body: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": status,
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    if status == "Success":
        body.pop("message")
        body.pop("reason")
        body.pop("code")
    return body


class StatusError(Exception):
    """A request failure answered with an HTTP status and a ``Status`` body."""

    def __init__(self, body: JSON, *, retry_after: int | None = None) -> None:
        super().__init__(body.get("message", ""))
        self.body = body
        self.code: int = int(body.get("code", 500))
        self.reason: str = str(body.get("reason", ""))
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"StatusError({self.code}, {self.reason!r}, {self.body.get('message')!r})"


def qualified(resource: str, group: str) -> str:
    """``resource.group`` (or the bare resource for the core group), as in kube's messages."""
    return f"{resource}.{group}" if group else resource


def _details(name: str, group: str, kind: str) -> JSON:
    details: JSON = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    return details


def not_found(resource: str, group: str, name: str) -> StatusError:
    """404 NotFound for one object (``secrets "x" not found``)."""
    return StatusError(
        status_body(
            404,
            "NotFound",
            f'{qualified(resource, group)} "{name}" not found',
            _details(name, group, resource),
        )
    )


PAGE_NOT_FOUND = "404 page not found\n"
"""The plain-text body of kube-apiserver's mux for a path no handler serves."""


class PageNotFound(Exception):
    """A path no API handler serves: kube answers ``404 page not found`` as text/plain."""


def path_not_found() -> PageNotFound:
    """404 for a path that names no resource (unknown group, version or resource)."""
    return PageNotFound(PAGE_NOT_FOUND)


def already_exists(resource: str, group: str, name: str) -> StatusError:
    """409 AlreadyExists on a create of an existing name."""
    return StatusError(
        status_body(
            409,
            "AlreadyExists",
            f'{qualified(resource, group)} "{name}" already exists',
            _details(name, group, resource),
        )
    )


CONFLICT_MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def conflict(resource: str, group: str, name: str, why: str = CONFLICT_MODIFIED) -> StatusError:
    """409 Conflict (stale resourceVersion or failed precondition)."""
    return StatusError(
        status_body(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
            _details(name, group, resource),
        )
    )


def bad_request(message: str) -> StatusError:
    """400 BadRequest."""
    return StatusError(status_body(400, "BadRequest", message))


def method_not_allowed() -> StatusError:
    """405 MethodNotAllowed (``NewGenericServerResponse``: an empty details object)."""
    return StatusError(
        status_body(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            {},
        )
    )


def unsupported_media_type(content_type: str, accepted: list[str]) -> StatusError:
    """415 UnsupportedMediaType naming the accepted media types, like kube's negotiation error."""
    message = (
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(accepted)}"
    )
    return StatusError(status_body(415, "UnsupportedMediaType", message))


def not_acceptable(accepted: list[str]) -> StatusError:
    """406 NotAcceptable."""
    message = f"only the following media types are accepted: {', '.join(accepted)}"
    return StatusError(status_body(406, "NotAcceptable", message))


def expired(message: str) -> StatusError:
    """410 Gone / Expired (a resourceVersion or continue token older than the history)."""
    return StatusError(status_body(410, "Expired", message))


def too_old_resource_version(requested: int, oldest: int) -> StatusError:
    """The 410 a watch from a compacted resourceVersion gets."""
    return expired(f"too old resource version: {requested} ({oldest})")


def forbidden(resource: str, group: str, name: str, why: str) -> StatusError:
    """403 Forbidden."""
    return StatusError(
        status_body(
            403,
            "Forbidden",
            f'{qualified(resource, group)} "{name}" is forbidden: {why}',
            _details(name, group, resource),
        )
    )


def unauthorized() -> StatusError:
    """401 Unauthorized (missing or wrong bearer token)."""
    return StatusError(status_body(401, "Unauthorized", "Unauthorized"))


def internal_error(message: str) -> StatusError:
    """500 InternalError."""
    return StatusError(
        status_body(
            500,
            "InternalError",
            f"Internal error occurred: {message}",
            {"causes": [{"message": message}]},
        )
    )


def timeout(message: str, retry_after: int = 1) -> StatusError:
    """504 Timeout."""
    return StatusError(
        status_body(504, "Timeout", message, {"retryAfterSeconds": retry_after}),
        retry_after=retry_after,
    )


def too_large_resource_version(requested: int, current: int) -> StatusError:
    """504 for a resourceVersion newer than the server's (kube's cause lets clients spot it)."""
    body = status_body(
        504,
        "Timeout",
        f"Timeout: Too large resource version: {requested}, current: {current}",
        {
            "causes": [
                {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
            ],
            "retryAfterSeconds": 1,
        },
    )
    return StatusError(body, retry_after=1)


def method_not_supported(resource: str, group: str, verb: str) -> StatusError:
    """405 for a verb the resource does not support (``create not allowed …``)."""
    return StatusError(
        status_body(
            405,
            "MethodNotAllowed",
            f"{verb} is not supported on resources of kind {qualified(resource, group)!r}",
            {"group": group, "kind": resource} if group else {"kind": resource},
        )
    )


def injected(code: int, retry_after: int | None) -> StatusError:
    """A failure injected by the fault knobs (500, 503, 429, …) with kube's reason for the code."""
    reasons = {
        429: ("TooManyRequests", "Too many requests, please try again later."),
        500: ("InternalError", "Internal error occurred: injected failure"),
        503: ("ServiceUnavailable", "The server is currently unable to handle the request"),
        504: ("Timeout", "The server was unable to respond in time"),
    }
    reason, message = reasons.get(code, ("InternalError", "injected failure"))
    details: JSON = {}
    if retry_after is not None:
        details["retryAfterSeconds"] = retry_after
    return StatusError(status_body(code, reason, message, details), retry_after=retry_after)
