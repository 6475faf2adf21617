"""`FakeEndpoint`: the aiohttp server every fake provider endpoint is built on.

It listens on 127.0.0.1 with an ephemeral port (optionally TLS with a certificate issued by
a `trustme.CA` for `127.0.0.1` and `localhost`), records every request it receives, and can
be steered at run time: `force()` a status for some requests, add a `delay` before answering.
Subclasses add the provider routes (`routes()`) and shape error bodies (`error_body()`).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import trustme
from aiohttp import web
from multidict import CIMultiDict

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it (headers included, for assertions)."""

    method: str
    path: str
    raw_path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes
    peer: str = ""
    """`host:port` of the client connection (equal for requests on a reused connection)."""

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        return self.headers.get(name)


@dataclass
class ForcedResponse:
    """A status the fake answers with instead of handling the request.

    - `status`: HTTP status to return.
    - `path`: only requests whose path starts with this (None: every request).
    - `times`: how many requests it applies to (None: until cleared).
    - `body`: JSON body, or a function of the `RecordedRequest` returning it (to echo what
      the client sent); None: the provider-shaped error body for `status`.
    - `headers`: extra response headers (e.g. `Retry-After`).
    """

    status: int
    path: str | None = None
    times: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeEndpoint:
    """Base of the fake provider servers; use as `async with Fake(...) as fake:`.

    - `tls`: a `trustme.CA` to serve HTTPS with a certificate it issues (None: plain HTTP).
    - `host`: the address to bind (keep 127.0.0.1).
    """

    name = "fake"
    """Short name used in error messages."""

    def __init__(self, *, tls: trustme.CA | None = None, host: str = "127.0.0.1") -> None:
        self.tls = tls
        self.host = host
        self.port = 0
        self.requests: list[RecordedRequest] = []
        """Every request received, oldest first."""
        self.forced: list[ForcedResponse] = []
        """Pending forced responses (see `force`)."""
        self.delay = 0.0
        """Seconds to wait before answering each request (cut short when the fake stops)."""
        self.server_names: tuple[str, ...] = ("127.0.0.1", "localhost")
        """Names in the TLS server certificate (set before `start()`)."""
        self.gate: asyncio.Event | None = None
        """When set to an unset Event, requests wait for it (or for the fake to stop)."""
        self.in_flight = 0
        """Requests being handled right now."""
        self.max_in_flight = 0
        """The most requests handled at once since the last `clear()`."""
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    # -- configuration --------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        """`https` when serving TLS, else `http`."""
        return "https" if self.tls is not None else "http"

    @property
    def url(self) -> str:
        """`scheme://127.0.0.1:port` (no trailing slash)."""
        if not self.port:
            raise RuntimeError(f"{self.name} fake is not started")
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def ca_pem(self) -> bytes | None:
        """PEM of the CA that signed the server certificate (None for plain HTTP)."""
        return self.tls.cert_pem.bytes() if self.tls is not None else None

    def force(
        self,
        status: int,
        *,
        path: str | None = None,
        times: int | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> ForcedResponse:
        """Answer matching requests with `status` (see `ForcedResponse`)."""
        forced = ForcedResponse(status, path, times, body, dict(headers or {}))
        self.forced.append(forced)
        return forced

    def clear(self) -> None:
        """Drop forced responses and the delay, and forget recorded requests."""
        self.forced.clear()
        self.delay = 0.0
        self.gate = None
        self.requests.clear()
        self.max_in_flight = 0

    def requests_to(self, path_prefix: str) -> list[RecordedRequest]:
        """Recorded requests whose path starts with `path_prefix`."""
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    # -- to override ----------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """The provider's routes."""
        return []

    def error_body(self, status: int, message: str) -> Any:
        """The provider-shaped JSON error body for `status`."""
        return {"error": {"code": status, "message": message}}

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        """A provider-shaped JSON error response."""
        return web.json_response(self.error_body(status, message), status=status, headers=headers)

    # -- lifecycle ------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                raw_path=request.rel_url.raw_path,
                query=dict(request.query),
                headers=CIMultiDict(request.headers),
                body=body,
                peer=_peer(request),
            )
        )
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self._hold()
            return await self._answer(request, handler)
        finally:
            self.in_flight -= 1

    async def _hold(self) -> None:
        if self.gate is None and self.delay <= 0:
            return
        stopping = asyncio.ensure_future(self._stopping.wait())
        waits: list[asyncio.Future[Any]] = [stopping]
        try:
            if self.gate is not None:
                waits.append(asyncio.ensure_future(self.gate.wait()))
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if self.delay > 0 and not self._stopping.is_set():
                await asyncio.wait([stopping], timeout=self.delay)
        finally:
            for wait in waits:
                wait.cancel()

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        for forced in list(self.forced):
            if forced.path is not None and not request.path.startswith(forced.path):
                continue
            if forced.times is not None:
                forced.times -= 1
                if forced.times <= 0:
                    self.forced.remove(forced)
            body_obj = forced.body
            if callable(body_obj):
                body_obj = body_obj(self.requests[-1])
            if body_obj is None:
                body_obj = self.error_body(forced.status, f"forced status {forced.status}")
            return web.json_response(body_obj, status=forced.status, headers=forced.headers)
        return await handler(request)

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        cert = self.tls.issue_cert(*self.server_names)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        return ctx

    async def start(self) -> None:
        """Bind and serve."""
        app = web.Application(middlewares=[self._middleware])
        app.add_routes(self.routes())
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True
        )
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        site = web.SockSite(runner, sock, ssl_context=self._ssl_context())
        await site.start()
        self.port = int(sock.getsockname()[1])
        self._stopping.clear()
        self._runner = runner

    async def stop(self) -> None:
        """Stop serving (pending delayed requests are released first)."""
        self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _peer(request: web.Request) -> str:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer` header, or None."""
    value = request.headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def random_token(prefix: str = "", length: int = 32) -> str:
    """A random URL-safe token with `prefix` (fake API keys, access tokens)."""
    return prefix + secrets.token_urlsafe(length)[:length]


class KeySet:
    """The API keys a fake accepts: add, revoke, check."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.valid: set[str] = set()
        self.revoked: set[str] = set()

    def new(self) -> str:
        """Create, accept and return a fresh key."""
        key = random_token(self.prefix)
        self.valid.add(key)
        return key

    def add(self, key: str) -> None:
        """Accept `key`."""
        self.valid.add(key)
        self.revoked.discard(key)

    def revoke(self, key: str) -> None:
        """Stop accepting `key`."""
        self.valid.discard(key)
        self.revoked.add(key)

    def __contains__(self, key: object) -> bool:
        return key in self.valid
