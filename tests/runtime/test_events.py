"""EventRecorder against envtest: fields, deduplication, aggregation, spam filter, overflow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flokoa_envtest import APIServer
from prometheus_client import REGISTRY

from flokoa_controller.kube.client import KubeClient
from flokoa_controller.kube.config import load_kubeconfig
from flokoa_controller.kube.resources import EVENTS
from flokoa_controller.runtime.clock import FakeClock
from flokoa_controller.runtime.events import AGGREGATE_PREFIX, EventRecorder


class WallClock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def api() -> AsyncIterator[Any]:
    async with APIServer() as server:
        yield server


@pytest.fixture
async def client(api: Any) -> AsyncIterator[KubeClient]:
    async with KubeClient(load_kubeconfig(api.kubeconfig_path)) as c:
        yield c


def provider(name: str = "openai", uid: str = "uid-1") -> dict[str, Any]:
    return {
        "apiVersion": "agent.flokoa.ai/v1alpha1",
        "kind": "ModelProvider",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": uid,
            "resourceVersion": "42",
            "labels": {"not": "copied"},
        },
        "spec": {"apiKey": {"secretRef": {"name": "s"}}},
    }


async def events(client: KubeClient) -> list[dict[str, Any]]:
    items = (await client.list(EVENTS, "default"))["items"]
    return sorted(items, key=lambda e: e["metadata"]["name"])


def dropped(reason: str) -> float:
    return (
        REGISTRY.get_sample_value("flokoa_controller_events_dropped_total", {"reason": reason}) or 0
    )


async def test_event_fields(client: KubeClient) -> None:
    wall = WallClock()
    rec = EventRecorder(client, "flokoa-controller", "pod-1", clock=FakeClock(), wall_clock=wall)
    rec.event(provider(), "Warning", "AuthenticationFailed", "the API key was rejected (401)")
    await rec.flush()
    [event] = await events(client)
    assert event["involvedObject"] == {
        "kind": "ModelProvider",
        "apiVersion": "agent.flokoa.ai/v1alpha1",
        "namespace": "default",
        "name": "openai",
        "uid": "uid-1",
        "resourceVersion": "42",
    }
    assert event["metadata"]["name"].startswith("openai.")
    assert event["metadata"]["namespace"] == "default"
    assert event["type"] == "Warning"
    assert event["reason"] == "AuthenticationFailed"
    assert event["message"] == "the API key was rejected (401)"
    assert event["source"] == {"component": "flokoa-controller", "host": "pod-1"}
    assert event["reportingComponent"] == "flokoa-controller"
    assert event["reportingInstance"] == "pod-1"
    assert event["count"] == 1
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2025-01-02T03:04:05Z"
    await rec.close()


async def test_identical_events_patch_count_and_last_timestamp(client: KubeClient) -> None:
    wall = WallClock()
    clock = FakeClock()
    rec = EventRecorder(client, "ctl", "h", clock=clock, wall_clock=wall)
    obj = provider()
    rec.event(obj, "Normal", "Ready", "all good")
    for _ in range(3):
        clock.advance(10)
        wall.now += timedelta(seconds=10)
        rec.event(obj, "Normal", "Ready", "all good")
    await rec.flush()
    [event] = await events(client)
    assert event["count"] == 4
    assert event["firstTimestamp"] == "2025-01-02T03:04:05Z"
    assert event["lastTimestamp"] == "2025-01-02T03:04:35Z"
    # A different message is a different event. An identical one, however much later, still
    # counts on the same Event (client-go's event logger has no time window, only an LRU).
    rec.event(obj, "Normal", "Ready", "all good again")
    clock.advance(3600)
    wall.now += timedelta(hours=1)
    rec.event(obj, "Normal", "Ready", "all good")
    await rec.flush()
    listed = await events(client)
    assert len(listed) == 2
    assert sorted(e["count"] for e in listed) == [1, 5]
    [counted] = [e for e in listed if e["count"] == 5]
    assert counted["firstTimestamp"] == "2025-01-02T03:04:05Z"
    assert counted["lastTimestamp"] == "2025-01-02T04:04:35Z"
    await rec.close()


async def test_similar_events_are_aggregated(client: KubeClient) -> None:
    clock = FakeClock()
    rec = EventRecorder(client, "ctl", "h", clock=clock)
    obj = provider()
    for i in range(14):
        rec.event(obj, "Warning", "ProbeFailed", f"attempt {i}: connection refused")
    await rec.flush()
    listed = await events(client)
    plain = [e for e in listed if not e["message"].startswith(AGGREGATE_PREFIX)]
    combined = [e for e in listed if e["message"].startswith(AGGREGATE_PREFIX)]
    assert len(plain) == 9
    assert len(combined) == 1
    assert combined[0]["count"] == 5
    assert combined[0]["message"] == AGGREGATE_PREFIX + "attempt 13: connection refused"
    await rec.close()


async def test_aggregation_window_slides_with_each_similar_event(client: KubeClient) -> None:
    # client-go restarts the count of distinct messages only after 10 minutes *without* a
    # similar event: ten messages 5 minutes apart are aggregated although they span 45.
    clock = FakeClock()
    rec = EventRecorder(client, "ctl", "h", clock=clock)
    obj = provider()
    for i in range(10):
        rec.event(obj, "Warning", "ProbeFailed", f"attempt {i}: connection refused")
        clock.advance(300)
    await rec.flush()
    listed = await events(client)
    combined = [e for e in listed if e["message"].startswith(AGGREGATE_PREFIX)]
    assert [e["message"] for e in combined] == [AGGREGATE_PREFIX + "attempt 9: connection refused"]
    assert len(listed) == 10
    # After a quiet spell longer than the window, messages count afresh.
    clock.advance(601)
    rec.event(obj, "Warning", "ProbeFailed", "attempt 10: connection refused")
    await rec.flush()
    assert "attempt 10: connection refused" in [e["message"] for e in await events(client)]
    await rec.close()


async def test_spam_filter_per_object(client: KubeClient) -> None:
    clock = FakeClock()
    rec = EventRecorder(client, "ctl", "h", clock=clock)
    noisy, quiet = provider("noisy", "u1"), provider("quiet", "u2")
    before = dropped("rate_limited")
    for i in range(30):
        rec.event(noisy, "Normal", f"Reason{i}", "m")
    rec.event(quiet, "Normal", "Reason", "m")
    assert dropped("rate_limited") - before == 5
    clock.advance(300)  # one more token for the noisy object
    rec.event(noisy, "Normal", "Late1", "m")
    rec.event(noisy, "Normal", "Late2", "m")
    assert dropped("rate_limited") - before == 6
    await rec.flush()
    listed = await events(client)
    assert sum(1 for e in listed if e["involvedObject"]["name"] == "noisy") == 26
    assert sum(1 for e in listed if e["involvedObject"]["name"] == "quiet") == 1
    await rec.close()


async def test_overflow_drops_instead_of_blocking(client: KubeClient) -> None:
    rec = EventRecorder(client, "ctl", "h", max_queued=3, clock=FakeClock())
    before = dropped("queue_full")
    for i in range(10):  # no await in between: the writer cannot drain meanwhile
        rec.event(provider(f"p{i}", f"u{i}"), "Normal", "R", "m")
    assert dropped("queue_full") - before == 7
    assert rec.dropped == 7
    await rec.flush()
    assert len(await events(client)) == 3
    await rec.close()


async def test_api_failures_never_reach_the_caller(api: Any, client: KubeClient) -> None:
    rec = EventRecorder(client, "ctl", "h", clock=FakeClock())
    before = dropped("write_failed")
    api.faults.error_code = 403
    api.faults.error_rate = 1.0
    rec.event(provider(), "Normal", "R", "m")
    await rec.flush()
    assert dropped("write_failed") - before == 1
    api.faults.reset()
    await rec.close()
    rec.event(provider(), "Normal", "R", "after close: ignored")
    assert await events(client) == []


async def test_deleted_event_is_recreated(client: KubeClient) -> None:
    clock = FakeClock()
    rec = EventRecorder(client, "ctl", "h", clock=clock)
    rec.event(provider(), "Normal", "R", "m")
    await rec.flush()
    [event] = await events(client)
    await client.delete(EVENTS, event["metadata"]["name"], "default")
    rec.event(provider(), "Normal", "R", "m")
    await rec.flush()
    [again] = await events(client)
    assert again["count"] == 2
    await rec.close()


async def test_cluster_scoped_objects_go_to_default(client: KubeClient) -> None:
    rec = EventRecorder(client, "ctl", "h", clock=FakeClock())
    rec.event(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}},
        "Normal",
        "R",
        "m",
    )
    await rec.flush()
    [event] = await events(client)
    assert event["metadata"]["namespace"] == "default"
    assert event["involvedObject"] == {"kind": "Namespace", "apiVersion": "v1", "name": "team-a"}
    await rec.close()


def test_event_outside_a_loop_is_queued_not_lost() -> None:
    rec = EventRecorder(object(), "ctl", "h", clock=FakeClock())  # type: ignore[arg-type]
    rec.event(provider(), "Normal", "R", "m")
    assert rec._queue.qsize() == 1  # the writer starts with the next event inside a loop
    assert rec.dropped == 0


async def test_events_recorded_outside_a_loop_are_written_by_flush(client: KubeClient) -> None:
    rec = EventRecorder(client, "ctl", "h", clock=FakeClock())
    await asyncio.to_thread(rec.event, provider(), "Normal", "Early", "before the loop ran it")
    async with asyncio.timeout(10):  # no writer ran yet: flush must start one, not hang
        await rec.flush()
    assert [e["reason"] for e in await events(client)] == ["Early"]
    await rec.close()
