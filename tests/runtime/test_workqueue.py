"""Workqueue semantics (client-go's), deterministic under looptime."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
from prometheus_client import REGISTRY

from flokoa_controller.runtime.clock import FakeClock
from flokoa_controller.runtime.ratelimiter import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
)
from flokoa_controller.runtime.workqueue import QueueShutDown, WorkQueue

pytestmark = pytest.mark.looptime


def now() -> float:
    return asyncio.get_running_loop().time()


async def settle() -> None:
    """Let every ready callback and task step run (no time passes)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_fifo_and_coalescing() -> None:
    q: WorkQueue[str] = WorkQueue()
    for item in ["a", "b", "a", "c", "b", "a"]:
        q.add(item)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]
    assert len(q) == 0
    assert q.processing() == 3


async def test_add_during_processing_requeues_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0  # dirty, but held back while "a" is processed
    q.add("b")
    assert await q.get() == "b"
    q.done("a")
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    q.done("b")
    assert len(q) == 0
    assert q.processing() == 0


async def test_done_without_readd_does_not_requeue() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    item = await q.get()
    q.done(item)
    assert len(q) == 0
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(1):
            await q.get()


async def test_get_blocks_until_add() -> None:
    q: WorkQueue[str] = WorkQueue()
    getter = asyncio.create_task(q.get())
    await settle()
    assert not getter.done()
    q.add("x")
    assert await getter == "x"


async def test_cancelled_getter_passes_the_item_on() -> None:
    q: WorkQueue[str] = WorkQueue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await settle()
    q.add("x")  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs
    await asyncio.gather(first, return_exceptions=True)
    assert await asyncio.wait_for(second, 1) == "x"


async def test_never_two_workers_on_one_key() -> None:
    """Many workers, random adds of few keys: a key is never held twice; every add is seen."""
    rng = random.Random(42)
    q: WorkQueue[int] = WorkQueue()
    in_flight: set[int] = set()
    processed_after_add: dict[int, float] = {}
    last_add: dict[int, float] = {}
    violations: list[int] = []

    async def worker() -> None:
        while True:
            try:
                key = await q.get()
            except QueueShutDown:
                return
            if key in in_flight:
                violations.append(key)
            in_flight.add(key)
            started = now()
            await asyncio.sleep(rng.choice([0.0, 0.001, 0.01, 0.1]))
            in_flight.discard(key)
            processed_after_add[key] = started
            q.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(8)]
    for _ in range(3000):
        key = rng.randrange(10)
        q.add(key)
        last_add[key] = now()
        await asyncio.sleep(rng.choice([0.0, 0.0005, 0.005]))
    await q.shutdown_with_drain()
    # Remaining queued items are handed out after shutdown; wait for the workers to finish.
    await asyncio.wait_for(asyncio.gather(*workers), 10)
    assert violations == []
    # Level-triggered: every key's last add was followed by a processing that started later.
    for key, added in last_add.items():
        assert processed_after_add[key] >= added


async def test_add_after_zero_or_negative_is_immediate() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", 0)
    q.add_after("b", -5)
    assert len(q) == 2
    assert q.waiting() == 0


async def test_add_after_waits_and_earliest_wins() -> None:
    q: WorkQueue[str] = WorkQueue()
    t0 = now()
    q.add_after("a", 10)
    q.add_after("a", 5)  # earlier: moves the ready time to t0+5
    q.add_after("a", 20)  # later: ignored
    q.add_after("b", 7)
    assert len(q) == 0
    assert q.waiting() == 2
    assert await q.get() == "a"
    assert now() == pytest.approx(t0 + 5)
    assert await q.get() == "b"
    assert now() == pytest.approx(t0 + 7)
    q.done("a")
    q.done("b")
    # "a" was not re-added by its stale entries at 10 and 20.
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(30):
            await q.get()


async def test_add_after_coalesces_with_a_dirty_item() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add_after("a", 1)
    await asyncio.sleep(2)
    assert len(q) == 1  # the delayed add found "a" still dirty
    assert await q.get() == "a"


async def test_add_after_reschedules_timer_for_an_earlier_item() -> None:
    q: WorkQueue[str] = WorkQueue()
    t0 = now()
    q.add_after("late", 100)
    q.add_after("early", 1)
    assert await q.get() == "early"
    assert now() == pytest.approx(t0 + 1)
    assert await q.get() == "late"
    assert now() == pytest.approx(t0 + 100)


async def test_add_rate_limited_forget_and_num_requeues() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(1.0, 8.0)
    q: WorkQueue[str] = WorkQueue(rate_limiter=limiter)
    t0 = now()
    ready: list[float] = []
    for _ in range(5):
        q.add_rate_limited("a")
        assert await q.get() == "a"
        ready.append(now() - t0)
        t0 = now()
        q.done("a")
    assert ready == pytest.approx([1.0, 2.0, 4.0, 8.0, 8.0])
    assert q.num_requeues("a") == 5
    q.forget("a")
    assert q.num_requeues("a") == 0
    q.add_rate_limited("a")
    await q.get()
    assert now() - t0 == pytest.approx(1.0)


async def test_shutdown_releases_getters_and_ignores_adds() -> None:
    q: WorkQueue[str] = WorkQueue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await settle()
    q.shutdown()
    results = await asyncio.gather(*getters, return_exceptions=True)
    assert all(isinstance(r, QueueShutDown) for r in results)
    assert q.shutting_down
    q.add("a")
    q.add_after("b", 1)
    q.add_rate_limited("c")
    assert len(q) == 0
    assert q.waiting() == 0
    with pytest.raises(QueueShutDown):
        await q.get()


async def test_shutdown_hands_out_queued_items_and_drops_delayed_ones() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add("b")
    q.add_after("later", 1)
    q.shutdown()
    assert await q.get() == "a"
    assert await q.get() == "b"
    assert q.waiting() == 0
    await asyncio.sleep(5)
    with pytest.raises(QueueShutDown):
        await q.get()


async def test_shutdown_with_drain_waits_for_processing() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add("b")
    a = await q.get()
    b = await q.get()
    drain = asyncio.create_task(q.shutdown_with_drain())
    await asyncio.sleep(1)
    assert not drain.done()
    assert q.shutting_down
    q.done(a)
    await settle()
    assert not drain.done()
    q.done(b)
    await asyncio.wait_for(drain, 1)


async def test_shutdown_with_drain_returns_at_once_when_idle() -> None:
    q: WorkQueue[str] = WorkQueue()
    await asyncio.wait_for(q.shutdown_with_drain(), 0.001)


def _sample(name: str, queue: str) -> float:
    value = REGISTRY.get_sample_value(name, {"name": queue, "controller": queue})
    assert value is not None, name
    return value


async def test_metrics_of_a_named_queue() -> None:
    name = f"wq-{uuid.uuid4().hex[:8]}"
    q: WorkQueue[str] = WorkQueue(name, rate_limiter=BucketRateLimiter(clock=FakeClock()))
    assert _sample("workqueue_depth", name) == 0
    q.add("a")
    q.add("a")  # coalesced: not an add
    q.add("b")
    assert _sample("workqueue_adds_total", name) == 2
    assert _sample("workqueue_depth", name) == 2
    await asyncio.sleep(0.25)
    item = await q.get()
    assert _sample("workqueue_depth", name) == 1
    # queue duration 0.25 s falls in the (0.1, 1] bucket.
    assert _sample("workqueue_queue_duration_seconds_count", name) == 1
    assert _sample("workqueue_queue_duration_seconds_sum", name) == pytest.approx(0.25)
    assert (
        REGISTRY.get_sample_value(
            "workqueue_queue_duration_seconds_bucket",
            {"name": name, "controller": name, "le": "0.1"},
        )
        == 0
    )
    # The in-flight gauges are refreshed every 500 ms while the item is processed.
    await asyncio.sleep(1.3)
    assert _sample("workqueue_longest_running_processor_seconds", name) == pytest.approx(1.25)
    assert _sample("workqueue_unfinished_work_seconds", name) == pytest.approx(1.25)
    other = await q.get()
    await asyncio.sleep(0.5)
    # Refreshed at t=2.0 with two in flight, started at t=0.25 and t=1.55.
    assert _sample("workqueue_longest_running_processor_seconds", name) == pytest.approx(1.75)
    assert _sample("workqueue_unfinished_work_seconds", name) == pytest.approx(1.75 + 0.45)
    q.done(item)
    assert _sample("workqueue_work_duration_seconds_count", name) == 1
    assert _sample("workqueue_work_duration_seconds_sum", name) == pytest.approx(1.8)
    q.add_after("c", 1)
    q.add_rate_limited("d")
    assert _sample("workqueue_retries_total", name) == 2
    q.done(other)
    await q.shutdown_with_drain()
    assert _sample("workqueue_unfinished_work_seconds", name) == 0
    assert _sample("workqueue_longest_running_processor_seconds", name) == 0


async def test_unnamed_queue_records_no_metrics() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert REGISTRY.get_sample_value("workqueue_adds_total", {"name": "", "controller": ""}) is None
