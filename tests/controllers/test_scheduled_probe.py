"""The scheduled-probe pipeline on its own: cached state in → status, events, requeue out.

Time is a variable the test moves; the check is a coroutine returning a canned outcome;
the writer records what it was asked to write (and writes only differences, as
``StatusWriter`` does). Nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from flokoa_controller.controllers.conditions import FALSE, TRUE, Cond, ConditionStatus
from flokoa_controller.controllers.probes_inflight import InlineProbes
from flokoa_controller.controllers.schedule import Decision, DueTimes, Schedule
from flokoa_controller.controllers.scheduled_probe import (
    Check,
    StatusRules,
    probe_when_due,
    same_condition,
    write_unchecked,
)
from flokoa_controller.controllers.status import status_patch
from flokoa_controller.runtime.controller import Request, Result

T = TypeVar("T")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
FIELDS = ("ready", "conditions", "observedGeneration", "lastProbeTime", "secretHash")
REQUEST = Request("team", "p")


@dataclass(frozen=True)
class Verdict:
    ready: Cond

    def updates(self) -> list[tuple[str, ConditionStatus, str, str]]:
        return [("Ready", *self.ready)]

    def removed(self) -> tuple[str, ...]:
        return ()


OK = Verdict((TRUE, "ProbeSucceeded", "fine"))
DOWN = Verdict((FALSE, "EndpointUnreachable", "no answer"))


class Writer:
    """Writes only differences, like ``StatusWriter.write``; records each write."""

    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []

    async def write(
        self, obj: Mapping[str, Any], desired: Mapping[str, Any], managed: tuple[str, ...]
    ) -> bool:
        if status_patch(obj.get("status") or {}, desired, managed) is None:
            return False
        self.written.append(dict(desired))
        return True


class InFlight:
    """A runner whose check is always still in flight."""

    def __init__(self) -> None:
        self.started: list[Hashable] = []
        self.forgotten: list[str] = []

    async def run(
        self,
        key: str,
        namespace: str,
        inputs: Hashable,
        job: Callable[[], Awaitable[T]],
        notify: Callable[[], None],
    ) -> T | None:
        self.started.append((key, namespace, inputs))
        return None

    def forget(self, key: str) -> None:
        self.forgotten.append(key)


@dataclass
class Rig:
    """A reconciler's machinery (satisfies ``Reconciling``) and what came out."""

    clock: datetime = T0
    writer: Writer = field(default_factory=Writer)
    probes: Any = field(default_factory=InlineProbes)
    schedule: Schedule = field(default_factory=lambda: Schedule(interval=600.0, jitter=0.0))
    due: DueTimes = field(default_factory=DueTimes)
    requeued: list[Request] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    runs: int = 0

    def now(self) -> datetime:
        return self.clock

    def requeue(self, request: Request) -> None:
        self.requeued.append(request)

    def rules(self, *, floor_at_backoff: bool = True) -> StatusRules[Verdict]:
        def events(obj: Mapping[str, Any], old: Mapping[str, Any], verdict: Verdict) -> None:
            self.events.append((verdict.ready[1], str(old.get("secretHash"))))

        return StatusRules("Thing", FIELDS, "lastProbeTime", "secretHash", events, floor_at_backoff)

    def check(self, verdict: Verdict, digest: str = "h1") -> Check[Verdict, Verdict]:
        async def run() -> Verdict:
            self.runs += 1
            return verdict

        def due(
            now: datetime, recorded: Mapping[str, Any], digest: str, at: datetime | None
        ) -> Decision:
            """Due on a hash change, or 600 s after the last check (a failure: 5 s)."""
            if recorded.get("secretHash") != digest or not recorded.get("lastProbeTime"):
                return Decision(True, 0.0, "new")
            last = at or datetime.fromisoformat(str(recorded["lastProbeTime"]))
            wait = 600.0 if recorded.get("ready") else 5.0
            remaining = (last + timedelta(seconds=wait) - now).total_seconds()
            return Decision(remaining <= 0, max(remaining, 0.0), "interval")

        return Check(
            uid="uid-1",
            digest=digest,
            run=run,
            judge=lambda v: (v, {"secretHash": digest}),
            due=due,
        )


def obj(status: Mapping[str, Any] | None = None) -> dict[str, Any]:
    meta = {"name": "p", "namespace": "team", "uid": "uid-1", "generation": 1}
    return {"metadata": meta, "status": dict(status or {})}


BASE = {"observedGeneration": 1}


async def test_a_new_object_is_checked_written_with_its_time_and_requeued() -> None:
    rig = Rig()
    result = await probe_when_due(rig, rig.rules(), rig.check(OK), REQUEST, obj(), BASE)
    assert rig.runs == 1
    [status] = rig.writer.written
    assert status["lastProbeTime"] == "2026-01-01T00:00:00Z"
    assert status["secretHash"] == "h1"
    assert status["ready"] is True
    assert rig.events == [("ProbeSucceeded", "None")]
    assert result == Result(requeue_after=600.0)
    assert rig.due.get("team/p", "uid-1") == T0 + timedelta(seconds=600)


async def test_not_due_writes_nothing_and_requeues_for_the_due_time() -> None:
    rig = Rig()
    await probe_when_due(rig, rig.rules(), rig.check(OK), REQUEST, obj(), BASE)
    cached = obj(rig.writer.written[-1])
    rig.clock = T0 + timedelta(seconds=100)
    result = await probe_when_due(rig, rig.rules(), rig.check(OK), REQUEST, cached, BASE)
    assert rig.runs == 1
    assert len(rig.writer.written) == 1
    assert result == Result(requeue_after=500.0)


async def test_a_steady_outcome_writes_nothing_and_keeps_the_time() -> None:
    rig = Rig()
    await probe_when_due(rig, rig.rules(), rig.check(OK), REQUEST, obj(), BASE)
    cached = obj(rig.writer.written[-1])
    kept = {**BASE, "lastProbeTime": cached["status"]["lastProbeTime"]}  # as reconcilers do
    rig.clock = T0 + timedelta(seconds=600)
    result = await probe_when_due(rig, rig.rules(), rig.check(OK), REQUEST, cached, kept)
    assert rig.runs == 2
    assert len(rig.writer.written) == 1, "nothing changed, nothing written"
    assert len(rig.events) == 1, "no write, no event"
    assert result == Result(requeue_after=600.0)


async def test_a_changed_outcome_moves_the_time_and_emits_the_transition() -> None:
    rig = Rig()
    await probe_when_due(rig, rig.rules(), rig.check(OK), REQUEST, obj(), BASE)
    cached = obj(rig.writer.written[-1])
    rig.clock = T0 + timedelta(seconds=600)
    result = await probe_when_due(rig, rig.rules(), rig.check(DOWN), REQUEST, cached, BASE)
    status = rig.writer.written[-1]
    assert status["ready"] is False
    assert status["lastProbeTime"] == "2026-01-01T00:10:00Z"
    assert rig.events[-1] == ("EndpointUnreachable", "h1")
    assert result == Result(requeue_after=5.0)


@pytest.mark.parametrize(("floor", "delay"), [(True, 5.0), (False, 1.0)])
async def test_the_requeue_after_a_check_is_floored_at_the_backoff_when_asked(
    floor: bool, delay: float
) -> None:
    rig = Rig(schedule=Schedule(interval=600.0, jitter=0.0, backoff_base=5.0))
    check = rig.check(DOWN)
    original = check.due

    def soon(now: datetime, rec: Mapping[str, Any], d: str, at: datetime | None) -> Decision:
        return Decision(False, 1.0, "fresh") if at is not None else original(now, rec, d, at)

    check = Check(check.uid, check.digest, check.run, check.judge, soon)
    rules = rig.rules(floor_at_backoff=floor)
    result = await probe_when_due(rig, rules, check, REQUEST, obj(), BASE)
    assert result == Result(requeue_after=delay)


async def test_a_status_edited_by_somebody_else_is_checked_at_once() -> None:
    rig = Rig()
    await probe_when_due(rig, rig.rules(), rig.check(OK), REQUEST, obj(), BASE)
    edited = obj({**rig.writer.written[-1], "ready": False})  # Ready says True
    rig.clock = T0 + timedelta(seconds=10)
    await probe_when_due(rig, rig.rules(), rig.check(OK), REQUEST, edited, BASE)
    assert rig.runs == 2
    assert rig.writer.written[-1]["ready"] is True


async def test_a_check_in_flight_returns_without_requeue_and_with_its_inputs() -> None:
    rig = Rig(probes=InFlight())
    result = await probe_when_due(rig, rig.rules(), rig.check(OK), REQUEST, obj(), BASE)
    assert result == Result()
    assert rig.probes.started == [("Thing/team/p", "team", ("uid-1", 1, "h1"))]
    assert rig.writer.written == []
    assert rig.runs == 0


async def test_not_due_forgets_a_check_in_flight() -> None:
    rig = Rig()
    await probe_when_due(rig, rig.rules(), rig.check(OK), REQUEST, obj(), BASE)
    cached = obj(rig.writer.written[-1])
    rig.probes = InFlight()
    await probe_when_due(rig, rig.rules(), rig.check(OK), REQUEST, cached, BASE)
    assert rig.probes.forgotten == ["Thing/team/p"]
    assert rig.probes.started == []


async def test_write_unchecked_forgets_the_check_and_writes_the_verdict() -> None:
    rig = Rig(probes=InFlight())
    result = await write_unchecked(rig, rig.rules(), REQUEST, obj(), BASE, DOWN)
    assert result == Result()
    assert rig.probes.forgotten == ["Thing/team/p"]
    assert rig.writer.written[-1]["conditions"][0]["reason"] == "EndpointUnreachable"
    assert "lastProbeTime" not in rig.writer.written[-1]


def test_same_condition() -> None:
    before = {"type": "Ready", "status": TRUE, "reason": "ProbeSucceeded", "message": "a"}
    assert same_condition(before, (TRUE, "ProbeSucceeded", "b"))
    assert not same_condition(before, (TRUE, "RateLimited", "b"))
    assert not same_condition(None, (TRUE, "ProbeSucceeded", "b"))
