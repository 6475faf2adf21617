"""Fixtures of the kube client tests: tiny HTTP(S) servers on 127.0.0.1 for transport-level
behaviour that envtest does not model (exact Retry-After, cut watch lines, 401 rotation)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import trustme
from aiohttp import web

from flokoa_controller.kube.client import ClientOptions, KubeClient
from flokoa_controller.kube.config import ClusterConfig
from flokoa_controller.kube.retry import RetryPolicy
from flokoa_controller.kube.tokens import StaticTokenSource

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Served:
    """A running test server."""

    url: str
    host: str
    requests: list[web.Request] = field(default_factory=list)


@dataclass
class Sleeps:
    """A RetryPolicy sleep that records the waits instead of waiting."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


ServeFn = Callable[..., Awaitable[Served]]


@pytest.fixture
async def serve() -> AsyncIterator[ServeFn]:
    """`await serve(handler, ssl_context=None)` starts a server routing every path to
    `handler`; every request is recorded in `Served.requests`. Stopped at teardown."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler, *, ssl_context: ssl.SSLContext | None = None) -> Served:
        served: Served

        async def record(request: web.Request) -> web.StreamResponse:
            served.requests.append(request)
            return await handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        runners.append(runner)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        site = web.SockSite(runner, sock, ssl_context=ssl_context)
        await site.start()
        scheme = "https" if ssl_context is not None else "http"
        served = Served(url=f"{scheme}://127.0.0.1:{port}", host=f"127.0.0.1:{port}")
        return served

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
def sleeps() -> Sleeps:
    """Recorded retry waits."""
    return Sleeps()


@pytest.fixture
def make_client(sleeps: Sleeps) -> Callable[..., KubeClient]:
    """`make_client(url, token="t", **options)`: a client with recorded (instant) retries."""

    def make(
        url: str,
        token: str | None = "t0ken",
        *,
        config: ClusterConfig | None = None,
        **options: object,
    ) -> KubeClient:
        cfg = config or ClusterConfig(
            server=url, token_source=StaticTokenSource(token) if token else None
        )
        retry = options.pop("retry", None) or RetryPolicy(sleep=sleeps)
        return KubeClient(cfg, ClientOptions(retry=retry, **options))  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A throwaway certificate authority."""
    return trustme.CA()


@pytest.fixture
def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (a port bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
