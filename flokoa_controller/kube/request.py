"""One API request: authorization, retries, metrics, warnings and typed errors.

As client-go's `rest.Request`: a `Requester` sends a request through a `Transport`,

- retries transient failures as `flokoa_controller.kube.retry` documents; a 401 makes the
  token source re-read its token once and the request is sent again if it changed;
- counts every HTTP request in `rest_client_requests_total{code,method,host}` and times it in
  `rest_client_request_duration_seconds{verb,host}` (each retry counts);
- logs each distinct API server `Warning` header once;
- maps error statuses to the typed errors of `flokoa_controller.kube.errors`, whose texts
  carry the verb, path, code, reason and Status message only.

JSON bodies are encoded and decoded with orjson.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import orjson
from yarl import URL

from flokoa_controller.kube.errors import ApiError, error_from_response
from flokoa_controller.kube.metrics import (
    TRANSPORT_ERROR_CODE,
    rest_client_request_duration_seconds,
    rest_client_requests_total,
)
from flokoa_controller.kube.retry import call_with_retries
from flokoa_controller.kube.transport import Transport, transport_error

__all__ = ["JSON", "Requester", "query_params"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
"""A decoded JSON object as the API server sends it."""

_T = TypeVar("_T")

_MAX_REMEMBERED_WARNINGS = 256


def query_params(**values: str | int | bool | None) -> list[tuple[str, str]]:
    """Query parameters, skipping None; booleans as "true"/"false"."""
    out: list[tuple[str, str]] = []
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out.append((key, "true" if value else "false"))
        else:
            out.append((key, str(value)))
    return out


@dataclass(frozen=True)
class _ErrorReply:
    """An HTTP error status with its body read: what `error_from_response` needs."""

    status: int
    body: bytes
    retry_after: str | None


class Requester:
    """Sends requests through a `Transport` with retries, metrics and typed errors."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        """The sessions and credentials requests go through."""
        self._host = transport.config.host
        self._counters: dict[tuple[str, str], Any] = {}
        """Labelled children of the request counter, by (code, verb): looked up once."""
        self._latencies: dict[str, Any] = {}
        """Labelled children of the latency histogram, by verb."""
        self._warnings_seen: set[str] = set()

    def _note_warnings(self, resp: aiohttp.ClientResponse, verb: str, path: str) -> None:
        """Log API server `Warning` headers (deprecations, unknown fields) once each."""
        for value in resp.headers.getall("Warning", ()):
            if value in self._warnings_seen:
                continue
            if len(self._warnings_seen) < _MAX_REMEMBERED_WARNINGS:
                self._warnings_seen.add(value)
            log.warning("API server warning for %s %s: %s", verb, path, value)

    def _record(self, code: str, verb: str, started: float) -> None:
        counter = self._counters.get((code, verb))
        if counter is None:
            counter = rest_client_requests_total.labels(code, verb, self._host)
            self._counters[(code, verb)] = counter
        counter.inc()
        histogram = self._latencies.get(verb)
        if histogram is None:
            histogram = rest_client_request_duration_seconds.labels(verb, self._host)
            self._latencies[verb] = histogram
        histogram.observe(time.perf_counter() - started)

    async def _send_authorized(
        self,
        verb: str,
        path: str,
        send: Callable[[str | None], Awaitable[_T | _ErrorReply]],
    ) -> _T:
        """`send(token)` with the current bearer token; after a 401, once more if the token
        source then yields another token. An error status raises the typed `ApiError`."""
        transport = self.transport
        rejected_token: str | None = None
        for _ in range(2):
            token = await transport.token(verb, path)
            if rejected_token is not None and token == rejected_token:
                break
            reply = await send(token)
            if not isinstance(reply, _ErrorReply):
                return reply
            failure = reply
            if (
                failure.status == 401
                and transport.has_token_source
                and token is not None
                and rejected_token is None
            ):
                rejected_token = token
                transport.invalidate_token()
                continue
            break
        raise error_from_response(
            failure.status,
            failure.body,
            verb=verb,
            path=path,
            retry_after_header=failure.retry_after,
        )

    async def _exchange_once(
        self,
        verb: str,
        path: str,
        params: Sequence[tuple[str, str]],
        body: bytes | None,
        content_type: str | None,
    ) -> bytes:
        """One request (plus one resend after a 401 with a rotated token)."""
        transport = self.transport
        url = URL(transport.base + path, encoded=True)

        async def send(token: str | None) -> bytes | _ErrorReply:
            started = time.perf_counter()
            code = TRANSPORT_ERROR_CODE
            try:
                async with transport.session_for(path).request(
                    verb,
                    url,
                    params=params,
                    data=body,
                    headers=transport.headers(token, content_type),
                    proxy=transport.config.proxy,
                    server_hostname=transport.config.tls_server_name,
                ) as resp:
                    data = await resp.read()
                    code = str(resp.status)
                    self._note_warnings(resp, verb, path)
                    if resp.status < 400:
                        return data
                    return _ErrorReply(resp.status, data, resp.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise transport_error(exc, verb, path) from None
            finally:
                self._record(code, verb, started)

        return await self._send_authorized(verb, path, send)

    async def exchange(
        self,
        verb: str,
        path: str,
        params: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> bytes:
        """A request with retries of transient failures; the raw response body."""

        async def attempt() -> bytes:
            return await self._exchange_once(verb, path, params, body, content_type)

        return await call_with_retries(
            attempt,
            verb,
            self.transport.options.retry,
            what=f"{verb} {path}",
        )

    async def _decode(self, data: bytes) -> Any:
        threshold = self.transport.options.decode_in_thread_above
        if threshold is not None and len(data) > threshold:
            return await asyncio.to_thread(orjson.loads, data)
        return orjson.loads(data)

    async def json(
        self,
        verb: str,
        path: str,
        params: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
    ) -> JSON:
        """A JSON request (body encoded, `application/json` unless `content_type`) with
        retries; the decoded object (`{}` for an empty body)."""
        encoded = None if body is None else orjson.dumps(body)
        if encoded is not None and content_type is None:
            content_type = "application/json"
        data = await self.exchange(verb, path, params, encoded, content_type)
        if not data:
            return {}
        try:
            decoded = await self._decode(data)
        except orjson.JSONDecodeError:
            raise ApiError(
                0, "InvalidResponse", "response is not JSON", verb=verb, path=path
            ) from None
        if not isinstance(decoded, dict):
            raise ApiError(
                0, "InvalidResponse", "response is not a JSON object", verb=verb, path=path
            )
        return decoded

    async def open_stream(
        self, path: str, params: Sequence[tuple[str, str]], inactivity_timeout: float | None
    ) -> aiohttp.ClientResponse:
        """Open a long-lived GET (a watch) on the watch pool, never retried; the response
        with its body unread. `inactivity_timeout` bounds the silence between bytes."""
        transport = self.transport
        url = URL(transport.base + path, encoded=True)
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=transport.options.connect_timeout,
            sock_connect=transport.options.connect_timeout,
            sock_read=inactivity_timeout,
        )

        async def send(token: str | None) -> aiohttp.ClientResponse | _ErrorReply:
            started = time.perf_counter()
            code = TRANSPORT_ERROR_CODE
            try:
                resp = await transport.watch_session.request(
                    "GET",
                    url,
                    params=params,
                    headers=transport.headers(token, None),
                    timeout=timeout,
                    proxy=transport.config.proxy,
                    server_hostname=transport.config.tls_server_name,
                )
                code = str(resp.status)
                if resp.status < 400:
                    self._note_warnings(resp, "GET", path)
                    return resp
                try:
                    data = await resp.read()
                finally:
                    resp.release()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise transport_error(exc, "GET", path) from None
            finally:
                self._record(code, "GET", started)
            return _ErrorReply(resp.status, data, resp.headers.get("Retry-After"))

        return await self._send_authorized("GET", path, send)
