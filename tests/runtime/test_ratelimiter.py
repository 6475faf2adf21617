"""Rate limiter arithmetic (client-go's numbers), with an injected clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flokoa_controller.runtime.clock import FakeClock
from flokoa_controller.runtime.ratelimiter import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    default_controller_rate_limiter,
)


def test_exponential_doubles_from_base_and_caps() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("a") for _ in range(20)]
    assert delays[:5] == [0.005, 0.01, 0.02, 0.04, 0.08]
    assert delays[17] == pytest.approx(0.005 * 2**17)  # 655.36 s, still under the cap
    assert delays[18] == 1000.0  # 1310.72 s capped
    assert delays[19] == 1000.0
    assert limiter.num_requeues("a") == 20
    assert limiter.num_requeues("b") == 0


def test_exponential_is_per_item_and_forget_resets() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(0.1, 5.0)
    assert [limiter.when("a") for _ in range(3)] == [0.1, 0.2, 0.4]
    assert limiter.when("b") == 0.1
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == 0.1
    limiter.forget("never-seen")  # no error


def test_exponential_is_overflow_safe() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter()
    for _ in range(5000):  # 2**5000 overflows a float
        delay = limiter.when("a")
    assert delay == 1000.0
    assert limiter.num_requeues("a") == 5000


@given(
    base=st.floats(min_value=1e-6, max_value=10.0),
    cap=st.floats(min_value=0.0, max_value=1e6),
    n=st.integers(min_value=1, max_value=2000),
)
def test_exponential_bounded_and_monotonic(base: float, cap: float, n: int) -> None:
    limiter: ItemExponentialFailureRateLimiter[int] = ItemExponentialFailureRateLimiter(base, cap)
    delays = [limiter.when(1) for _ in range(n)]
    assert all(0 <= d <= cap for d in delays)
    assert delays == sorted(delays)
    assert delays[0] == min(base, cap)


def test_bucket_burst_then_qps_then_refill() -> None:
    clock = FakeClock(100.0)
    limiter: BucketRateLimiter[str] = BucketRateLimiter(qps=10, burst=100, clock=clock)
    assert [limiter.when(str(i)) for i in range(100)] == [0.0] * 100
    # The bucket is empty: each further call reserves a future token, 1/qps apart.
    assert limiter.when("x") == pytest.approx(0.1)
    assert limiter.when("x") == pytest.approx(0.2)
    assert limiter.when("y") == pytest.approx(0.3)
    # 0.5 s later, 5 tokens have been produced: 3 repay the debt, then 2 are free.
    clock.advance(0.5)
    assert limiter.when("z") == 0.0
    assert limiter.when("z") == 0.0
    assert limiter.when("z") == pytest.approx(0.1)
    # A long pause refills the bucket to burst, not beyond.
    clock.advance(3600)
    assert [limiter.when("w") for _ in range(100)] == [0.0] * 100
    assert limiter.when("w") == pytest.approx(0.1)
    assert limiter.num_requeues("w") == 0
    limiter.forget("w")


def test_bucket_with_zero_burst() -> None:
    clock = FakeClock()
    limiter: BucketRateLimiter[str] = BucketRateLimiter(qps=2, burst=0, clock=clock)
    assert limiter.when("a") == pytest.approx(0.5)
    assert limiter.when("a") == pytest.approx(1.0)


def test_bucket_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        BucketRateLimiter(qps=0)
    with pytest.raises(ValueError):
        BucketRateLimiter(qps=1, burst=-1)
    with pytest.raises(ValueError):
        ItemExponentialFailureRateLimiter(-1.0)


def test_max_of_takes_the_longest_delay_and_highest_count() -> None:
    clock = FakeClock()
    exp: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(1.0, 100.0)
    bucket: BucketRateLimiter[str] = BucketRateLimiter(qps=1, burst=1, clock=clock)
    limiter = MaxOfRateLimiter(exp, bucket)
    assert limiter.when("a") == 1.0  # exp 1, bucket 0
    assert limiter.when("b") == 1.0  # exp 1, bucket 1
    assert limiter.when("b") == 2.0  # exp 2, bucket 2
    assert limiter.when("c") == 3.0  # exp 1, bucket 3
    assert limiter.num_requeues("b") == 2
    limiter.forget("b")
    assert limiter.num_requeues("b") == 0
    assert exp.num_requeues("a") == 1
    with pytest.raises(ValueError):
        MaxOfRateLimiter()


def test_default_controller_rate_limiter() -> None:
    clock = FakeClock()
    limiter: MaxOfRateLimiter[str] = default_controller_rate_limiter(clock=clock)
    # One failing item: exponential from 5 ms.
    assert [limiter.when("a") for _ in range(3)] == [0.005, 0.01, 0.02]
    # A storm over many items: after the burst of 100 the global 10 qps dominates.
    delays = [limiter.when(f"item-{i}") for i in range(200)]
    assert delays[:97] == [0.005] * 97
    assert delays[97] == pytest.approx(0.1)
    assert delays[-1] == pytest.approx(10.3)
