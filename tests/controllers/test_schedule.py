"""Probe scheduling: change → now; conclusive → jittered interval; transient → backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from flokoa_controller.controllers.conditions import Reason
from flokoa_controller.controllers.schedule import (
    Decision,
    DueTimes,
    LastProbe,
    Schedule,
    decide,
    jitter_fraction,
    revalidation,
)

T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
S = Schedule(interval=600, jitter=0.1, backoff_base=1, backoff_cap=300)


def last(reason: str = Reason.PROBE_SUCCEEDED, *, at: datetime = T0, since: datetime | None = None):
    return LastProbe(at, 3, "h", reason, since)


def test_never_probed_generation_and_hash_changes_probe_now() -> None:
    assert decide(T0, None, generation=1, secret_hash="h", schedule=S, seed="u").cause == "new"
    d = decide(T0, last(), generation=4, secret_hash="h", schedule=S, seed="u")
    assert d.probe
    assert d.cause == "generation"
    d = decide(T0, last(), generation=3, secret_hash="other", schedule=S, seed="u")
    assert d.probe
    assert d.cause == "secretHash"


def test_conclusive_outcome_waits_for_jittered_interval() -> None:
    for reason in (
        Reason.PROBE_SUCCEEDED,
        Reason.INVALID_CREDENTIALS,
        Reason.TLS_VERIFICATION_FAILED,
    ):
        d = decide(
            T0 + timedelta(seconds=10),
            last(reason),
            generation=3,
            secret_hash="h",
            schedule=S,
            seed="u",
        )
        assert not d.probe
        assert 590 <= d.requeue_after <= 650
    d = decide(
        T0 + timedelta(seconds=661), last(), generation=3, secret_hash="h", schedule=S, seed="u"
    )
    assert d.probe
    assert d.cause == "interval"


def test_jitter_is_deterministic_and_spread() -> None:
    assert jitter_fraction("a", 0.1) == jitter_fraction("a", 0.1)
    values = {round(jitter_fraction(f"uid-{i}", 0.1), 6) for i in range(100)}
    assert len(values) > 90
    assert all(0 <= v < 0.1 for v in values)


def test_transient_failure_backs_off_with_outage_length() -> None:
    # first failure: outage started at the probe itself → base delay
    d = decide(
        T0, last(Reason.TIMEOUT, since=T0), generation=3, secret_hash="h", schedule=S, seed="u"
    )
    assert not d.probe
    assert d.requeue_after == 1
    # failing for 40 s at the last probe → wait 40 s
    at = T0 + timedelta(seconds=40)
    d = decide(
        at,
        last(Reason.PROVIDER_UNAVAILABLE, at=at, since=T0),
        generation=3,
        secret_hash="h",
        schedule=S,
        seed="u",
    )
    assert d.requeue_after == 40
    # long outage: capped
    at = T0 + timedelta(hours=5)
    d = decide(
        at,
        last(Reason.UNREACHABLE, at=at, since=T0),
        generation=3,
        secret_hash="h",
        schedule=S,
        seed="u",
    )
    assert d.requeue_after == 300


def test_future_probe_time_does_not_postpone() -> None:
    future = T0 + timedelta(days=1)
    d = decide(T0, last(at=future), generation=3, secret_hash="h", schedule=S, seed="u")
    assert not d.probe
    assert d.requeue_after <= 660


@given(
    st.integers(min_value=0, max_value=10_000),
    st.sampled_from(
        sorted(
            {Reason.PROBE_SUCCEEDED, Reason.TIMEOUT, Reason.INVALID_SECRET, Reason.SECRET_NOT_FOUND}
        )
    ),
)
def test_requeue_is_positive_and_bounded(elapsed: int, reason: str) -> None:
    now = T0 + timedelta(seconds=elapsed)
    d = decide(now, last(reason, since=T0), generation=3, secret_hash="h", schedule=S, seed="x")
    if not d.probe:
        assert 0 < d.requeue_after <= 660


def test_failure_series_doubles() -> None:
    """Simulate retries: each one at its due time; spacing grows geometrically."""
    since = T0
    at = T0
    gaps = []
    for _ in range(8):
        d = decide(
            at,
            last(Reason.TIMEOUT, at=at, since=since),
            generation=3,
            secret_hash="h",
            schedule=S,
            seed="u",
        )
        gaps.append(d.requeue_after)
        at = at + timedelta(seconds=d.requeue_after)
    assert gaps == [1, 1, 2, 4, 8, 16, 32, 64]


def test_revalidation_a_change_probes_now_whatever_is_remembered() -> None:
    later = T0 + timedelta(seconds=500)
    for cause in ("new", "generation", "secretHash", "provider"):
        d, due = revalidation(T0, Decision(True, 0.0, cause), later, schedule=S, seed="u")
        assert (d.probe, d.cause, due) == (True, cause, None)


def test_revalidation_the_remembered_due_time_governs() -> None:
    """Status says "fresh" (its time is old or new): memory decides, both ways."""
    due_at = T0 + timedelta(seconds=30)
    for status in (Decision(False, 5.0, "fresh"), Decision(True, 0.0, "interval")):
        d, due = revalidation(T0, status, due_at, schedule=S, seed="u")
        assert (d.probe, d.requeue_after, due) == (False, 30.0, due_at)
        d, due = revalidation(due_at, status, due_at, schedule=S, seed="u")
        assert (d.probe, d.cause, due) == (True, "due", None)


def test_revalidation_after_a_restart_spreads_overdue_objects_over_one_interval() -> None:
    """Nothing remembered, overdue by status: due in [now, now + interval), per UID."""
    overdue = Decision(True, 0.0, "interval")
    waits = []
    for i in range(200):
        d, due = revalidation(T0, overdue, None, schedule=S, seed=f"uid-{i}")
        assert not d.probe
        assert d.cause == "start"
        assert 0 < d.requeue_after < S.interval
        assert due == T0 + timedelta(seconds=d.requeue_after)
        waits.append(d.requeue_after)
    # spread out, not a herd: every tenth of the interval gets some
    assert {int(w // (S.interval / 10)) for w in waits} == set(range(10))
    # an overdue retry is made now; a status not yet due is remembered as is
    d, due = revalidation(T0, Decision(True, 0.0, "retry"), None, schedule=S, seed="u")
    assert (d.probe, due) == (True, None)
    d, due = revalidation(T0, Decision(False, 42.0, "fresh"), None, schedule=S, seed="u")
    assert (d.probe, due) == (False, T0 + timedelta(seconds=42))


def test_due_times_hold_one_uid_per_key() -> None:
    due = DueTimes()
    due.set("ns/p", "uid-1", T0)
    assert due.get("ns/p", "uid-1") == T0
    assert due.get("ns/p", "uid-2") is None  # re-created under the same name
    due.set("ns/p", "uid-2", None)
    assert len(due) == 0
    due.set("ns/p", "uid-2", T0)
    due.forget("ns/p")
    assert due.get("ns/p", "uid-2") is None
    assert len(due) == 0
