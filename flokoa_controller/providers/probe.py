"""One authenticated GET and its verdict: the step every provider probe ends with."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, TypedDict, Unpack
from urllib.parse import quote

import orjson

from flokoa_controller.providers.http import ProbeHTTP, TransportError
from flokoa_controller.providers.result import (
    SHAPES,
    Check,
    ProbeResult,
    failure,
    from_response,
    redact_url,
)
from flokoa_controller.providers.target import ProbeTarget


def join_url(base: str, *segments: str, query: str = "") -> str:
    """`base` (a trailing slash ignored) with percent-encoded path `segments` and a query.

    Each segment is quoted whole (`/` included), so a model ID cannot change the path.
    """
    url = base.rstrip("/")
    for segment in segments:
        url += "/" + quote(segment, safe="")
    return f"{url}?{query}" if query else url


class ProbeOptions(TypedDict, total=False):
    """What `probe_get`/`probe_json` take besides the request itself (all optional).

    - `subject`: what the check is about in messages (e.g. `model "gpt-4o"`).
    - `started`: a `time.monotonic()` value, so the duration includes credential acquisition.
    - `extra_secrets`: short-lived secrets (tokens) to scrub besides the target's own.
    - `invalid_key_markers` / `missing_model_markers`: body fragments that mean a bad key /
      an unknown model on an otherwise ambiguous answer.
    """

    subject: str
    started: float | None
    extra_secrets: tuple[str, ...]
    invalid_key_markers: tuple[bytes, ...]
    missing_model_markers: tuple[bytes, ...]


async def probe_get(
    http: ProbeHTTP,
    target: ProbeTarget,
    check: Check,
    url: str,
    headers: Mapping[str, str],
    **options: Unpack[ProbeOptions],
) -> ProbeResult:
    """GET `url` with `headers` for `target` and map the outcome to a `ProbeResult`
    (`options`: see `ProbeOptions`)."""
    result, _body = await probe_json(http, target, check, url, headers, **options)
    return result


async def probe_json(
    http: ProbeHTTP,
    target: ProbeTarget,
    check: Check,
    url: str,
    headers: Mapping[str, str],
    *,
    method: str = "GET",
    data: bytes | None = None,
    **options: Unpack[ProbeOptions],
) -> tuple[ProbeResult, dict[str, Any] | None]:
    """`probe_get` for any method (a `data` body is sent as JSON), also returning the
    parsed JSON object of a successful answer (None otherwise), for checks that read it."""
    started = options.get("started")
    start = time.monotonic() if started is None else started
    secrets = (*target.secret_values(), *options.get("extra_secrets", ()))
    sent = dict(headers)
    if data is not None:
        sent.setdefault("Content-Type", "application/json")
    try:
        response = await http.request(target, method, url, sent, data=data)
    except TransportError as exc:
        return failure(
            exc.reason,
            f"{method} {redact_url(url)}: {exc.message}",
            url=url,
            duration=time.monotonic() - start,
            secrets=secrets,
        ), None
    result = from_response(
        check,
        method=method,
        url=url,
        status=response.status,
        body=response.body,
        duration=time.monotonic() - start,
        secrets=secrets,
        subject=options.get("subject", ""),
        location=_header(response.headers, "location"),
        invalid_key_markers=options.get("invalid_key_markers", ()),
        missing_model_markers=options.get("missing_model_markers", ()),
        shape=SHAPES.get(target.kind),
        headers=response.headers,
    )
    parsed: dict[str, Any] | None = None
    if result.ok and not result.rate_limited:
        try:
            loaded = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            loaded = None
        parsed = loaded if isinstance(loaded, dict) else None
    return result, parsed


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
