"""Probe scheduling: change → now; conclusive → jittered interval; transient → backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from flokoa_controller.controllers.conditions import Reason
from flokoa_controller.controllers.schedule import LastProbe, Schedule, decide, jitter_fraction

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
