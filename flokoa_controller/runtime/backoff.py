"""Exponential backoff with full jitter and a reset after a quiet period (reflector retries).

Defaults follow client-go's reflector: 0.8 s initial delay, factor 2, capped at 30 s, reset
to the initial delay once 2 minutes have passed without a failure. "Full jitter" draws each
delay uniformly from ``[0, ceiling]`` so that many clients failing together spread out.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from flokoa_controller.runtime.clock import Clock, monotonic

__all__ = ["Backoff"]


@dataclass
class Backoff:
    """Delays for consecutive failures; :meth:`next_delay` after each failure."""

    initial: float = 0.8
    """Ceiling of the first delay, in seconds."""
    factor: float = 2.0
    """Growth of the ceiling per consecutive failure."""
    cap: float = 30.0
    """Largest ceiling, in seconds."""
    reset_after: float = 120.0
    """A failure this long (seconds) after the previous one starts again from ``initial``."""
    jitter: bool = True
    """Draw the delay uniformly from ``[0, ceiling]`` (full jitter); else use the ceiling."""
    clock: Clock = monotonic
    """Monotonic time source (injectable for tests)."""
    rng: Callable[[], float] = field(default=random.random)
    """Uniform ``[0, 1)`` source (injectable for tests)."""

    _steps: int = field(default=0, init=False)
    _last_failure: float | None = field(default=None, init=False)

    def ceiling(self) -> float:
        """The ceiling the next delay would be drawn under (without recording a failure)."""
        now = self.clock()
        steps = self._steps
        if self._last_failure is not None and now - self._last_failure >= self.reset_after:
            steps = 0
        return float(min(self.cap, self.initial * self.factor**steps))

    def next_delay(self) -> float:
        """Record a failure and return how long to wait before the next attempt."""
        ceiling = self.ceiling()
        now = self.clock()
        if self._last_failure is not None and now - self._last_failure >= self.reset_after:
            self._steps = 0
        self._last_failure = now
        if ceiling < self.cap:
            self._steps += 1
        return ceiling * self.rng() if self.jitter else ceiling

    def reset(self) -> None:
        """Forget past failures: the next delay starts from ``initial`` again."""
        self._steps = 0
        self._last_failure = None

    @property
    def failures(self) -> int:
        """Number of consecutive failures counted (capped once the ceiling reaches ``cap``)."""
        return self._steps
