"""Reflector paths envtest alone does not take: servers without the streaming list (through a
small rewriting proxy that plays an older kube-apiserver, or envtest's ``refuse_streaming_list``
fault that plays a v1.32 server over etcd 3.4), 429 with Retry-After, server errors and their
backoff, and an expired continue token in the middle of a paginated list."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from flokoa_envtest.server import APIServer
from prometheus_client import REGISTRY

from flokoa_controller.kube.client import ClientOptions, KubeClient
from flokoa_controller.kube.config import ClusterConfig, load_kubeconfig
from flokoa_controller.kube.resources import CONFIGMAPS
from flokoa_controller.kube.retry import RetryPolicy
from flokoa_controller.runtime.backoff import Backoff
from flokoa_controller.runtime.clock import FakeClock
from flokoa_controller.runtime.informer import Informer
from flokoa_controller.runtime.reflector import Reflector

pytestmark = pytest.mark.timeout(60)

Rewrite = Callable[[web.Request], web.Response | dict[str, str] | None]


@pytest.fixture
async def api() -> AsyncIterator[APIServer]:
    async with APIServer(bookmark_interval=0.1) as server:
        for i in range(5):
            server.create_object(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"c{i}", "namespace": "default"},
                }
            )
        yield server


@contextlib.asynccontextmanager
async def proxy(upstream: str, rewrite: Rewrite) -> AsyncIterator[str]:
    """An HTTP proxy to ``upstream``; ``rewrite(request)`` answers itself (a Response) or
    returns the query to forward (None: unchanged)."""
    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.StreamResponse:
        decision = rewrite(request)
        if isinstance(decision, web.Response):
            return decision
        query = decision if decision is not None else dict(request.query)
        body = await request.read()
        async with session.request(
            request.method,
            upstream + request.path,
            params=query,
            data=body or None,
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            timeout=aiohttp.ClientTimeout(total=None),
        ) as upstream_resp:
            resp = web.StreamResponse(status=upstream_resp.status)
            resp.content_type = upstream_resp.content_type
            await resp.prepare(request)
            async for chunk in upstream_resp.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
        await session.close()


NO_RETRIES = ClientOptions(retry=RetryPolicy(max_attempts=1))
"""The client's own retries off: the reflector's backoff is under test."""


def client_for(api: APIServer, server: str | None = None) -> KubeClient:
    config = load_kubeconfig(api.kubeconfig_path)
    if server is not None:
        config = ClusterConfig(**{**vars(config), "server": server})
    return KubeClient(config, NO_RETRIES)


async def sync_with(client: KubeClient, **kwargs: Any) -> Informer:
    informer = Informer(client, CONFIGMAPS, namespaces=["default"], **kwargs)
    task = asyncio.create_task(informer.run())
    try:
        assert await informer.wait_for_sync(10)
        await asyncio.sleep(0)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return informer


def strip_streaming(request: web.Request) -> dict[str, str] | None:
    """An older server: ignores sendInitialEvents (a watch without resourceVersion then
    starts with synthetic ADDED events and goes on as a plain watch, bookmarks included)."""
    query = dict(request.query)
    if query.pop("sendInitialEvents", None) is not None:
        query.pop("resourceVersionMatch", None)
    return query


def refuse_streaming(request: web.Request) -> web.Response | None:
    """A server with the WatchList feature off: 422 for sendInitialEvents."""
    if "sendInitialEvents" in request.query:
        return web.json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": "Invalid",
                "code": 422,
                "message": "sendInitialEvents is forbidden for watch unless the WatchList "
                "feature gate is enabled",
            },
            status=422,
        )
    return None


@pytest.mark.parametrize(
    "rewrite", [strip_streaming, refuse_streaming], ids=["ignores-it", "refuses-it"]
)
async def test_streaming_list_falls_back_to_list_and_watch(
    api: APIServer, rewrite: Rewrite
) -> None:
    async with proxy(api.url, rewrite) as url, client_for(api, url) as client:
        informer = await sync_with(client)
    stats = informer.stats
    assert stats.streaming_fallbacks == 1
    assert stats.lists == 1
    assert stats.streaming_lists == 0
    assert sorted(informer.store.keys()) == [f"default/c{i}" for i in range(5)]
    assert not informer.reflectors[0].streaming_list  # remembered for the next relists


def end_streaming_early(request: web.Request) -> web.Response | None:
    """A proxy that closes streaming lists before their initial state (a 200, no events)."""
    if "sendInitialEvents" in request.query:
        return web.Response(status=200, content_type="application/json", body=b"")
    return None


def fallbacks_metric() -> float:
    value = REGISTRY.get_sample_value(
        "flokoa_reflector_streaming_list_fallbacks_total", {"resource": "configmaps/v1"}
    )
    return value or 0.0


async def test_streaming_list_ending_early_falls_back_at_once(api: APIServer) -> None:
    async with proxy(api.url, end_streaming_early) as url, client_for(api, url) as client:
        informer = await sync_with(client)
    assert (informer.stats.streaming_fallbacks, informer.stats.errors) == (1, 0)
    assert (informer.stats.lists, informer.stats.streaming_lists) == (1, 0)
    assert sorted(informer.store.keys()) == [f"default/c{i}" for i in range(5)]


async def test_streaming_list_500_falls_back_and_is_remembered(
    api: APIServer, caplog: pytest.LogCaptureFixture
) -> None:
    """kube-apiserver v1.32 over etcd 3.4 answers the streaming list with a 500: the
    reflector lists at once, tries no streaming list on relists for a while, counts each
    fallback and logs the first one only at INFO."""
    api.faults.refuse_streaming_list = True
    clock = FakeClock(1000.0)
    sleeps = Sleeps()
    before = fallbacks_metric()
    api.audit.clear()
    caplog.set_level("DEBUG", logger="flokoa_controller.runtime.reflector")
    async with client_for(api) as client:
        informer = Informer(client, CONFIGMAPS, namespaces=["default"])
        reflector = Reflector(
            client,
            CONFIGMAPS,
            informer,
            namespace="default",
            sleep=sleeps,
            clock=clock,
            streaming_retry_interval=600.0,
        )
        informer.reflectors = [reflector]
        task = asyncio.create_task(reflector.run())
        try:
            assert await informer.wait_for_sync(10)
            assert sleeps.delays == []  # no backoff: the list followed at once
            assert not reflector.streaming_list
            # a relist within the interval (410 on the resumed watch) does not try again
            api.faults.expire_watch_resumes = 1
            api.faults.drop_watches()
            await poll_stats(lambda: reflector.stats.lists == 2)
            streaming = api.audit.filter(verb="watch", resource="configmaps")
            # kube answers 200 and ends the stream with an ERROR event (a 500 Status)
            assert [e.code for e in streaming if "sendInitialEvents" in e.query] == [200]
            # after the interval the streaming list is tried again (still refused: a fallback)
            clock.now += 601.0
            assert reflector.streaming_list
            api.faults.expire_watch_resumes = 1
            api.faults.drop_watches()
            await poll_stats(lambda: reflector.stats.lists == 3)
            streaming = api.audit.filter(verb="watch", resource="configmaps")
            assert [e.code for e in streaming if "sendInitialEvents" in e.query] == [200, 200]
            # once the server serves it, a relist past the interval streams again
            api.faults.refuse_streaming_list = False
            clock.now += 601.0
            api.faults.expire_watch_resumes = 1
            api.faults.drop_watches()
            await poll_stats(lambda: reflector.stats.streaming_lists == 1)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert reflector.streaming_list
    assert reflector.stats.streaming_fallbacks == 2
    assert fallbacks_metric() == before + 2
    fallback_logs = [r for r in caplog.records if "streaming list failed" in r.getMessage()]
    assert [r.levelname for r in fallback_logs] == ["INFO", "DEBUG"]
    assert "RequestWatchProgress" in fallback_logs[0].getMessage()


async def poll_stats(done: Callable[[], bool], within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not done():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_streaming_list_used_when_supported(api: APIServer) -> None:
    async with client_for(api) as client:
        api.audit.clear()
        informer = await sync_with(client)
    assert (informer.stats.streaming_lists, informer.stats.lists) == (1, 0)
    (watch,) = api.audit.filter(verb="watch", resource="configmaps")
    assert watch.query["sendInitialEvents"] == "true"
    assert watch.query["resourceVersionMatch"] == "NotOlderThan"
    assert watch.query["allowWatchBookmarks"] == "true"
    assert 300 <= int(watch.query["timeoutSeconds"]) <= 600


class Sleeps:
    """Records the reflector's backoff waits (and yields to the loop instead of waiting)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


async def run_reflector(client: KubeClient, sleeps: Sleeps, **kwargs: Any) -> Informer:
    informer = Informer(client, CONFIGMAPS, namespaces=["default"])
    reflector = Reflector(client, CONFIGMAPS, informer, namespace="default", sleep=sleeps, **kwargs)
    task = asyncio.create_task(reflector.run())
    try:
        assert await informer.wait_for_sync(10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    informer.reflectors = [reflector]
    return informer


async def test_429_waits_at_least_retry_after(api: APIServer) -> None:
    api.faults.error_verbs = frozenset({"list", "watch"})
    api.faults.fail_next(1, code=429, retry_after=7)
    sleeps = Sleeps()
    async with client_for(api) as client:
        informer = await run_reflector(client, sleeps)
    assert informer.stats.errors == 1
    assert sleeps.delays == [pytest.approx(7.0)]


async def test_server_errors_back_off_with_growing_ceilings(api: APIServer) -> None:
    api.faults.error_verbs = frozenset({"list", "watch"})
    api.faults.fail_next(6, code=500)
    sleeps = Sleeps()
    async with client_for(api) as client:
        informer = await run_reflector(
            client, sleeps, streaming_list=False, backoff=Backoff(jitter=False)
        )
    assert informer.stats.errors == 6
    assert sleeps.delays == pytest.approx([0.8, 1.6, 3.2, 6.4, 12.8, 25.6])


async def test_expired_continue_token_restarts_as_one_full_list(api: APIServer) -> None:
    class CompactingClient(KubeClient):
        """The real client; the server forgets its history right after the first page."""

        pages = 0

        async def list(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            page = await super().list(*args, **kwargs)
            self.pages += 1
            if self.pages == 1:
                api.create_object(
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "during", "namespace": "default"},
                    }
                )
                api.compact()
            return page

    sleeps = Sleeps()
    api.audit.clear()
    async with CompactingClient(load_kubeconfig(api.kubeconfig_path), NO_RETRIES) as client:
        informer = await run_reflector(client, sleeps, streaming_list=False, page_size=2)
    lists = list(api.audit.filter(verb="list", resource="configmaps"))
    assert [e.code for e in lists] == [200, 410, 200]
    assert "limit" not in lists[-1].query
    assert sorted(informer.store.keys()) == sorted(
        [f"default/c{i}" for i in range(5)] + ["default/during"]
    )
    assert sleeps.delays == []


class _ClosingServer:
    """A ListerWatcher whose every watch ends at once, empty (a proxy closing watches)."""

    def __init__(self, stop_after: int) -> None:
        self.watches = 0
        self.stop_after = stop_after

    async def list(self, rt: Any, namespace: str | None = None, **kw: Any) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": "7"}, "items": []}

    async def watch(self, rt: Any, namespace: str | None = None, **kw: Any) -> AsyncIterator[Any]:
        self.watches += 1
        if self.watches > self.stop_after:
            raise asyncio.CancelledError  # end the run: enough reconnects observed
        return
        yield  # an async generator that yields nothing


class _Sink:
    def replace(self, namespace: str | None, objs: list[dict[str, Any]], rv: str) -> None:
        pass

    def apply(self, event_type: str, obj: dict[str, Any]) -> None:
        pass


async def test_watches_closed_at_once_are_resumed_after_a_backoff() -> None:
    """client-go's "very short watch": an empty watch ending at once is not re-opened in a
    tight loop but after a growing backoff delay (and without relisting)."""
    server = _ClosingServer(stop_after=6)
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    reflector = Reflector(
        server,  # type: ignore[arg-type]
        CONFIGMAPS,
        _Sink(),
        streaming_list=False,
        backoff=Backoff(jitter=False),
        sleep=sleep,
    )
    with pytest.raises(asyncio.CancelledError):
        await reflector.run()
    assert reflector.stats.lists == 1
    assert reflector.stats.short_watches == 6
    assert reflector.stats.errors == 0
    assert delays == [0.8, 1.6, 3.2, 6.4, 12.8, 25.6]
