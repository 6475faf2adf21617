"""`KubeClient`: an asyncio client of the Kubernetes REST API over pooled aiohttp sessions.

- Three connection pools, so that nothing waits behind what it must not: watches have a pool
  of their own (each open watch holds one connection for minutes: with three informers per
  watched namespace they would otherwise take the pool that writes and GETs use); Leases
  (leader election) have a small pool of their own, so a renewal never waits for a
  connection behind status writes, Secret GETs or lists; everything else shares the main
  pool (`ClientOptions.pool_limit`).

- JSON bodies are encoded and decoded with orjson.
- Transient failures are retried as `flokoa_controller.kube.retry` documents; a 401 makes
  the token source re-read its token once and the request is sent again if it changed.
- Every HTTP request is counted in `rest_client_requests_total{code,method,host}` and timed
  in `rest_client_request_duration_seconds{verb,host}` (each retry counts).
- Exception texts carry the verb, path, code, reason and Status message only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import aiohttp
import orjson
from yarl import URL

from flokoa_controller.kube.config import ClusterConfig
from flokoa_controller.kube.errors import ApiError, ConnectionFailed, Gone, error_from_response
from flokoa_controller.kube.metrics import (
    TRANSPORT_ERROR_CODE,
    rest_client_request_duration_seconds,
    rest_client_requests_total,
)
from flokoa_controller.kube.resources import ResourceType
from flokoa_controller.kube.retry import RetryPolicy, call_with_retries
from flokoa_controller.kube.tokens import TokenError
from flokoa_controller.kube.watch import WatchEvent, WatchStreamError, decode_event, iter_lines

__all__ = [
    "DEFAULT_FIELD_MANAGER",
    "PATCH_CONTENT_TYPES",
    "ClientOptions",
    "KubeClient",
    "PatchType",
    "WatchEvent",
]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
_T = TypeVar("_T")
PatchType = Literal["merge", "json", "strategic", "apply"]

PATCH_CONTENT_TYPES: Mapping[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
"""Content type of each patch type (server-side apply bodies are JSON, valid YAML)."""

DEFAULT_FIELD_MANAGER = "flokoa-controller"
"""`fieldManager` of every write unless another is given."""

_MAX_REMEMBERED_WARNINGS = 256

_LEASE_PATH_PREFIX = "/apis/coordination.k8s.io/"
"""Requests under this path (Leases: leader election) use the Lease pool."""


def _opened(session: aiohttp.ClientSession | None) -> aiohttp.ClientSession:
    if session is None or session.closed:
        raise RuntimeError("KubeClient is not open: use `async with KubeClient(...)`")
    return session


@dataclass(frozen=True)
class ClientOptions:
    """Connection pool, timeouts, retries and defaults of a `KubeClient`."""

    connect_timeout: float = 10.0
    """Seconds to establish a connection (TCP and TLS)."""
    request_timeout: float = 60.0
    """Total seconds for a non-watch request, response body included."""
    pool_limit: int = 100
    """Most simultaneous connections of requests other than watches and Leases."""
    watch_pool_limit: int = 0
    """Most simultaneous watch connections (0: no limit). Each open watch holds one
    connection; how many there are is decided by the informers (one per resource and
    watched namespace), so a limit would only make the last watches wait forever."""
    lease_pool_limit: int = 2
    """Most simultaneous connections of Lease requests (leader election: one at a time),
    kept apart so that a renewal never queues behind other requests."""
    keepalive_timeout: float = 30.0
    """Seconds an idle pooled connection is kept for reuse."""
    tcp_keepalive: float | None = 30.0
    """TCP keepalive idle time and interval of watch connections (None: off), so that a
    peer that vanished is noticed even when no inactivity timeout is set."""
    field_manager: str = DEFAULT_FIELD_MANAGER
    """Default `fieldManager` of create, update and patch."""
    decode_in_thread_above: int | None = None
    """Decode response bodies larger than this many bytes in a worker thread (None: always
    on the event loop). Off by default: orjson holds the GIL while decoding, so a thread
    does not shorten the loop's stall (measured, see tests/kube/bench_client.py)."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    """Retries of transient failures."""


@dataclass(frozen=True)
class _ErrorReply:
    """An HTTP error status with its body read: what `error_from_response` needs."""

    status: int
    body: bytes
    retry_after: str | None


def _params(**values: str | int | bool | None) -> list[tuple[str, str]]:
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


def _transport_error(exc: BaseException, verb: str, path: str) -> ConnectionFailed:
    """Classify an aiohttp/asyncio failure without an HTTP response."""
    reason = type(exc).__name__
    text = str(exc)
    message = f"{text}" if text else reason
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return ConnectionFailed(
            reason, message, verb=verb, path=path, request_sent=False, permanent=True
        )
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return ConnectionFailed(reason, message, verb=verb, path=path, request_sent=False)
    if isinstance(exc, aiohttp.InvalidURL):
        return ConnectionFailed(
            reason, message, verb=verb, path=path, request_sent=False, permanent=True
        )
    if isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ClientError):
        return ConnectionFailed("Timeout", "request timed out", verb=verb, path=path)
    return ConnectionFailed(reason, message, verb=verb, path=path)


def _enable_tcp_keepalive(resp: aiohttp.ClientResponse, seconds: float) -> None:
    """Turn on TCP keepalive for the connection of a long-lived response (best effort)."""
    conn = resp.connection
    transport = conn.transport if conn is not None else None
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return
    interval = max(1, int(seconds))
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, interval)
        if hasattr(socket, "TCP_KEEPINTVL"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)


class KubeClient:
    """An asyncio Kubernetes API client.

    Use as `async with KubeClient(config) as client:`; the pooled session lives as long as
    the context. Objects are plain dicts as the API server sends them.
    """

    def __init__(self, config: ClusterConfig, options: ClientOptions | None = None) -> None:
        self.config = config
        """Where and who: the cluster configuration."""
        self.options = options or ClientOptions()
        """Timeouts, pool, retries."""
        self._base = config.server.rstrip("/")
        self._host = config.host
        self._counters: dict[tuple[str, str], Any] = {}
        """Labelled children of the request counter, by (code, verb): looked up once."""
        self._latencies: dict[str, Any] = {}
        """Labelled children of the latency histogram, by verb."""
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None
        self._lease_session: aiohttp.ClientSession | None = None
        self._warnings_seen: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Open the connection pool."""
        self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the connection pool."""
        await self.close()

    def open(self) -> None:
        """Create the pooled sessions (needs a running event loop); idempotent."""
        if self._session is not None and not self._session.closed:
            return
        opts = self.options
        ssl_context = self.config.ssl_context()
        self._session = self._new_session(opts.pool_limit, ssl_context)
        self._watch_session = self._new_session(opts.watch_pool_limit, ssl_context)
        self._lease_session = self._new_session(opts.lease_pool_limit, ssl_context)

    def _new_session(self, limit: int, ssl_context: Any) -> aiohttp.ClientSession:
        opts = self.options
        connector = aiohttp.TCPConnector(
            limit=limit,
            keepalive_timeout=opts.keepalive_timeout,
            ssl=ssl_context if ssl_context is not None else True,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=opts.request_timeout,
                connect=opts.connect_timeout,
                sock_connect=opts.connect_timeout,
            ),
            headers={"User-Agent": self.config.user_agent, "Accept": "application/json"},
            trust_env=False,
            raise_for_status=False,
        )

    async def close(self) -> None:
        """Close the pooled sessions and their connections."""
        sessions = (self._session, self._watch_session, self._lease_session)
        self._session = self._watch_session = self._lease_session = None
        for session in sessions:
            if session is not None:
                await session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The main pooled aiohttp session (raises if the client is not open)."""
        return _opened(self._session)

    @property
    def watch_session(self) -> aiohttp.ClientSession:
        """The session of watches (raises if the client is not open)."""
        return _opened(self._watch_session)

    @property
    def lease_session(self) -> aiohttp.ClientSession:
        """The session of Lease requests (raises if the client is not open)."""
        return _opened(self._lease_session)

    def _session_for(self, path: str) -> aiohttp.ClientSession:
        if path.startswith(_LEASE_PATH_PREFIX):
            return self.lease_session
        return self.session

    # -- plumbing --------------------------------------------------------------------------

    async def _authorization(self, verb: str, path: str) -> str | None:
        source = self.config.token_source
        if source is None:
            return None
        try:
            return await source.token()
        except TokenError as exc:
            raise ConnectionFailed(
                "TokenUnavailable", str(exc), verb=verb, path=path, request_sent=False
            ) from None

    def _headers(self, token: str | None, content_type: str | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

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
        rejected_token: str | None = None
        for _ in range(2):
            token = await self._authorization(verb, path)
            if rejected_token is not None and token == rejected_token:
                break
            reply = await send(token)
            if not isinstance(reply, _ErrorReply):
                return reply
            failure = reply
            if (
                failure.status == 401
                and self.config.token_source is not None
                and token is not None
                and rejected_token is None
            ):
                rejected_token = token
                self.config.token_source.invalidate()
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
        url = URL(self._base + path, encoded=True)

        async def send(token: str | None) -> bytes | _ErrorReply:
            started = time.perf_counter()
            code = TRANSPORT_ERROR_CODE
            try:
                async with self._session_for(path).request(
                    verb,
                    url,
                    params=params,
                    data=body,
                    headers=self._headers(token, content_type),
                    proxy=self.config.proxy,
                    server_hostname=self.config.tls_server_name,
                ) as resp:
                    data = await resp.read()
                    code = str(resp.status)
                    self._note_warnings(resp, verb, path)
                    if resp.status < 400:
                        return data
                    return _ErrorReply(resp.status, data, resp.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _transport_error(exc, verb, path) from None
            finally:
                self._record(code, verb, started)

        return await self._send_authorized(verb, path, send)

    async def _exchange(
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
            self.options.retry,
            what=f"{verb} {path}",
        )

    async def _decode(self, data: bytes) -> Any:
        threshold = self.options.decode_in_thread_above
        if threshold is not None and len(data) > threshold:
            return await asyncio.to_thread(orjson.loads, data)
        return orjson.loads(data)

    async def _json(
        self,
        verb: str,
        path: str,
        params: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
    ) -> JSON:
        encoded = None if body is None else orjson.dumps(body)
        if encoded is not None and content_type is None:
            content_type = "application/json"
        data = await self._exchange(verb, path, params, encoded, content_type)
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

    def _write_params(
        self,
        dry_run: bool,
        field_manager: str | None,
        field_validation: str | None,
        force: bool | None = None,
    ) -> list[tuple[str, str]]:
        return _params(
            dryRun="All" if dry_run else None,
            fieldManager=field_manager or self.options.field_manager,
            fieldValidation=field_validation,
            force=force,
        )

    @staticmethod
    def _object_namespace(
        rt: ResourceType, body: Mapping[str, Any], namespace: str | None
    ) -> str | None:
        if namespace is not None or not rt.namespaced:
            return namespace
        metadata = body.get("metadata") or {}
        ns = metadata.get("namespace")
        if not ns:
            raise ValueError(f"{rt.plural} are namespaced: give a namespace or metadata.namespace")
        return str(ns)

    # -- verbs -----------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
    ) -> JSON:
        """Any JSON request on a raw path (discovery, `/version`...), with the client's
        authentication, retries, metrics and typed errors."""
        return await self._json(method.upper(), path, params, body, content_type)

    async def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> JSON:
        """Read one object. Raises `NotFound` if it does not exist."""
        return await self._json("GET", rt.path(namespace, name))

    async def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> JSON:
        """One page of a list (all namespaces when `namespace` is None for a namespaced
        type). `metadata.continue` of the result is the token of the next page, if any."""
        params = _params(
            labelSelector=label_selector,
            fieldSelector=field_selector,
            limit=limit,
            resourceVersion=resource_version,
            resourceVersionMatch=resource_version_match,
        )
        if continue_token:
            params.append(("continue", continue_token))
        return await self._json("GET", rt.path(namespace), params)

    async def list_all(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
        resource_version: str | None = None,
    ) -> JSON:
        """The whole list, fetched in pages of `page_size` and returned as one list object
        (`items` of every page; `metadata.resourceVersion` of the snapshot).

        When a continue token has expired (410) the list is fetched again in one piece,
        as client-go's pager does. `resource_version` applies to the first request only
        (the API server refuses it together with a continue token).
        """
        items: list[Any] = []
        token: str | None = None
        while True:
            try:
                page = await self.list(
                    rt,
                    namespace,
                    label_selector=label_selector,
                    field_selector=field_selector,
                    limit=page_size,
                    continue_token=token,
                    resource_version=None if token else resource_version,
                )
            except Gone:
                if token is None:
                    raise
                log.info("continue token of %s expired: listing it in full", rt)
                return await self.list(
                    rt, namespace, label_selector=label_selector, field_selector=field_selector
                )
            items.extend(page.get("items") or ())
            metadata = page.setdefault("metadata", {})
            token = metadata.pop("continue", None) or None
            if token is None:
                metadata.pop("remainingItemCount", None)
                page["items"] = items
                return page

    async def create(
        self,
        rt: ResourceType,
        body: Mapping[str, Any],
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: str | None = None,
    ) -> JSON:
        """Create an object (POST). `namespace` defaults to `metadata.namespace`.
        Raises `AlreadyExists` if the name is taken. Not retried on 5xx."""
        ns = self._object_namespace(rt, body, namespace)
        params = self._write_params(dry_run, field_manager, field_validation)
        return await self._json("POST", rt.path(ns), params, body)

    async def update(
        self,
        rt: ResourceType,
        body: Mapping[str, Any],
        namespace: str | None = None,
        subresource: str | None = None,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: str | None = None,
    ) -> JSON:
        """Replace an object or a subresource (PUT). With `metadata.resourceVersion` set,
        a concurrent change makes it fail with `Conflict`."""
        ns = self._object_namespace(rt, body, namespace)
        name = (body.get("metadata") or {}).get("name")
        if not name:
            raise ValueError("update needs metadata.name")
        params = self._write_params(dry_run, field_manager, field_validation)
        return await self._json("PUT", rt.path(ns, str(name), subresource), params, body)

    async def patch(
        self,
        rt: ResourceType,
        name: str,
        patch: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: str | None = None,
        force: bool | None = None,
    ) -> JSON:
        """Patch an object or a subresource (PATCH): `merge` (RFC 7386), `json` (RFC 6902,
        a list of operations), `strategic`, or `apply` (server-side apply; `force` takes
        conflicting fields over). Not retried on 5xx."""
        try:
            content_type = PATCH_CONTENT_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"unknown patch type {patch_type!r}") from None
        params = self._write_params(
            dry_run, field_manager, field_validation, force if patch_type == "apply" else None
        )
        return await self._json(
            "PATCH", rt.path(namespace, name, subresource), params, patch, content_type
        )

    async def delete(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: Mapping[str, str] | None = None,
        dry_run: bool = False,
    ) -> JSON:
        """Delete an object (DELETE). Returns the object (when deletion waits on finalizers)
        or a Status. `preconditions` may hold `uid` and/or `resourceVersion`."""
        params = _params(
            propagationPolicy=propagation_policy,
            gracePeriodSeconds=grace_period_seconds,
            dryRun="All" if dry_run else None,
        )
        body = None
        if preconditions:
            body = {
                "kind": "DeleteOptions",
                "apiVersion": "v1",
                "preconditions": dict(preconditions),
            }
        return await self._json("DELETE", rt.path(namespace, name), params, body)

    # -- watch -----------------------------------------------------------------------------

    async def _open_watch(
        self, path: str, params: Sequence[tuple[str, str]], inactivity_timeout: float | None
    ) -> aiohttp.ClientResponse:
        url = URL(self._base + path, encoded=True)
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self.options.connect_timeout,
            sock_connect=self.options.connect_timeout,
            sock_read=inactivity_timeout,
        )

        async def send(token: str | None) -> aiohttp.ClientResponse | _ErrorReply:
            started = time.perf_counter()
            code = TRANSPORT_ERROR_CODE
            try:
                resp = await self.watch_session.request(
                    "GET",
                    url,
                    params=params,
                    headers=self._headers(token, None),
                    timeout=timeout,
                    proxy=self.config.proxy,
                    server_hostname=self.config.tls_server_name,
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
                raise _transport_error(exc, "GET", path) from None
            finally:
                self._record(code, "GET", started)
            return _ErrorReply(resp.status, data, resp.headers.get("Retry-After"))

        return await self._send_authorized("GET", path, send)

    async def watch(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
        send_initial_events: bool = False,
        label_selector: str | None = None,
        field_selector: str | None = None,
        inactivity_timeout: float | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Stream watch events of a collection (all namespaces when `namespace` is None).

        The request is sent on the first iteration; an HTTP error status raises the typed
        error then. `ERROR` events are yielded as they come (the caller decides: a 410 there
        means relist). The generator ends when the server closes the stream (after
        `timeout_seconds`). `inactivity_timeout`: seconds without any byte from the server
        after which `ConnectionFailed(reason="InactivityTimeout")` is raised (bookmarks
        count as activity). `send_initial_events` asks for a streaming list
        (`resourceVersionMatch=NotOlderThan`). Never retried here. Closing the generator
        (`aclose()`, or `contextlib.aclosing`) closes the connection at once.
        """
        params = _params(
            watch=1,
            resourceVersion=resource_version,
            timeoutSeconds=timeout_seconds,
            allowWatchBookmarks=True if allow_bookmarks else None,
            labelSelector=label_selector,
            fieldSelector=field_selector,
        )
        if send_initial_events:
            params += [("sendInitialEvents", "true"), ("resourceVersionMatch", "NotOlderThan")]
        path = rt.path(namespace)
        resp = await self._open_watch(path, params, inactivity_timeout)
        finished = False
        try:
            if self.options.tcp_keepalive:
                _enable_tcp_keepalive(resp, self.options.tcp_keepalive)
            async for line in iter_lines(resp.content.iter_any()):
                yield decode_event(line)
            finished = True
        except WatchStreamError as exc:
            raise ConnectionFailed("InvalidWatchStream", str(exc), verb="GET", path=path) from None
        except aiohttp.SocketTimeoutError:
            raise ConnectionFailed(
                "InactivityTimeout",
                f"no data from the watch for {inactivity_timeout}s",
                verb="GET",
                path=path,
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(exc, "GET", path) from None
        finally:
            if finished:
                resp.release()
            else:
                resp.close()
