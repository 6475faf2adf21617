"""One authenticated GET and its verdict: the step every provider probe ends with."""

from __future__ import annotations

import time
from collections.abc import Mapping
from urllib.parse import quote

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


async def probe_get(
    http: ProbeHTTP,
    target: ProbeTarget,
    check: Check,
    url: str,
    headers: Mapping[str, str],
    *,
    subject: str = "",
    started: float | None = None,
    extra_secrets: tuple[str, ...] = (),
    invalid_key_markers: tuple[bytes, ...] = (),
    missing_model_markers: tuple[bytes, ...] = (),
) -> ProbeResult:
    """GET `url` with `headers` for `target` and map the outcome to a `ProbeResult`.

    `started` (a `time.monotonic()` value) lets the duration include credential acquisition;
    `extra_secrets` are short-lived secrets (tokens) to scrub besides the target's own.
    """
    start = time.monotonic() if started is None else started
    secrets = (*target.secret_values(), *extra_secrets)
    try:
        response = await http.request(target, "GET", url, headers)
    except TransportError as exc:
        return failure(
            exc.reason,
            f"GET {redact_url(url)}: {exc.message}",
            url=url,
            duration=time.monotonic() - start,
            secrets=secrets,
        )
    return from_response(
        check,
        method="GET",
        url=url,
        status=response.status,
        body=response.body,
        duration=time.monotonic() - start,
        secrets=secrets,
        subject=subject,
        location=_header(response.headers, "location"),
        invalid_key_markers=invalid_key_markers,
        missing_model_markers=missing_model_markers,
        shape=SHAPES.get(target.kind),
        headers=response.headers,
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
