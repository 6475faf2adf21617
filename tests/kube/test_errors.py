"""Typed errors from Status bodies; Retry-After; exception text without bodies."""

from __future__ import annotations

import pickle

import orjson
import pytest

from flokoa_controller.kube.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Gone,
    Invalid,
    MethodNotAllowed,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    error_from_response,
    parse_retry_after,
)


def status(code: int, reason: str = "", message: str = "msg", **details: object) -> bytes:
    body: dict[str, object] = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "message": message,
    }
    if reason:
        body["reason"] = reason
    if details:
        body["details"] = details
    return orjson.dumps(body)


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (400, "BadRequest", BadRequest),
        (401, "Unauthorized", Unauthorized),
        (403, "Forbidden", Forbidden),
        (404, "NotFound", NotFound),
        (405, "MethodNotAllowed", MethodNotAllowed),
        (409, "Conflict", Conflict),
        (409, "AlreadyExists", AlreadyExists),
        (410, "Gone", Gone),
        (410, "Expired", Gone),
        (415, "UnsupportedMediaType", UnsupportedMediaType),
        (422, "Invalid", Invalid),
        (429, "TooManyRequests", TooManyRequests),
        (500, "InternalError", ServerError),
        (503, "ServiceUnavailable", ServerError),
        (504, "Timeout", ServerError),
        (500, "ServerTimeout", ServerError),
        # reason wins over code
        (500, "NotFound", NotFound),
        # fallback on the code when the reason is missing or unknown
        (404, "", NotFound),
        (409, "", Conflict),
        (410, "", Gone),
        (422, "SomethingNew", Invalid),
        (502, "", ServerError),
        (418, "", ApiError),
    ],
)
def test_class_from_reason_then_code(code: int, reason: str, cls: type[ApiError]) -> None:
    err = error_from_response(code, status(code, reason), verb="GET", path="/api/v1/x")
    assert type(err) is cls
    assert err.code == code
    assert err.reason == reason
    assert err.message == "msg"


def test_status_dict_without_http_code_uses_status_code() -> None:
    # a watch ERROR event carries the Status only
    err = error_from_response(0, orjson.loads(status(410, "Expired", "too old")))
    assert isinstance(err, Gone)
    assert err.code == 410


def test_retry_after_header_then_details() -> None:
    err = error_from_response(429, status(429, "TooManyRequests"), retry_after_header="3")
    assert err.retry_after == 3.0
    err = error_from_response(500, status(500, "ServerTimeout", retryAfterSeconds=2))
    assert err.retry_after == 2.0
    # the header wins over details
    err = error_from_response(503, status(503, "", retryAfterSeconds=2), retry_after_header="7")
    assert err.retry_after == 7.0
    assert error_from_response(429, status(429)).retry_after is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1.0),
        (" 2 ", 2.0),
        ("0.5", 0.5),
        ("0", 0.0),
        (None, None),
        ("-1", None),
        ("nan", None),
        ("inf", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_text_has_verb_path_code_reason_message_only() -> None:
    err = error_from_response(
        422,
        status(422, "Invalid", 'Secret "s" is invalid: metadata.name: Required value'),
        verb="POST",
        path="/api/v1/namespaces/ns/secrets",
    )
    assert str(err) == (
        "POST /api/v1/namespaces/ns/secrets: 422 Invalid: "
        'Secret "s" is invalid: metadata.name: Required value'
    )
    assert err.details is None


def test_non_status_body_kept_short_and_plain() -> None:
    err = error_from_response(
        502, b"<html><body>Bad   Gateway</body></html>", verb="GET", path="/x"
    )
    assert isinstance(err, ServerError)
    assert err.message == "<html><body>Bad Gateway</body></html>"
    err = error_from_response(500, b"x" * 5000)
    assert len(err.message) <= 201
    # a JSON body that is not a Status contributes nothing
    err = error_from_response(500, orjson.dumps({"kind": "Secret", "data": {"k": "c2VjcmV0"}}))
    assert "c2VjcmV0" not in str(err)
    assert err.message == ""


def test_errors_pickle_with_attributes() -> None:
    err = error_from_response(
        429, status(429, "TooManyRequests"), verb="GET", path="/p", retry_after_header="4"
    )
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is TooManyRequests
    assert (back.code, back.reason, back.retry_after, back.verb, back.path) == (
        429,
        "TooManyRequests",
        4.0,
        "GET",
        "/p",
    )
    cf = ConnectionFailed(
        "ServerDisconnectedError", "gone", verb="POST", path="/p", request_sent=False
    )
    back_cf = pickle.loads(pickle.dumps(cf))
    assert isinstance(back_cf, ConnectionFailed)
    assert back_cf.request_sent is False
    assert str(back_cf) == "POST /p: ServerDisconnectedError: gone"
    assert isinstance(cf, ApiError)
    assert cf.code == 0
