"""Manager against envtest: probes and readiness, metrics, controllers with a draining
shutdown, cache-sync timeout, leader election (standby caches, release on stop, lost lease)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from flokoa_envtest.server import APIServer

from flokoa_controller.kube.client import KubeClient
from flokoa_controller.kube.config import load_kubeconfig
from flokoa_controller.kube.resources import CONFIGMAPS
from flokoa_controller.runtime.controller import Request, Result
from flokoa_controller.runtime.manager import CacheSyncTimeout, LeaderElectionLost, Manager
from flokoa_controller.runtime.options import ManagerOptions

pytestmark = pytest.mark.timeout(60)

LEASE = "flokoa-test-lease"


@pytest.fixture
async def api() -> AsyncIterator[APIServer]:
    async with APIServer(bookmark_interval=0.2) as server:
        yield server


@pytest.fixture
async def client(api: APIServer) -> AsyncIterator[KubeClient]:
    async with KubeClient(load_kubeconfig(api.kubeconfig_path)) as kube:
        yield kube


def options(**overrides: Any) -> ManagerOptions:
    values: dict[str, Any] = {
        "health_probe_bind_address": "127.0.0.1:0",
        "metrics_bind_address": "127.0.0.1:0",
        "install_signal_handlers": False,
        "graceful_shutdown_timeout": 10.0,
        "leader_election_id": LEASE,
        "leader_election_namespace": "default",
        "lease_duration": 3.0,
        "renew_deadline": 2.0,
        "retry_period": 0.5,
    }
    values.update(overrides)
    return ManagerOptions(**values)


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.text()


@contextlib.asynccontextmanager
async def started(manager: Manager) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(manager.run())
    try:
        await eventually(lambda: manager.server.url("health") is not None or task.done())
        yield task
    finally:
        if not task.done():
            manager.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 20)


def lease_holder(api: APIServer) -> str:
    lease = api.get_object("coordination.k8s.io/v1", "Lease", LEASE, "default")
    return str(lease["spec"].get("holderIdentity") or "")


async def test_probes_readiness_after_sync_and_metrics(api: APIServer, client: KubeClient) -> None:
    api.faults.error_verbs = frozenset({"list", "watch"})
    api.faults.error_rate = 1.0  # the cache cannot fill until the faults are reset
    manager = Manager(client, options())
    manager.informer(CONFIGMAPS)
    async with started(manager) as task:
        health = manager.server.url("health")
        metrics = manager.server.url("metrics")
        assert (await get(f"{health}/healthz")) == (200, "ok")
        status, body = await get(f"{health}/readyz")
        assert status == 500
        assert "informer-sync failed: caches not synced: configmaps/v1" in body
        assert not manager.ready
        api.faults.reset()
        await eventually(lambda: manager.ready)
        assert (await get(f"{health}/readyz")) == (200, "ok")
        status, text = await get(f"{metrics}/metrics")
        assert status == 200
        assert "rest_client_requests_total{" in text
        manager.stop()
        await asyncio.wait_for(task, 15)
    assert task.result() is None
    assert manager.server.url("health") is None


class Blocking:
    """A reconciler whose reconciles wait for ``release``; records starts and finishes."""

    def __init__(self) -> None:
        self.started: list[Request] = []
        self.finished: list[Request] = []
        self.release = asyncio.Event()

    async def reconcile(self, request: Request) -> Result:
        self.started.append(request)
        await self.release.wait()
        self.finished.append(request)
        return Result()


async def test_graceful_stop_drains_in_flight_reconciles(
    api: APIServer, client: KubeClient
) -> None:
    reconciler = Blocking()
    manager = Manager(client, options())
    controller = manager.new_controller("blocking", reconciler)
    assert controller.max_concurrent_reconciles == 4
    controller.watch(manager.informer(CONFIGMAPS))
    async with started(manager) as task:
        api.create_object(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "x", "namespace": "default"},
            }
        )
        await eventually(lambda: Request("default", "x") in reconciler.started)
        manager.stop()
        for _ in range(20):
            await asyncio.sleep(0)
        assert not task.done()  # waiting for the in-flight reconcile
        reconciler.release.set()
        await asyncio.wait_for(task, 15)
    assert reconciler.finished == [Request("default", "x")]


async def test_cache_sync_timeout_is_fatal(api: APIServer, client: KubeClient) -> None:
    api.faults.error_verbs = frozenset({"list", "watch"})
    api.faults.error_rate = 1.0
    manager = Manager(client, options(cache_sync_timeout=0.3))
    manager.informer(CONFIGMAPS)
    with pytest.raises(CacheSyncTimeout, match="configmaps"):
        await asyncio.wait_for(manager.run(), 15)
    assert manager.server.url("health") is None


def leader_probe(flag: dict[str, bool], name: str) -> Callable[[], Any]:
    async def lead() -> None:
        flag[name] = True
        try:
            await asyncio.Event().wait()
        finally:
            flag[name] = False

    return lead


async def test_standby_keeps_a_warm_cache_and_takes_over_after_a_graceful_stop(
    api: APIServer, client: KubeClient
) -> None:
    leading: dict[str, bool] = {}
    first = Manager(client, options(leader_elect=True), identity="first")
    second = Manager(client, options(leader_elect=True), identity="second")
    for name, manager in (("first", first), ("second", second)):
        manager.informer(CONFIGMAPS)
        manager.add_runnable(leader_probe(leading, name), needs_leader=True)
    async with started(first) as first_task:
        await eventually(lambda: leading.get("first", False))
        assert lease_holder(api) == "first"
        async with started(second):
            await eventually(lambda: second.ready)
            assert not second.is_leader
            assert not leading.get("second")  # a standby: caches, no controllers
            status, _ = await get(f"{second.server.url('health')}/readyz")
            assert status == 200
            first.stop()
            await asyncio.wait_for(first_task, 15)
            assert first_task.result() is None
            assert leading["first"] is False
            await eventually(lambda: leading.get("second", False), within=5)
            assert lease_holder(api) == "second"
    assert lease_holder(api) == ""  # released by the graceful stop


async def test_losing_the_lease_stops_everything_and_raises(
    api: APIServer, client: KubeClient
) -> None:
    leading: dict[str, bool] = {}
    manager = Manager(client, options(leader_elect=True), identity="me")
    manager.informer(CONFIGMAPS)
    manager.add_runnable(leader_probe(leading, "me"), needs_leader=True)
    task = asyncio.create_task(manager.run())
    try:
        await eventually(lambda: leading.get("me", False))
        api.patch_object(
            "coordination.k8s.io/v1",
            "Lease",
            LEASE,
            {"spec": {"holderIdentity": "thief", "leaseDurationSeconds": 60}},
            namespace="default",
        )
        with pytest.raises(LeaderElectionLost):
            await asyncio.wait_for(task, 15)
    finally:
        if not task.done():
            task.cancel()
    assert leading["me"] is False
    assert manager.server.url("health") is None
    assert lease_holder(api) == "thief"
