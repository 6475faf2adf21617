"""Informer against envtest: sync, events, scopes, tombstones, resync, zombie watches, handlers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from flokoa_envtest.server import APIServer

from flokoa_controller.kube.client import KubeClient
from flokoa_controller.kube.config import load_kubeconfig
from flokoa_controller.kube.resources import CONFIGMAPS
from flokoa_controller.runtime.informer import DeletedFinalStateUnknown, EventHandler, Informer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def api() -> AsyncIterator[APIServer]:
    async with APIServer(bookmark_interval=0.1) as server:
        yield server


@pytest.fixture
async def client(api: APIServer) -> AsyncIterator[KubeClient]:
    async with KubeClient(load_kubeconfig(api.kubeconfig_path)) as kube:
        yield kube


def ensure_namespace(api: APIServer, name: str) -> None:
    with contextlib.suppress(Exception):
        api.create_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def make_cm(api: APIServer, namespace: str, name: str, **data: str) -> dict[str, Any]:
    return api.create_object(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"owner": data.get("owner", "")},
            },
            "data": data,
        }
    )


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    """Poll ``check`` on the loop until it holds (fails the test after ``within`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(informer: Informer) -> AsyncIterator[Informer]:
    task = asyncio.create_task(informer.run())
    try:
        assert await informer.wait_for_sync(10)
        yield informer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Recorder:
    """Records handler calls; ``view`` is what a handler-driven consumer believes exists."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.view: dict[str, str] = {}

    @staticmethod
    def _key(obj: dict[str, Any]) -> str:
        meta = obj["metadata"]
        return f"{meta.get('namespace')}/{meta['name']}"

    def on_add(self, obj: dict[str, Any], initial: bool) -> None:
        self.calls.append(("add", self._key(obj), initial))
        self.view[self._key(obj)] = obj["metadata"]["resourceVersion"]

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.calls.append(("update", self._key(new), old["metadata"]["resourceVersion"]))
        self.view[self._key(new)] = new["metadata"]["resourceVersion"]

    def on_delete(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            self.calls.append(("tombstone", obj.key, obj.obj["metadata"]["resourceVersion"]))
            self.view.pop(obj.key, None)
        else:
            self.calls.append(("delete", self._key(obj), obj["metadata"]["resourceVersion"]))
            self.view.pop(self._key(obj), None)

    def handler(self) -> EventHandler:
        return EventHandler(self.on_add, self.on_update, self.on_delete)


def by_owner(obj: dict[str, Any]) -> list[str]:
    owner = obj["metadata"].get("labels", {}).get("owner")
    return [owner] if owner else []


def server_state(api: APIServer, namespaces: tuple[str, ...] | None = None) -> dict[str, str]:
    return {
        f"{o['metadata']['namespace']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
        for o in api.list_objects("v1", "ConfigMap")
        if namespaces is None or o["metadata"]["namespace"] in namespaces
    }


def cache_state(informer: Informer) -> dict[str, str]:
    return {key: obj["metadata"]["resourceVersion"] for key, obj in informer.store.items()}


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming-list", "list-watch"])
async def test_sync_then_events_with_indexes(
    api: APIServer, client: KubeClient, streaming: bool
) -> None:
    for ns in ("one", "two"):
        ensure_namespace(api, ns)
        for i in range(7):
            make_cm(api, ns, f"cm{i}", owner=f"p{i % 2}")
    recorder = Recorder()
    informer = Informer(
        client, CONFIGMAPS, indexers={"owner": by_owner}, streaming_list=streaming, page_size=3
    )
    informer.add_handler(recorder.handler())
    api.audit.clear()
    async with running(informer):
        assert cache_state(informer) == server_state(api)
        assert all(initial for kind, _, initial in recorder.calls if kind == "add")
        assert {key for _, key, _ in recorder.calls} == set(server_state(api))
        assert informer.store.index_keys("owner", "p0") == {
            f"{ns}/cm{i}" for ns in ("one", "two") for i in (0, 2, 4, 6)
        }
        stats = informer.stats
        if streaming:
            assert (stats.streaming_lists, stats.lists) == (1, 0)
        else:
            assert (stats.streaming_lists, stats.lists) == (0, 1)
            assert stats.pages >= 5  # 14+ objects in pages of 3
        recorder.calls.clear()

        make_cm(api, "one", "fresh", owner="p9")
        api.patch_object(
            "v1", "ConfigMap", "cm1", {"metadata": {"labels": {"owner": "p0"}}}, namespace="two"
        )
        api.delete_object("v1", "ConfigMap", "cm0", namespace="one")
        await eventually(lambda: len(recorder.calls) >= 3)
        assert [(kind, key) for kind, key, _ in recorder.calls] == [
            ("add", "one/fresh"),
            ("update", "two/cm1"),
            ("delete", "one/cm0"),
        ]
        assert recorder.calls[0][2] is False  # not in the initial list
        assert informer.store.index_keys("owner", "p9") == {"one/fresh"}
        assert "two/cm1" in informer.store.index_keys("owner", "p0")
        assert "one/cm0" not in informer.store.index_keys("owner", "p0")
        assert cache_state(informer) == server_state(api)


async def test_namespace_scope_runs_one_watch_per_namespace(
    api: APIServer, client: KubeClient
) -> None:
    for ns in ("a", "b", "c"):
        ensure_namespace(api, ns)
        make_cm(api, ns, "x")
    informer = Informer(client, CONFIGMAPS, namespaces=["b", "a", "a"])
    api.audit.clear()
    async with running(informer):
        assert informer.namespaces == ["a", "b"]
        assert set(informer.store.keys()) == set(server_state(api, ("a", "b")))
        make_cm(api, "c", "y")
        make_cm(api, "b", "y")
        await eventually(lambda: "b/y" in informer.store)
        assert "c/y" not in informer.store
    watched = {e.namespace for e in api.audit.filter(verb="watch", resource="configmaps")}
    assert watched == {"a", "b"}


async def test_missed_delete_arrives_as_a_tombstone_after_relist(
    api: APIServer, client: KubeClient
) -> None:
    ensure_namespace(api, "t")
    for name in ("keep", "gone", "changed"):
        make_cm(api, "t", name)
    recorder = Recorder()
    informer = Informer(client, CONFIGMAPS, namespaces=["t"], streaming_list=False)
    informer.add_handler(recorder.handler())
    async with running(informer):
        recorder.calls.clear()
        # Change things and cut the watch before the server can send anything (no await in
        # between), and answer the resume with 410: only a relist can reveal the delete.
        api.delete_object("v1", "ConfigMap", "gone", namespace="t")
        api.patch_object("v1", "ConfigMap", "changed", {"data": {"v": "2"}}, namespace="t")
        api.faults.expire_watch_resumes = 1
        api.drop_watches()
        await eventually(lambda: cache_state(informer) == server_state(api, ("t",)))
        kinds = {(kind, key) for kind, key, _ in recorder.calls}
        assert ("tombstone", "t/gone") in kinds
        assert ("update", "t/changed") in kinds
        assert not any(key == "t/keep" for _, key, _ in recorder.calls)  # same RV: no update
        assert informer.stats.gone == 1
        assert informer.stats.lists == 2
        assert recorder.view == server_state(api, ("t",))


async def test_zombie_watch_is_restarted_after_the_inactivity_timeout(
    api: APIServer, client: KubeClient
) -> None:
    ensure_namespace(api, "z")
    informer = Informer(client, CONFIGMAPS, namespaces=["z"], inactivity_timeout=0.6)
    async with running(informer):
        api.faults.zombie_watches = True
        make_cm(api, "z", "late")  # the open watch wakes up a zombie: it never sends this
        await eventually(lambda: informer.stats.inactivity_timeouts >= 1)
        assert "z/late" not in informer.store
        api.faults.zombie_watches = False  # the next watch is healthy and delivers it
        await eventually(lambda: "z/late" in informer.store)
        stats = informer.stats
        assert stats.inactivity_timeouts >= 1
        assert stats.gone == 0
        assert stats.lists + stats.streaming_lists == 1  # resumed, never relisted


async def test_watch_ending_normally_resumes_without_relisting(
    api: APIServer, client: KubeClient
) -> None:
    ensure_namespace(api, "r")
    informer = Informer(client, CONFIGMAPS, namespaces=["r"], streaming_list=False)
    async with running(informer):
        api.faults.watch_max_seconds = 0.15
        for i in range(5):
            make_cm(api, "r", f"c{i}")
            await asyncio.sleep(0.1)
        await eventually(lambda: informer.stats.watches >= 4)
        await eventually(lambda: cache_state(informer) == server_state(api, ("r",)))
        assert informer.stats.lists == 1
        assert informer.stats.errors == 0
    lists = [e for e in api.audit.filter(verb="list", resource="configmaps", namespace="r")]
    assert len(lists) == 1


async def test_handler_failures_are_contained_and_late_handlers_get_a_replay(
    api: APIServer, client: KubeClient, caplog: pytest.LogCaptureFixture
) -> None:
    ensure_namespace(api, "h")
    make_cm(api, "h", "a")

    def explode(obj: dict[str, Any], initial: bool) -> None:
        raise RuntimeError("handler bug")

    good = Recorder()
    informer = Informer(client, CONFIGMAPS, namespaces=["h"])
    informer.add_handler(EventHandler(on_add=explode))
    informer.add_handler(good.handler())
    async with running(informer):
        make_cm(api, "h", "b")
        await eventually(lambda: "h/b" in good.view)
        late = Recorder()
        informer.add_handler(late.handler())
        assert sorted(key for _, key, _ in late.calls) == ["h/a", "h/b"]
        assert all(initial for _, _, initial in late.calls)
    assert "event handler" in caplog.text
    assert "handler bug" in caplog.text


async def test_resync_replays_the_cache_without_listing(api: APIServer, client: KubeClient) -> None:
    ensure_namespace(api, "s")
    make_cm(api, "s", "a")
    updates: list[tuple[str, bool]] = []

    def on_update(old: dict[str, Any], new: dict[str, Any]) -> None:
        updates.append((new["metadata"]["name"], old is new))

    informer = Informer(client, CONFIGMAPS, namespaces=["s"], resync_period=0.05)
    informer.add_handler(EventHandler(on_update=on_update))
    api.audit.clear()
    async with running(informer):
        await eventually(lambda: len(updates) >= 3)
        assert set(updates) == {("a", True)}
    requests = list(api.audit.filter(resource="configmaps"))
    assert len(requests) == 1  # the one streaming list; resyncs never reach the server


async def test_chaos_converges(api: APIServer, client: KubeClient) -> None:
    """2,000 objects created, updated and deleted while watches are dropped, 410s injected, a
    watch turns zombie and the server is down for 3 s: the caches end identical to the server
    and handlers saw every final state and every deletion."""
    api.storage.history_limit = 400  # small watch window: resumes after gaps get 410s
    namespaces = ("c0", "c1", "c2", "c3")
    for ns in namespaces:
        ensure_namespace(api, ns)
    everything = Recorder()
    scoped = Recorder()
    informers = [
        Informer(client, CONFIGMAPS, inactivity_timeout=1.0),
        Informer(
            client,
            CONFIGMAPS,
            namespaces=["c1", "c2"],
            streaming_list=False,
            inactivity_timeout=1.0,
        ),
    ]
    informers[0].add_handler(everything.handler())
    informers[1].add_handler(scoped.handler())
    names = [(namespaces[i % 4], f"o{i}") for i in range(2000)]

    async def workload() -> None:
        for n, (ns, name) in enumerate(names):
            make_cm(api, ns, name, v="0")
            if n % 50 == 0:
                await asyncio.sleep(0.005)
        for round_ in range(3):
            for n, (ns, name) in enumerate(names[round_::3]):
                api.patch_object(
                    "v1", "ConfigMap", name, {"data": {"v": str(round_ + 1)}}, namespace=ns
                )
                if n % 50 == 0:
                    await asyncio.sleep(0.005)
        for n, (ns, name) in enumerate(names[::3]):
            api.delete_object("v1", "ConfigMap", name, namespace=ns)
            if n % 50 == 0:
                await asyncio.sleep(0.005)
        for ns, name in names[::9]:  # re-created under the same name
            make_cm(api, ns, name, v="again")
            await asyncio.sleep(0)

    async def chaos() -> None:
        for _ in range(3):
            await asyncio.sleep(0.25)
            api.drop_watches()
        api.faults.expire_watch_resumes = 3
        api.drop_watches()
        await asyncio.sleep(0.3)
        api.faults.zombie_watches = True  # open watches go silent, until restarted
        await eventually(lambda: sum(i.stats.inactivity_timeouts for i in informers) >= 1)
        api.faults.zombie_watches = False
        await api.faults.outage(3.0)

    tasks = [asyncio.create_task(inf.run()) for inf in informers]
    try:
        for inf in informers:
            assert await inf.wait_for_sync(10)
        await asyncio.gather(workload(), chaos())
        expected_all = server_state(api)
        expected_scoped = server_state(api, ("c1", "c2"))
        assert len(expected_all) > 1300
        await eventually(lambda: cache_state(informers[0]) == server_state(api), within=30)
        await eventually(
            lambda: cache_state(informers[1]) == server_state(api, ("c1", "c2")), within=30
        )
        assert server_state(api) == expected_all  # nothing moved meanwhile
        assert everything.view == expected_all
        assert scoped.view == expected_scoped
        deleted = {f"{ns}/{name}" for ns, name in names} - set(expected_all)
        assert deleted
        # Every deleted object the handlers had been told about was reported deleted (one
        # created and deleted within an outage was never seen, so there is nothing to report).
        seen_added = {key for kind, key, _ in everything.calls if kind == "add"}
        seen_deleted = {key for kind, key, _ in everything.calls if kind in ("delete", "tombstone")}
        assert deleted & seen_added
        assert deleted & seen_added <= seen_deleted
        totals = [inf.stats for inf in informers]
        assert sum(s.gone for s in totals) >= 1
        assert sum(s.errors for s in totals) >= 1  # the outage
        assert sum(s.inactivity_timeouts for s in totals) >= 1  # the zombie
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_objects_without_a_name_are_skipped_not_fatal() -> None:
    """A nameless object (never sent by a real API server) is logged and skipped; it neither
    raises into the reflector (which would retry the same event forever) nor reaches handlers."""
    recorder = Recorder()
    informer = Informer(object(), CONFIGMAPS, namespaces=["n"])  # type: ignore[arg-type]
    informer.add_handler(recorder.handler())
    good = {"metadata": {"name": "a", "namespace": "n", "resourceVersion": "1"}}
    informer.replace("n", [good, {"metadata": {}}, {"kind": "ConfigMap"}], "5")
    informer.apply("ADDED", {"metadata": {"namespace": "n"}})
    informer.apply("MODIFIED", {"metadata": "garbage"})
    informer.apply("DELETED", {})
    assert informer.has_synced
    assert informer.store.keys() == ["n/a"]
    assert recorder.calls == [("add", "n/a", True)]
