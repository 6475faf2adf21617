"""Reflector backoff: 0.8 s doubling to a 30 s cap, full jitter, reset after a quiet period."""

from __future__ import annotations

import pytest

from flokoa_controller.runtime.backoff import Backoff
from flokoa_controller.runtime.clock import FakeClock


def test_ceilings_double_to_the_cap_without_jitter() -> None:
    clock = FakeClock()
    backoff = Backoff(jitter=False, clock=clock)
    delays = []
    for _ in range(8):
        delays.append(backoff.next_delay())
        clock.advance(1)
    assert delays == pytest.approx([0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0])


def test_full_jitter_draws_below_the_ceiling() -> None:
    draws = iter([0.0, 0.5, 0.999])
    backoff = Backoff(clock=FakeClock(), rng=lambda: next(draws))
    assert backoff.next_delay() == 0.0
    assert backoff.next_delay() == pytest.approx(0.8)
    assert backoff.next_delay() == pytest.approx(3.2 * 0.999)


def test_resets_after_two_quiet_minutes_and_on_demand() -> None:
    clock = FakeClock()
    backoff = Backoff(jitter=False, clock=clock)
    for _ in range(4):
        backoff.next_delay()
    clock.advance(119)
    assert backoff.next_delay() == pytest.approx(12.8)
    clock.advance(120)
    assert backoff.next_delay() == pytest.approx(0.8)
    backoff.next_delay()
    backoff.reset()
    assert backoff.failures == 0
    assert backoff.next_delay() == pytest.approx(0.8)
