"""When a Model is checked again, read from its status: ``last_check``, ``provider_hash``
and ``decide_check``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flokoa_controller.controllers.conditions import Reason, format_time
from flokoa_controller.controllers.model import last_check, provider_hash
from flokoa_controller.controllers.schedule import LastCheck, Schedule, decide_check

T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
S = Schedule(interval=600, jitter=0.1, backoff_base=1, backoff_cap=300)


def cond(type_: str, status: str, reason: str, at: datetime = T0, gen: int = 2) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": "",
        "lastTransitionTime": format_time(at),
        "observedGeneration": gen,
    }


def model_status(
    reason: str = Reason.MODEL_FOUND,
    *,
    checked: datetime | None = T0,
    available_since: datetime = T0,
    gen: int = 2,
) -> dict[str, Any]:
    ok = reason == Reason.MODEL_FOUND
    status: dict[str, Any] = {
        "observedGeneration": gen,
        "ready": ok,
        "conditions": [
            cond("Ready", "True" if ok else "False", reason, gen=gen),
            cond("ProviderReady", "True", "ProviderReady", gen=gen),
            cond("ModelAvailable", "True" if ok else "Unknown", reason, available_since, gen),
        ],
        "providerHash": "ph",
    }
    if checked is not None:
        status["lastCheckTime"] = format_time(checked)
    return status


def provider(**status: Any) -> dict[str, Any]:
    base = {"secretHash": "s1", "lastProbeTime": format_time(T0)}
    return {"metadata": {"uid": "u1", "generation": 1}, "status": {**base, **status}}


def test_provider_hash_follows_every_probe_and_change() -> None:
    first = provider_hash(provider())
    assert first == provider_hash(provider())  # deterministic (replicas, restarts)
    assert len(first) == 64
    changed = [
        provider(secretHash="s2"),  # rotation, even within the same second
        provider(lastProbeTime=format_time(T0 + timedelta(seconds=1))),  # probed again
        {**provider(), "metadata": {"uid": "u2", "generation": 1}},  # re-created
        {**provider(), "metadata": {"uid": "u1", "generation": 2}},  # spec changed
    ]
    assert len({first, *(provider_hash(p) for p in changed)}) == 5
    # conditions, messages, endpoint: not part of it (a check does not depend on them)
    assert provider_hash(provider(conditions=[{"type": "Ready"}], endpoint="x")) == first
    assert provider_hash({}) == provider_hash({"metadata": None, "status": "odd"})


def test_last_check_reads_a_check_outcome_only() -> None:
    got = last_check(model_status())
    assert got == LastCheck(T0, 2, "ph", Reason.MODEL_FOUND, T0)
    for reason in (Reason.PROVIDER_NOT_READY, Reason.PROVIDER_NOT_FOUND, Reason.INVALID_SPEC):
        assert last_check(model_status(reason)) is None
    assert last_check(model_status(checked=None)) is None  # never checked (or pre-upgrade)
    stale = model_status()
    stale["conditions"][0]["observedGeneration"] = 1  # Ready computed for another generation
    assert last_check(stale) is None
    assert last_check({"lastCheckTime": "garbage", "observedGeneration": 2}) is None
    assert last_check({}) is None


def test_outage_starts_no_earlier_than_the_provider_turned_ready() -> None:
    status = model_status(Reason.PROVIDER_UNAVAILABLE, available_since=T0 - timedelta(hours=1))
    assert last_check(status) is not None
    assert last_check(status).failing_since == T0 - timedelta(hours=1)  # type: ignore[union-attr]
    ready_since = T0 - timedelta(seconds=5)
    bounded = last_check(status, provider_ready_since=ready_since)
    assert bounded is not None
    assert bounded.failing_since == ready_since


def test_changes_check_now() -> None:
    last = LastCheck(T0, 2, "ph", Reason.MODEL_FOUND)
    d = decide_check(T0, None, generation=2, provider_hash="ph", schedule=S, seed="u")
    assert (d.probe, d.cause) == (True, "new")
    d = decide_check(T0, last, generation=3, provider_hash="ph", schedule=S, seed="u")
    assert (d.probe, d.cause) == (True, "generation")
    d = decide_check(T0, last, generation=2, provider_hash="other", schedule=S, seed="u")
    assert (d.probe, d.cause) == (True, "provider")


def test_a_conclusive_answer_is_checked_again_after_the_jittered_interval() -> None:
    """A conclusive answer has its own re-validation timer: interval * (1 + jitter)."""
    for reason in (
        Reason.MODEL_FOUND,
        Reason.MODEL_NOT_FOUND,
        Reason.DEPLOYMENT_NOT_VERIFIED,
        Reason.INVALID_CREDENTIALS,
    ):
        last = LastCheck(T0, 2, "ph", reason)
        d = decide_check(T0, last, generation=2, provider_hash="ph", schedule=S, seed="u")
        assert not d.probe
        assert S.interval <= d.requeue_after < S.interval * (1 + S.jitter)
        due = T0 + timedelta(seconds=d.requeue_after)
        d = decide_check(due, last, generation=2, provider_hash="ph", schedule=S, seed="u")
        assert (d.probe, d.cause) == (True, "interval"), reason
        early = due - timedelta(seconds=1)
        d = decide_check(early, last, generation=2, provider_hash="ph", schedule=S, seed="u")
        assert not d.probe
        assert d.requeue_after == 1.0


def test_transient_failure_backs_off_by_the_outage_length() -> None:
    def wait(at: datetime, since: datetime, now: datetime) -> float:
        last = LastCheck(at, 2, "ph", Reason.PROVIDER_UNAVAILABLE, since)
        d = decide_check(now, last, generation=2, provider_hash="ph", schedule=S, seed="u")
        return 0.0 if d.probe else d.requeue_after

    # first failure: base (1 s), counted from the end of the recorded second
    assert wait(T0, T0, T0) == 2.0
    assert wait(T0, T0, T0 + timedelta(seconds=1.5)) == 0.5
    assert wait(T0, T0, T0 + timedelta(seconds=2)) == 0.0
    # failing for 8 s: wait 8 s more
    assert wait(T0 + timedelta(seconds=8), T0, T0 + timedelta(seconds=8)) == 9.0
    # capped at min(cap, interval)
    assert wait(T0 + timedelta(hours=2), T0, T0 + timedelta(hours=2)) == 301.0
    short = Schedule(interval=30, backoff_cap=300)
    last = LastCheck(T0 + timedelta(hours=2), 2, "ph", Reason.TIMEOUT, T0)
    d = decide_check(
        T0 + timedelta(hours=2), last, generation=2, provider_hash="ph", schedule=short, seed="u"
    )
    assert d.requeue_after == 31.0
    # a check time ahead of our clock does not postpone the retry
    assert wait(T0 + timedelta(hours=1), T0 + timedelta(hours=1), T0) == 2.0
    # a change beats the backoff
    last = LastCheck(T0, 2, "ph", Reason.TIMEOUT, T0)
    assert decide_check(T0, last, generation=2, provider_hash="new", schedule=S, seed="u").probe
