"""Rate limiters for the workqueue (client-go ``util/workqueue`` semantics).

A rate limiter answers "how long should this item wait before it is retried?". The workqueue
calls :meth:`RateLimiter.when` on every rate-limited add and :meth:`RateLimiter.forget` once an
item has been processed successfully.

The controller default (:func:`default_controller_rate_limiter`) is the maximum of a per-item
exponential backoff (5 ms · 2^failures, capped at 1000 s) and a global token bucket (10 qps,
burst 100): a single failing object backs off exponentially, and a storm of failures across
many objects is held to 10 retries per second overall.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from flokoa_controller.runtime.clock import Clock, monotonic

__all__ = [
    "BucketRateLimiter",
    "ItemExponentialFailureRateLimiter",
    "MaxOfRateLimiter",
    "RateLimiter",
    "default_controller_rate_limiter",
]

T = TypeVar("T", bound=Hashable)
T_contra = TypeVar("T_contra", bound=Hashable, contravariant=True)


class RateLimiter(Protocol[T_contra]):
    """What the workqueue needs from a rate limiter."""

    def when(self, item: T_contra) -> float:
        """Record one more failure of ``item`` and return how long (seconds) it must wait."""
        ...

    def forget(self, item: T_contra) -> None:
        """Stop tracking ``item``: its failure history is reset."""
        ...

    def num_requeues(self, item: T_contra) -> int:
        """Return how many times ``item`` has been through :meth:`when` since it was forgotten."""
        ...


class ItemExponentialFailureRateLimiter(Generic[T]):
    """Per-item exponential backoff: ``base * 2**failures``, capped at ``cap`` seconds.

    The first failure waits ``base``, the second ``2 * base``, and so on. Overflow-safe: an
    item that has failed thousands of times waits exactly ``cap``.
    """

    __slots__ = ("_failures", "base", "cap")

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        """Create the limiter.

        ``base``: delay of the first retry in seconds (client-go: 5 ms).
        ``cap``: the longest delay in seconds (client-go: 1000 s).
        """
        if base < 0 or cap < 0:
            raise ValueError("base and cap must not be negative")
        self.base = base
        self.cap = cap
        self._failures: dict[T, int] = {}

    def when(self, item: T) -> float:
        """Return ``base * 2**n`` (n = previous failures of ``item``), at most ``cap``."""
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        try:
            backoff = math.ldexp(self.base, exp)
        except OverflowError:
            return self.cap
        return min(backoff, self.cap)

    def forget(self, item: T) -> None:
        """Reset the failure count of ``item``."""
        self._failures.pop(item, None)

    def num_requeues(self, item: T) -> int:
        """Return the failure count of ``item``."""
        return self._failures.get(item, 0)


class BucketRateLimiter(Generic[T]):
    """A global token bucket shared by all items (``qps`` tokens per second, ``burst`` max).

    Like ``golang.org/x/time/rate``'s ``Reserve``: every call takes a token, borrowing from the
    future when the bucket is empty, and returns the time until that borrowed token exists. So
    ``burst`` calls in a row get 0, and the next ones get 1/qps, 2/qps, ... It does not track
    items: :meth:`forget` does nothing and :meth:`num_requeues` is always 0.
    """

    __slots__ = ("_clock", "_last", "_tokens", "burst", "qps")

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock = monotonic) -> None:
        """Create a full bucket.

        ``qps``: tokens added per second (client-go: 10). ``burst``: bucket size (client-go:
        100). ``clock``: monotonic time source (default: the event loop's clock).
        """
        if qps <= 0:
            raise ValueError("qps must be positive")
        if burst < 0:
            raise ValueError("burst must not be negative")
        self.qps = float(qps)
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last: float | None = None

    def when(self, item: T) -> float:
        """Take one token and return how long until it is available (0 if at hand)."""
        now = self._clock()
        last = self._last
        if last is not None and now > last:
            self._tokens = min(float(self.burst), self._tokens + (now - last) * self.qps)
        if last is None or now > last:
            self._last = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.qps

    def forget(self, item: T) -> None:
        """Do nothing: the bucket is global."""

    def num_requeues(self, item: T) -> int:
        """Return 0: the bucket does not count per item."""
        return 0


class MaxOfRateLimiter(Generic[T]):
    """Combine limiters: wait the longest of their delays; requeues are the highest count."""

    __slots__ = ("limiters",)

    def __init__(self, *limiters: RateLimiter[T]) -> None:
        """Combine ``limiters`` (at least one)."""
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self.limiters: tuple[RateLimiter[T], ...] = limiters

    def when(self, item: T) -> float:
        """Ask every limiter (each records the failure) and return the longest delay."""
        return max([limiter.when(item) for limiter in self.limiters])

    def forget(self, item: T) -> None:
        """Forget ``item`` in every limiter."""
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        """Return the highest requeue count among the limiters."""
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter(
    *,
    base: float = 0.005,
    cap: float = 1000.0,
    qps: float = 10.0,
    burst: int = 100,
    clock: Clock = monotonic,
) -> MaxOfRateLimiter[T]:
    """Return controller-runtime's default limiter: max-of(exponential, token bucket).

    ``base``/``cap`` configure the per-item exponential backoff (5 ms → 1000 s) and
    ``qps``/``burst`` the global token bucket (10 qps, burst 100).
    """
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(base, cap),
        BucketRateLimiter(qps, burst, clock),
    )
