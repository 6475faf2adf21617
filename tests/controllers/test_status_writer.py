"""Read-your-writes without blocking, and optimistic locking of status writes.

These drive the ModelProvider reconciler over in-memory stores with an API stand-in whose
status patches reach the informer cache only when the test says so (a lagging or stalled
watch), in fake time (looptime), so the timing assertions are exact.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from flokoa_envtest.patch import merge_patch
from flokoa_envtest.testing import b64, secret_manifest

from flokoa_controller.controllers.modelprovider import ModelProviderReconciler
from flokoa_controller.controllers.probing import Prober
from flokoa_controller.controllers.resources import MODELPROVIDERS
from flokoa_controller.controllers.secret_digest import secret_to_digest
from flokoa_controller.controllers.status import NotLeading, StatusWriter
from flokoa_controller.kube.errors import Conflict, NotFound
from flokoa_controller.kube.resources import ResourceType
from flokoa_controller.providers.http import ProbeHTTP
from flokoa_controller.providers.result import ProbeResult
from flokoa_controller.providers.target import ProbeTarget
from flokoa_controller.runtime.controller import Request, Result
from flokoa_controller.runtime.store import Store

pytestmark = pytest.mark.looptime

NS = "rw"
KEY = "sk-test-status-writer-0123456789"


class LaggingCluster:
    """The API server's side of the objects; the informer cache is fed by ``deliver()``."""

    def __init__(self, store: Store, secrets: dict[str, dict[str, Any]]) -> None:
        self.store = store
        self.secrets = secrets
        self.objects: dict[str, dict[str, Any]] = {}
        self.rv = itertools.count(10)
        self.patches: list[dict[str, Any]] = []
        self.conflicts = 0

    def put(self, obj: dict[str, Any], *, deliver: bool = True) -> dict[str, Any]:
        """Create or replace an object server-side (a fresh resourceVersion)."""
        meta = obj["metadata"]
        stored = {**obj, "metadata": {**meta, "resourceVersion": str(next(self.rv))}}
        self.objects[f"{meta['namespace']}/{meta['name']}"] = stored
        if deliver:
            self.store.add(stored)
        return stored

    def deliver(self) -> None:
        """The watch catches up: the cache shows the server's objects."""
        for obj in self.objects.values():
            self.store.add(obj)

    async def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> Any:
        obj = self.secrets.get(name)
        if obj is None:
            raise NotFound(404, "NotFound", f'secrets "{name}" not found')
        return obj

    async def patch(
        self,
        rt: ResourceType,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
    ) -> Any:
        assert (patch_type, subresource) == ("merge", "status")
        current = self.objects.get(f"{namespace}/{name}")
        if current is None:
            raise NotFound(404, "NotFound", "gone")
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            self.conflicts += 1
            raise Conflict(409, "Conflict", "the object has been modified")
        self.patches.append(patch)
        status = merge_patch(current.get("status"), patch["status"])
        return self.put({**current, "status": status}, deliver=False)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, obj: Mapping[str, Any], type: Any, reason: str, message: str) -> None:
        self.events.append((type, reason))


def _provider(uid: str, secret: str = "creds") -> dict[str, Any]:
    return {
        "apiVersion": "agent.flokoa.ai/v1alpha1",
        "kind": "ModelProvider",
        "metadata": {"name": "p", "namespace": NS, "uid": uid, "generation": 1},
        "spec": {
            "apiKeySecretRef": {"name": secret, "key": "api-key"},
            "openai": {"baseURL": "https://llm.example.test/v1"},
        },
    }


def _secret(name: str = "creds") -> dict[str, Any]:
    return secret_manifest(name, NS, {"api-key": KEY}, metadata={"uid": f"uid-{name}"})


class Rig:
    def __init__(self) -> None:
        self.providers = Store()
        self.secrets = Store()
        for name in ("creds", "other"):
            self.secrets.add(secret_to_digest(_secret(name)))
        self.cluster = LaggingCluster(
            self.providers, {"creds": _secret("creds"), "other": _secret("other")}
        )
        self.probes: list[ProbeTarget] = []
        self.gate: asyncio.Event | None = None
        self.probing = asyncio.Event()
        self.recorder = Recorder()
        self.http = ProbeHTTP()
        self.writer = StatusWriter(self.cluster, MODELPROVIDERS)
        self.reconciler = ModelProviderReconciler(
            providers=self.providers,
            secrets=self.secrets,
            writer=self.writer,
            prober=Prober(self.cluster, self.http, probe_provider=self._probe),
            recorder=self.recorder,
        )

    async def _probe(self, target: ProbeTarget, http: ProbeHTTP) -> ProbeResult:
        self.probes.append(target)
        self.probing.set()
        if self.gate is not None:
            await self.gate.wait()
        return ProbeResult(True, "ProbeSucceeded", "credentials accepted", "", 200, 0.01)

    async def reconcile(self) -> Result:
        return await self.reconciler.reconcile(Request(NS, "p"))


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = Rig()
    try:
        yield r
    finally:
        await r.http.close()


async def test_a_write_does_not_block_the_worker_and_the_next_reconcile_sees_it(
    rig: Rig,
) -> None:
    """The watch is stalled: the write returns at once (no wait for the cache), and a
    reconcile that follows before the cache catches up neither probes nor writes again."""
    rig.cluster.put(_provider("u1"))
    loop = asyncio.get_running_loop()
    start = loop.time()
    first = await rig.reconcile()
    assert loop.time() - start == pytest.approx(0.0, abs=1e-6)
    assert len(rig.probes) == 1
    assert len(rig.cluster.patches) == 1
    assert first.requeue_after > 0

    second = await rig.reconcile()  # the cache still shows the object without a status
    assert loop.time() - start == pytest.approx(0.0, abs=1e-6)
    assert len(rig.probes) == 1, "probed again from a stale cache"
    assert len(rig.cluster.patches) == 1, "wrote again from a stale cache"
    assert second.requeue_after > 0
    assert rig.recorder.events == [], "a first Ready is recorded in the status only"

    assert rig.writer.pending() == 1
    rig.cluster.deliver()  # the watch catches up; the record is no longer needed
    await rig.reconcile()
    assert len(rig.probes) == 1
    assert len(rig.cluster.patches) == 1
    assert rig.writer.pending() == 0


async def test_a_probe_outliving_its_object_never_writes_onto_the_new_one(rig: Rig) -> None:
    """Deleted and re-created under the same name while the probe ran: the old verdict
    must not land on the new object (it would look probed and stay so for the interval)."""
    rig.cluster.put(_provider("u1"))
    rig.gate = asyncio.Event()
    rig.probing = asyncio.Event()
    first = asyncio.create_task(rig.reconcile())
    await rig.probing.wait()
    rig.cluster.put(_provider("u2", secret="other"))  # same name, new object
    rig.gate.set()
    result = await first
    assert rig.cluster.patches == []
    assert rig.cluster.conflicts == 1
    assert result.requeue  # comes back (rate limited) to reconcile the new object
    assert "status" not in rig.cluster.objects[f"{NS}/p"]

    rig.gate = None
    await rig.reconcile()
    assert len(rig.probes) == 2
    status = rig.cluster.objects[f"{NS}/p"]["status"]
    assert status["ready"] is True


async def test_records_go_when_the_cache_catches_up_or_the_object_is_deleted(rig: Rig) -> None:
    """The informer handler drops a record once the cache shows the write (or later), or the
    object is deleted; an older cache version keeps it; another UID is not "older"."""
    from flokoa_controller.runtime.informer import DeletedFinalStateUnknown

    before = rig.cluster.put(_provider("u1"))
    desired = {"ready": False}
    assert await rig.writer.write(before, desired, ("ready",))
    written = rig.cluster.objects[f"{NS}/p"]
    on_update = rig.writer.handler.on_update
    on_delete = rig.writer.handler.on_delete
    assert on_update is not None
    assert on_delete is not None

    on_update(before, before)  # the cache still shows the version written from
    assert rig.writer.pending() == 1
    assert rig.writer.latest(before) is written
    on_update(before, written)
    assert rig.writer.pending() == 0
    assert rig.writer.latest(before) is before

    assert await rig.writer.write(written, {"ready": True}, ("ready",))
    on_delete(DeletedFinalStateUnknown(f"{NS}/p", written))
    assert rig.writer.pending() == 0

    # A record for one object never stands in for another object of the same name.
    current = rig.cluster.objects[f"{NS}/p"]
    assert await rig.writer.write(current, {"ready": False}, ("ready",))
    other = {**current, "metadata": {**current["metadata"], "uid": "u-other"}}
    assert rig.writer.latest(other) is other
    assert rig.writer.pending() == 0

    # Unchanged status: no write, no record.
    latest = rig.cluster.objects[f"{NS}/p"]
    assert not await rig.writer.write(latest, {"ready": False}, ("ready",))
    assert rig.writer.pending() == 0


async def test_a_model_judges_the_provider_status_written_not_the_stale_cache(rig: Rig) -> None:
    """The provider's status write (after a key rotation) has not reached the cache when a
    Model is reconciled: through the provider writer's ``latest`` the Model sees the written
    status, so the cache catching up later costs no second model check."""
    from flokoa_controller.controllers.model import ModelReconciler
    from flokoa_controller.controllers.resources import MODELS

    rig.cluster.put(_provider("u1"))
    await rig.reconcile()
    rig.cluster.deliver()
    first_hash = rig.providers.get_by("p", NS)["status"]["secretHash"]  # type: ignore[index]

    # Rotate the key: the provider probes again and writes; the watch lags behind.
    rotated = _secret("creds")
    rotated["data"] = {"api-key": b64(b"sk-rotated-key-0123456789abcdef")}
    rig.cluster.secrets["creds"] = rotated
    rig.secrets.add(secret_to_digest(rotated))
    await rig.reconcile()
    assert len(rig.probes) == 2
    assert rig.providers.get_by("p", NS)["status"]["secretHash"] == first_hash  # type: ignore[index]
    assert rig.writer.pending() == 1

    checks: list[str] = []

    async def probe_model(target: ProbeTarget, model: str, http: ProbeHTTP) -> ProbeResult:
        checks.append(model)
        return ProbeResult(True, "ProbeSucceeded", f'model "{model}" found', "", 200, 0.01)

    models = Store()
    model_cluster = LaggingCluster(models, {})
    reconciler = ModelReconciler(
        models=models,
        providers=rig.providers,
        writer=StatusWriter(model_cluster, MODELS),
        prober=Prober(rig.cluster, rig.http, probe_model=probe_model),
        recorder=rig.recorder,
        latest_provider=rig.writer.latest,
    )
    model_cluster.put(
        {
            "apiVersion": "agent.flokoa.ai/v1alpha1",
            "kind": "Model",
            "metadata": {"name": "m", "namespace": NS, "uid": "m1", "generation": 1},
            "spec": {"model": "gpt-4o", "providerRef": {"name": "p"}},
        }
    )
    await reconciler.reconcile(Request(NS, "m"))
    assert checks == ["gpt-4o"]
    model_cluster.deliver()

    rig.cluster.deliver()  # the provider's watch event arrives and maps to its Models
    await reconciler.reconcile(Request(NS, "m"))
    assert checks == ["gpt-4o"], "checked again once the cache caught up with the provider"
    status = model_cluster.objects[f"{NS}/m"]["status"]
    assert status["ready"] is True


async def test_fence_refuses_the_write_of_a_replica_that_lost_the_lease() -> None:
    """A leader paused past its renew deadline resumes mid-reconcile: nothing is sent."""
    store = Store()
    cluster = LaggingCluster(store, {})
    holds = [True]
    writer = StatusWriter(cluster, MODELPROVIDERS, fence=lambda: holds[0])
    obj = cluster.put(_provider("u1"))
    assert await writer.write(obj, {"ready": True}, ["ready"])
    assert len(cluster.patches) == 1
    holds[0] = False
    obj = cluster.objects[f"{NS}/p"]
    with pytest.raises(NotLeading):
        await writer.write(obj, {"ready": False}, ["ready"])
    assert len(cluster.patches) == 1  # the refused write never reached the API server


class _EchoClient:
    """Answers a status patch with the object at a new resourceVersion."""

    async def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> Any:
        raise NotImplementedError

    async def patch(
        self, rt: ResourceType, name: str, patch: Any, namespace: Any = None, **_: Any
    ) -> Any:
        return {
            "metadata": {"name": name, "namespace": namespace, "uid": "u", "resourceVersion": "8"},
            "status": patch["status"],
        }


def _obj(rv: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "e", "namespace": NS, "uid": "u", "resourceVersion": rv},
        "status": status or {},
    }


async def test_own_write_echo_is_recognised_once_and_forgotten_with_the_object() -> None:
    writer = StatusWriter(_EchoClient(), MODELPROVIDERS)
    assert await writer.write(_obj("7"), {"ready": True}, ["ready"])
    assert not writer.is_own_write(_obj("6"), _obj("7"))  # an older event: not the echo
    assert writer.is_own_write(_obj("7"), _obj("8", {"ready": True}))
    assert not writer.is_own_write(_obj("7"), _obj("8", {"ready": True}))  # once only
    # an event past the echo (the echo folded into a later change) forgets it
    assert await writer.write(_obj("7"), {"ready": False}, ["ready"])
    assert not writer.is_own_write(_obj("7"), _obj("9"))
    assert not writer.is_own_write(_obj("7"), _obj("8", {"ready": False}))
    # the object left the cache before the write's reply: nothing stays behind
    assert await writer.write(_obj("7"), {"ready": True}, ["ready"])
    assert writer.pending() == 1
    writer.forget(f"{NS}/e")
    assert writer.pending() == 0
    assert not writer.is_own_write(_obj("7"), _obj("8", {"ready": True}))


class _WatchFirstClient:
    """Delivers the write's watch event (``old`` → the new object, through the predicate
    the test gives) before it answers the patch, as a real kube-apiserver often does; can
    answer a different resourceVersion than the event's, or refuse with a Conflict."""

    def __init__(self, event_rv: str = "8", reply_rv: str = "8", conflict: bool = False) -> None:
        self.event_rv = event_rv
        self.reply_rv = reply_rv
        self.conflict = conflict
        self.deliver: Any = None
        self.dropped: list[bool] = []

    async def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> Any:
        raise NotImplementedError

    async def patch(
        self, rt: ResourceType, name: str, patch: Any, namespace: Any = None, **_: Any
    ) -> Any:
        based_on = patch["metadata"]["resourceVersion"]
        self.dropped.append(self.deliver(_obj(based_on), _obj(self.event_rv, patch["status"])))
        await asyncio.sleep(0)
        if self.conflict:
            raise Conflict(409, "Conflict", "the object has been modified")
        return _obj(self.reply_rv, patch["status"])


async def test_echo_delivered_before_the_reply_is_dropped_once() -> None:
    """The watch beats the write's reply: the update from the locked version is the echo."""
    client = _WatchFirstClient()
    writer = StatusWriter(client, MODELPROVIDERS)
    requeued: list[str] = []
    writer.requeue = requeued.append
    client.deliver = writer.is_own_write
    assert await writer.write(_obj("7"), {"ready": True}, ["ready"])
    assert client.dropped == [True]
    assert requeued == []
    assert writer.pending() == 0  # the cache already shows the write: no record held
    # nothing is due any more: the next update (somebody else's) passes
    assert not writer.is_own_write(_obj("8"), _obj("9", {"ready": False}))
    # an update from another version while a write is in flight is not taken for its echo
    client.deliver = lambda old, new: writer.is_own_write(_obj("6"), new)
    assert await writer.write(_obj("7"), {"ready": False}, ["ready"])
    assert client.dropped[-1] is False


async def test_early_update_that_was_more_than_the_echo_is_requeued() -> None:
    """The update seen before the reply is not the written version (a relist folded the
    echo into later changes): the key is requeued."""
    client = _WatchFirstClient(event_rv="11", reply_rv="8")
    writer = StatusWriter(client, MODELPROVIDERS)
    requeued: list[str] = []
    writer.requeue = requeued.append
    client.deliver = writer.is_own_write
    assert await writer.write(_obj("7"), {"ready": True}, ["ready"])
    assert requeued == [f"{NS}/e"]


async def test_early_update_of_a_refused_write_is_reconciled_by_the_conflict() -> None:
    """Somebody else's write won the race (ours gets a Conflict): the update dropped as a
    possible echo is reconciled through the Conflict's requeue."""
    client = _WatchFirstClient(conflict=True)
    writer = StatusWriter(client, MODELPROVIDERS)
    client.deliver = writer.is_own_write
    with pytest.raises(Conflict):
        await writer.write(_obj("7"), {"ready": True}, ["ready"])
    assert client.dropped == [True]
    # nothing stays in flight: later updates from that version pass
    assert not writer.is_own_write(_obj("7"), _obj("8"))


async def test_probes_in_flight_a_rotation_during_the_probe_discards_its_result(
    rig: Rig,
) -> None:
    """With probes outside the workers: the reconcile that starts a probe returns at once;
    the completion re-queues; a Secret rotated while the probe ran makes its result stale —
    it is dropped and the probe runs again with the new key, and only that one is written."""
    from flokoa_controller.controllers.probes_inflight import InFlightProbes

    probes = InFlightProbes()
    requeued: list[Request] = []
    rig.reconciler.probes = probes
    rig.reconciler.requeue = requeued.append
    rig.cluster.put(_provider("u1"))
    rig.gate = asyncio.Event()
    first = await rig.reconcile()
    assert first == Result()  # in flight: nothing to requeue, the completion will
    await rig.probing.wait()
    assert len(rig.probes) == 1
    assert await rig.reconcile() == Result()  # seen in flight: not started twice
    assert len(rig.probes) == 1

    rotated = _secret("creds")
    rotated["data"] = {"api-key": b64(b"sk-rotated-key-0123456789abcdef")}
    rig.cluster.secrets["creds"] = rotated
    rig.secrets.add(secret_to_digest(rotated))
    rig.gate.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert requeued == [Request(NS, "p")]
    rig.gate = asyncio.Event()
    rig.probing.clear()
    assert await rig.reconcile() == Result()  # stale result dropped, probing again
    assert rig.cluster.patches == []
    await rig.probing.wait()
    assert len(rig.probes) == 2
    assert rig.probes[1].api_key == "sk-rotated-key-0123456789abcdef"
    rig.gate.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    done = await rig.reconcile()
    assert done.requeue_after > 0
    assert len(rig.cluster.patches) == 1
    status = rig.cluster.objects[f"{NS}/p"]["status"]
    assert status["ready"] is True
    assert len(rig.probes) == 2  # the stale probe's outcome was never written
    assert len(probes) == 0


async def test_probes_in_flight_a_deleted_provider_cancels_its_probe(rig: Rig) -> None:
    from flokoa_controller.controllers.probes_inflight import InFlightProbes

    probes = InFlightProbes()
    rig.reconciler.probes = probes
    rig.cluster.put(_provider("u1"))
    rig.gate = asyncio.Event()
    await rig.reconcile()
    await rig.probing.wait()
    assert probes.in_flight() == 1
    rig.providers.delete(f"{NS}/p")
    del rig.cluster.objects[f"{NS}/p"]
    await rig.reconcile()
    assert len(probes) == 0  # forgotten at once; the cancelled task ends on the next turns
    for _ in range(3):
        await asyncio.sleep(0)
    assert probes.in_flight() == 0
    assert rig.cluster.patches == []
