"""Leader election on a Lease, against envtest, in fake time (looptime).

Each elector talks through its own KubeClient with its own User-Agent, so envtest's audit log
tells whose writes succeeded and in which order. "Acting" is the time the work started by
``on_started_leading`` runs; two electors must never act at the same time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import re
import socket
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest
from flokoa_envtest import APIServer
from prometheus_client import REGISTRY

from flokoa_controller.kube.client import KubeClient
from flokoa_controller.kube.config import load_kubeconfig
from flokoa_controller.kube.errors import ConnectionFailed, NotFound
from flokoa_controller.kube.resources import LEASES
from flokoa_controller.runtime.leaderelection import (
    LeaderElectionLost,
    LeaderElector,
    default_identity,
)

pytestmark = pytest.mark.looptime

NS = "default"
LD, RD, RP = 15.0, 10.0, 2.0  # client-go's defaults: fake time makes them cheap
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def now() -> float:
    return asyncio.get_running_loop().time()


@dataclasses.dataclass
class Acting:
    """Records when each candidate's leading work runs (loop time)."""

    intervals: dict[str, list[list[float]]] = dataclasses.field(default_factory=dict)

    def work(self, who: str) -> Callable[[], Any]:
        async def run() -> None:
            span = [now(), float("inf")]
            self.intervals.setdefault(who, []).append(span)
            try:
                await asyncio.Event().wait()
            finally:
                span[1] = now()

        return run

    def assert_never_two(self) -> None:
        spans = sorted(
            (start, end, who) for who, lst in self.intervals.items() for start, end in lst
        )
        for (_, end_a, who_a), (start_b, _, who_b) in itertools.pairwise(spans):
            assert end_a <= start_b, f"{who_a} still acting when {who_b} started"


@dataclasses.dataclass
class Env:
    api: Any
    clients: dict[str, KubeClient]

    async def lease(self, name: str) -> dict[str, Any]:
        return await next(iter(self.clients.values())).get(LEASES, name, NS)

    def elector(self, who: str, name: str, **kwargs: Any) -> LeaderElector:
        kwargs.setdefault("lease_duration", LD)
        kwargs.setdefault("renew_deadline", RD)
        kwargs.setdefault("retry_period", RP)
        kwargs.setdefault("rng", random.Random(who))
        return LeaderElector(self.clients[who], namespace=NS, name=name, identity=who, **kwargs)

    def lease_writes(self, name: str) -> list[tuple[str, str, int, datetime]]:
        """(who, verb, code) of every Lease write, in order."""
        return [
            (e.user_agent, e.verb, e.code, e.time)
            for e in self.api.audit.writes(resource="leases")
            if e.name == name or (e.verb == "create" and not e.name)
        ]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with APIServer() as api:
        base = load_kubeconfig(api.kubeconfig_path)
        clients = {}
        for who in ("a", "b", "admin"):
            config = dataclasses.replace(base, user_agent=who)
            clients[who] = KubeClient(config)
            await clients[who].__aenter__()
        try:
            yield Env(api, clients)
        finally:
            for client in clients.values():
                await client.close()


async def wait_until(predicate: Callable[[], bool], limit: float = 120) -> float:
    async with asyncio.timeout(limit):
        while not predicate():  # noqa: ASYNC110 (polling with a deadline)
            await asyncio.sleep(0.05)
    return now()


async def finish(task: asyncio.Task[None]) -> BaseException | None:
    if not task.done():
        task.cancel()
    try:
        await task
    except BaseException as exc:
        return exc
    return None


def status(name: str) -> float | None:
    return REGISTRY.get_sample_value("leader_election_master_status", {"name": name})


def test_timings_are_validated() -> None:
    client: Any = None
    ok = {"namespace": NS, "name": "x"}
    LeaderElector(client, **ok)
    with pytest.raises(ValueError):
        LeaderElector(client, lease_duration=10, renew_deadline=10, **ok)
    with pytest.raises(ValueError):
        LeaderElector(client, renew_deadline=2.4, retry_period=2, **ok)
    with pytest.raises(ValueError):
        LeaderElector(client, lease_duration=0.5, renew_deadline=0.3, retry_period=0.1, **ok)
    host, _, uid = default_identity().rpartition("_")
    assert host == socket.gethostname()
    assert len(uid) == 36
    assert default_identity() != default_identity()


async def test_acquire_creates_then_renews_keeping_acquire_time(env: Env) -> None:
    acting = Acting()
    a = env.elector("a", "single")
    assert status("single") == 0
    task = asyncio.create_task(a.run(acting.work("a")))
    await asyncio.wait_for(a.wait_leading(), 5)
    assert a.is_leader
    assert status("single") == 1
    first = (await env.lease("single"))["spec"]
    assert first["holderIdentity"] == "a"
    assert first["leaseDurationSeconds"] == 15
    assert first["leaseTransitions"] == 0
    assert first["acquireTime"] == first["renewTime"]
    assert MICRO_TIME.match(first["renewTime"])
    await asyncio.sleep(3 * RP + 0.5)
    later = (await env.lease("single"))["spec"]
    assert later["acquireTime"] == first["acquireTime"]
    assert later["leaseTransitions"] == 0
    # Renewed every retry period by compare-and-swap updates, without reading first.
    writes = env.lease_writes("single")
    assert [(w[0], w[1], w[2]) for w in writes] == [("a", "create", 201)] + [
        ("a", "update", 200)
    ] * 3
    assert await finish(task) is not None  # CancelledError after release
    released = (await env.lease("single"))["spec"]
    assert released.get("holderIdentity") in ("", None)
    assert released["leaseDurationSeconds"] == 1
    assert status("single") == 0


async def test_standby_takes_over_after_expiry_when_leader_dies(env: Env) -> None:
    acting = Acting()
    a = env.elector("a", "crash", release_on_cancel=False)
    b = env.elector("b", "crash")
    ta = asyncio.create_task(a.run(acting.work("a")))
    await asyncio.wait_for(a.wait_leading(), 5)
    a_acquired = (await env.lease("crash"))["spec"]["acquireTime"]
    tb = asyncio.create_task(b.run(acting.work("b")))
    await asyncio.sleep(5 * RP)
    assert not b.is_leader
    assert b.observed_holder == "a"
    assert status("crash") == 1  # one gauge per lease name, per process: a's view
    died = now()
    await finish(ta)  # cancelled without releasing: like a killed process
    took_over = await wait_until(lambda: b.is_leader)
    assert took_over - died <= LD + RP + 0.1
    assert took_over - died >= LD - RP  # not before the lease could have expired
    spec = (await env.lease("crash"))["spec"]
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1
    assert spec["acquireTime"] > a_acquired
    writes = [(w[0], w[1], w[2]) for w in env.lease_writes("crash") if w[2] < 300]
    last_a = max(i for i, w in enumerate(writes) if w[0] == "a")
    first_b = min(i for i, w in enumerate(writes) if w[0] == "b")
    assert last_a < first_b  # every successful write of a precedes b's first
    acting.assert_never_two()
    await finish(tb)


async def test_graceful_release_hands_over_within_a_retry_period(env: Env) -> None:
    acting = Acting()
    a = env.elector("a", "handover")
    b = env.elector("b", "handover")
    ta = asyncio.create_task(a.run(acting.work("a")))
    await asyncio.wait_for(a.wait_leading(), 5)
    tb = asyncio.create_task(b.run(acting.work("b")))
    await asyncio.sleep(3 * RP)
    stopped = now()
    assert isinstance(await finish(ta), asyncio.CancelledError)
    took_over = await wait_until(lambda: b.is_leader)
    assert took_over - stopped <= RP + 0.1
    spec = (await env.lease("handover"))["spec"]
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1  # the release keeps the count; b's takeover adds one
    writes = [(w[0], w[1], w[2]) for w in env.lease_writes("handover") if w[2] < 300]
    a_writes = [i for i, w in enumerate(writes) if w[0] == "a"]
    b_writes = [i for i, w in enumerate(writes) if w[0] == "b"]
    assert max(a_writes) < min(b_writes)
    acting.assert_never_two()
    await finish(tb)


async def test_leader_that_cannot_renew_stops_before_anyone_else_can_lead(env: Env) -> None:
    acting = Acting()
    stopped_calls: list[float] = []
    a = env.elector("a", "partition")
    b = env.elector("b", "partition")
    ta = asyncio.create_task(a.run(acting.work("a"), lambda: stopped_calls.append(now())))
    await asyncio.wait_for(a.wait_leading(), 5)
    tb = asyncio.create_task(b.run(acting.work("b")))
    await asyncio.sleep(2 * RP + 0.5)
    cut = now()  # a renewed last at most one retry period ago
    env.api.faults.error_code = 500
    env.api.faults.error_rate = 1.0  # the API server answers nobody: a cannot renew
    exc = await finish_when_done(ta, limit=RP + RD + 5)
    assert isinstance(exc, LeaderElectionLost)
    lost = now()
    assert stopped_calls
    assert stopped_calls[0] == pytest.approx(lost, abs=0.1)
    # a stopped acting before its lease could have expired for anyone else.
    assert acting.intervals["a"][0][1] < cut + LD - RP
    assert not a.is_leader
    env.api.faults.reset()
    await wait_until(lambda: b.is_leader)
    acting.assert_never_two()
    assert (await env.lease("partition"))["spec"]["holderIdentity"] == "b"
    await finish(tb)


async def finish_when_done(task: asyncio.Task[None], limit: float) -> BaseException | None:
    done, _ = await asyncio.wait({task}, timeout=limit)
    assert task in done, "the task did not end in time"
    return await finish(task)


async def test_simultaneous_candidates_on_a_missing_lease(env: Env) -> None:
    acting = Acting()
    a = env.elector("a", "race")
    b = env.elector("b", "race")
    ta = asyncio.create_task(a.run(acting.work("a")))
    tb = asyncio.create_task(b.run(acting.work("b")))
    await wait_until(lambda: a.is_leader or b.is_leader)
    await asyncio.sleep(5 * RP)
    assert a.is_leader != b.is_leader
    creates = [w for w in env.lease_writes("race") if w[1] == "create"]
    assert sorted(w[2] for w in creates) in ([201], [201, 409])
    acting.assert_never_two()
    await finish(ta)
    await finish(tb)


async def test_conflicting_write_is_reread_and_renewed(env: Env) -> None:
    acting = Acting()
    a = env.elector("a", "conflict")
    ta = asyncio.create_task(a.run(acting.work("a")))
    await asyncio.wait_for(a.wait_leading(), 5)
    await env.clients["admin"].patch(
        LEASES, "conflict", {"metadata": {"labels": {"touched": "yes"}}}, NS
    )
    await asyncio.sleep(2 * RP + 0.5)
    assert a.is_leader
    writes = [(w[0], w[1], w[2]) for w in env.lease_writes("conflict")]
    assert ("a", "update", 409) in writes  # the stale fast-path renewal
    after = writes[writes.index(("a", "update", 409)) + 1 :]
    assert ("a", "update", 200) in after  # then re-read and renewed
    lease = await env.lease("conflict")
    assert lease["metadata"]["labels"] == {"touched": "yes"}  # not clobbered
    assert lease["spec"]["holderIdentity"] == "a"
    await finish(ta)


async def test_leader_seeing_another_holder_stops_at_once(env: Env) -> None:
    acting = Acting()
    a = env.elector("a", "usurped")
    ta = asyncio.create_task(a.run(acting.work("a")))
    await asyncio.wait_for(a.wait_leading(), 5)
    lease = await env.lease("usurped")
    lease["spec"]["holderIdentity"] = "intruder"
    await env.clients["admin"].update(LEASES, lease, NS)
    usurped = now()
    exc = await finish_when_done(ta, limit=2 * RP + 1)
    assert isinstance(exc, LeaderElectionLost)
    assert now() - usurped <= RP + 0.5  # at the next renewal, not after the deadline
    assert acting.intervals["a"][0][1] <= now()


async def test_lease_deleted_under_the_leader_is_recreated(env: Env) -> None:
    a = env.elector("a", "deleted")
    ta = asyncio.create_task(a.run(Acting().work("a")))
    await asyncio.wait_for(a.wait_leading(), 5)
    await env.clients["admin"].delete(LEASES, "deleted", NS)
    with pytest.raises(NotFound):
        await env.lease("deleted")
    await asyncio.sleep(RP + 0.5)
    assert a.is_leader
    assert (await env.lease("deleted"))["spec"]["holderIdentity"] == "a"
    await finish(ta)


async def test_work_failure_releases_and_propagates(env: Env) -> None:
    a = env.elector("a", "failing")

    async def work() -> None:
        await asyncio.sleep(1)
        raise RuntimeError("controller crashed")

    with pytest.raises(RuntimeError, match="controller crashed"):
        await asyncio.wait_for(a.run(work), 30)
    assert not a.is_leader
    assert (await env.lease("failing"))["spec"].get("holderIdentity") in ("", None)


class SlowReplies:
    """A Lease client whose next update is applied at once but answered ``delay`` s later,
    and which then fails every request (a leader cut off right after a slow renewal)."""

    def __init__(self, client: KubeClient, delay: float) -> None:
        self.client = client
        self.delay = delay
        self.armed = False
        self.cut = False
        self.applied_at: float | None = None

    async def get(self, rt: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        if self.cut:
            raise ConnectionFailed("ClientConnectorError", "cut off")
        return await self.client.get(rt, name, namespace)

    async def create(self, rt: Any, body: dict[str, Any], namespace: str | None = None) -> Any:
        if self.cut:
            raise ConnectionFailed("ClientConnectorError", "cut off")
        return await self.client.create(rt, body, namespace)

    async def update(
        self,
        rt: Any,
        body: dict[str, Any],
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        if self.cut:
            raise ConnectionFailed("ClientConnectorError", "cut off")
        written = await self.client.update(rt, body, namespace, subresource)
        if self.armed:
            self.armed = False
            self.applied_at = now()
            await asyncio.sleep(self.delay)
            self.cut = True
        return written


async def test_slow_renewal_reply_does_not_extend_leadership(env: Env) -> None:
    # The deadline counts from when the successful renewal was sent, not from its reply:
    # standbys count the lease duration from when they saw the write.
    acting = Acting()
    slow = SlowReplies(env.clients["a"], delay=RD - 1)
    a = LeaderElector(
        slow, namespace=NS, name="slow", identity="a", lease_duration=LD,
        renew_deadline=RD, retry_period=RP, rng=random.Random("a"),
    )  # fmt: skip
    b = env.elector("b", "slow")
    ta = asyncio.create_task(a.run(acting.work("a")))
    await asyncio.wait_for(a.wait_leading(), 5)
    tb = asyncio.create_task(b.run(acting.work("b")))
    await asyncio.sleep(2 * RP + 0.5)
    slow.armed = True
    exc = await finish_when_done(ta, limit=3 * LD)
    assert isinstance(exc, LeaderElectionLost)
    assert slow.applied_at is not None
    a_stopped = acting.intervals["a"][0][1]
    assert a_stopped <= slow.applied_at + RP + RD + 0.1
    await wait_until(lambda: b.is_leader)
    acting.assert_never_two()
    await finish(tb)


async def test_renewals_keep_owner_references_and_finalizers(env: Env) -> None:
    # A PUT replaces the whole object: client-go sends back the metadata it read.
    a = env.elector("a", "owned")
    ta = asyncio.create_task(a.run(Acting().work("a")))
    await asyncio.wait_for(a.wait_leading(), 5)
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u-1"}
    await env.clients["admin"].patch(
        LEASES,
        "owned",
        {"metadata": {"ownerReferences": [owner], "finalizers": ["example.com/keep"]}},
        NS,
    )
    await asyncio.sleep(2 * RP + 0.5)  # renewed (after a conflict and a re-read)
    lease = await env.lease("owned")
    assert lease["spec"]["renewTime"] != lease["spec"]["acquireTime"]
    assert lease["metadata"]["ownerReferences"] == [owner]
    assert lease["metadata"]["finalizers"] == ["example.com/keep"]
    await finish(ta)  # released, still owned
    lease = await env.lease("owned")
    assert lease["spec"].get("holderIdentity") in ("", None)
    assert lease["metadata"]["finalizers"] == ["example.com/keep"]
    assert lease["metadata"]["ownerReferences"] == [owner]


async def test_holds_lease_is_false_past_the_renew_deadline_before_the_loop_notices(
    env: Env,
) -> None:
    # A paused process (SIGSTOP) or a starved loop resumes with is_leader still set; the
    # write fence must already say no, judged on the elector's own clock.
    skew = [0.0]

    def clock() -> float:
        return now() + skew[0]

    a = env.elector("a", "fence", clock=clock)
    acting = Acting()
    ta = asyncio.create_task(a.run(acting.work("a")))
    await asyncio.wait_for(a.wait_leading(), 5)
    assert a.is_leader
    assert a.holds_lease()
    skew[0] = RP + RD  # as if the process had been frozen that long
    assert a.is_leader  # the renew loop has not run yet ...
    assert not a.holds_lease()  # ... but the fence already refuses
    skew[0] = 0.0
    assert a.holds_lease()
    await finish(ta)
