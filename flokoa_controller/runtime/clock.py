"""Clocks: monotonic time that follows the event loop, injectable for tests.

Everything in the runtime that measures durations or schedules work takes a ``Clock``: a
zero-argument callable returning monotonic seconds. The default, :func:`monotonic`, reads the
running event loop's clock (so ``looptime`` and other fake-time loops drive it) and falls back
to :func:`time.monotonic` when no loop runs. asyncio's default loop clock *is*
``time.monotonic``, so both sources agree in production.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["Clock", "FakeClock", "monotonic"]

Clock = Callable[[], float]
"""A source of monotonic time in seconds (only differences are meaningful)."""


def monotonic() -> float:
    """Return the running event loop's time, or ``time.monotonic()`` outside a loop."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


class FakeClock:
    """A manually advanced clock for synchronous tests of time-based logic.

    Call the instance to read the time; :meth:`advance` moves it forward.
    """

    def __init__(self, start: float = 0.0) -> None:
        """Start the clock at ``start`` seconds."""
        self.now = start

    def __call__(self) -> float:
        """Return the current fake time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (which must not be negative)."""
        if seconds < 0:
            raise ValueError("a clock never goes backwards")
        self.now += seconds
