"""The transport of a `KubeClient`: pooled aiohttp sessions, TLS and the bearer token.

As client-go's `rest/transport`: where requests go and with which credentials, nothing of
what they mean.

- Three connection pools, so that nothing waits behind what it must not: watches have a pool
  of their own (each open watch holds one connection for minutes: with three informers per
  watched namespace they would otherwise take the pool that writes and GETs use); Leases
  (leader election) have a small pool of their own, so a renewal never waits for a
  connection behind status writes, Secret GETs or lists; everything else shares the main
  pool (`ClientOptions.pool_limit`).
- The bearer token comes from the configuration's token source; `invalidate_token` makes it
  re-read after a 401.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from dataclasses import dataclass, field

import aiohttp

from flokoa_controller.kube.config import ClusterConfig
from flokoa_controller.kube.errors import ConnectionFailed
from flokoa_controller.kube.retry import RetryPolicy
from flokoa_controller.kube.tokens import TokenError

__all__ = [
    "DEFAULT_FIELD_MANAGER",
    "LEASE_PATH_PREFIX",
    "ClientOptions",
    "Transport",
    "enable_tcp_keepalive",
    "transport_error",
]

DEFAULT_FIELD_MANAGER = "flokoa-controller"
"""`fieldManager` of every write unless another is given."""

LEASE_PATH_PREFIX = "/apis/coordination.k8s.io/"
"""Requests under this path (Leases: leader election) use the Lease pool."""


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


def _opened(session: aiohttp.ClientSession | None) -> aiohttp.ClientSession:
    if session is None or session.closed:
        raise RuntimeError("KubeClient is not open: use `async with KubeClient(...)`")
    return session


def transport_error(exc: BaseException, verb: str, path: str) -> ConnectionFailed:
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


def enable_tcp_keepalive(resp: aiohttp.ClientResponse, seconds: float) -> None:
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


class Transport:
    """The pooled sessions of one client and the credentials its requests carry."""

    def __init__(self, config: ClusterConfig, options: ClientOptions) -> None:
        self.config = config
        """Where and who: the cluster configuration."""
        self.options = options
        """Timeouts and pool sizes."""
        self.base = config.server.rstrip("/")
        """The server URL without a trailing slash: request paths are appended to it."""
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None
        self._lease_session: aiohttp.ClientSession | None = None

    def open(self) -> None:
        """Create the pooled sessions (needs a running event loop); idempotent."""
        if self._session is not None and not self._session.closed:
            return
        opts = self.options
        ssl_context = self.config.ssl_context()
        self._session = self._new_session(opts.pool_limit, ssl_context)
        self._watch_session = self._new_session(opts.watch_pool_limit, ssl_context)
        self._lease_session = self._new_session(opts.lease_pool_limit, ssl_context)

    def _new_session(self, limit: int, ssl_context: ssl.SSLContext | None) -> aiohttp.ClientSession:
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

    def session_for(self, path: str) -> aiohttp.ClientSession:
        """The session a non-watch request on `path` uses (Leases: the Lease pool)."""
        if path.startswith(LEASE_PATH_PREFIX):
            return self.lease_session
        return self.session

    @property
    def has_token_source(self) -> bool:
        """Whether requests carry a bearer token that can be re-read."""
        return self.config.token_source is not None

    async def token(self, verb: str, path: str) -> str | None:
        """The current bearer token (None without a token source); an unreadable token
        raises `ConnectionFailed(reason="TokenUnavailable")` (the request was not sent)."""
        source = self.config.token_source
        if source is None:
            return None
        try:
            return await source.token()
        except TokenError as exc:
            raise ConnectionFailed(
                "TokenUnavailable", str(exc), verb=verb, path=path, request_sent=False
            ) from None

    def invalidate_token(self) -> None:
        """Make the token source re-read its token (after a 401)."""
        if self.config.token_source is not None:
            self.config.token_source.invalidate()

    @staticmethod
    def headers(token: str | None, content_type: str | None) -> dict[str, str]:
        """The per-request headers: `Authorization` and `Content-Type` when given."""
        headers: dict[str, str] = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers
