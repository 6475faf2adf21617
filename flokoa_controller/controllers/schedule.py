"""When to probe a ModelProvider: on change, after a jittered interval, or after a backoff.

The decision is derived from the object's own status (``observedGeneration``,
``secretHash``, ``lastProbeTime`` and the conditions), never from memory, so a restarted
controller (or a new leader) makes the same decision as the one before it: a converged
provider is not probed again until its interval has passed.

- **Change**: the spec generation or the ``secretHash`` differ from the ones the last probe
  saw, or the status is not the outcome of a check at all → probe now.
- **Re-validation**: after a conclusive outcome (success, rejected credentials, wrong URL,
  untrusted certificate, ...) the next probe is due ``interval * (1 + jitter)`` after
  ``lastProbeTime``. The jitter (up to 10 %) is derived from the object's UID and the probe
  time, so providers created together spread out, and a restart does not reshuffle them.
- **Backoff**: after a transient failure (5xx, timeout, unreachable, a Secret read that
  failed) the next attempt waits as long as the failure has lasted so far — the time between
  the condition's ``lastTransitionTime`` (the start of the outage) and ``lastProbeTime`` —
  clamped to ``[base, cap]``. Attempts thus double their spacing (1 s, 1 s, 2 s, 4 s, ...)
  up to ``cap``, and the series survives restarts because it is read back from status.

Models (:func:`decide_check`) follow the same rules, read from *their* status
(``lastCheckTime``, ``observedGeneration``, ``providerHash``): a Model is checked when it
changed, when the provider state its last check relied on (``providerHash``: the provider's
UID, generation, ``secretHash`` and ``lastProbeTime``) is no longer the current one — so
after every probe of its provider, i.e. at the provider's jittered re-validation interval
and right after a rotation — or, after a transient failure, once the backoff has passed. A
conclusive answer has no timer of its own: the provider's next probe brings it back, so a
Model is never checked twice for one probe of its provider.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from flokoa_controller.controllers.conditions import Reason

__all__ = [
    "DEFAULT_BACKOFF_BASE",
    "DEFAULT_BACKOFF_CAP",
    "DEFAULT_JITTER",
    "DEFAULT_REVALIDATE_INTERVAL",
    "RETRY_REASONS",
    "Decision",
    "LastCheck",
    "LastProbe",
    "Schedule",
    "decide",
    "decide_check",
    "jitter_fraction",
]

DEFAULT_REVALIDATE_INTERVAL: Final = 600.0
"""Seconds between re-validations of a provider whose configuration did not change."""
DEFAULT_JITTER: Final = 0.1
"""Largest fraction added to the interval, so probes of many providers spread out."""
DEFAULT_BACKOFF_BASE: Final = 1.0
"""Seconds before the first retry of a transient failure."""
DEFAULT_BACKOFF_CAP: Final = 300.0
"""Longest wait between retries of a transient failure (never longer than the interval)."""

RETRY_REASONS: Final = frozenset(
    {
        Reason.PROVIDER_UNAVAILABLE,
        Reason.TIMEOUT,
        Reason.UNREACHABLE,
        Reason.PROBE_ERROR,
        Reason.SECRET_ACCESS_DENIED,
        Reason.SECRET_NOT_FOUND,
        Reason.SECRET_KEY_NOT_FOUND,
    }
)
"""Outcomes retried with backoff rather than at the re-validation interval.

The two Secret reasons only get here when the cache said the Secret exists but the read
found it missing (a race with a delete, or a lagging cache): worth a quick retry.
"""


@dataclass(frozen=True, slots=True)
class Schedule:
    """The timing knobs (seconds)."""

    interval: float = DEFAULT_REVALIDATE_INTERVAL
    """Re-validation interval of a provider (``--provider-revalidate-interval``)."""
    jitter: float = DEFAULT_JITTER
    """Largest fraction of ``interval`` added as jitter."""
    backoff_base: float = DEFAULT_BACKOFF_BASE
    """First retry delay after a transient failure."""
    backoff_cap: float = DEFAULT_BACKOFF_CAP
    """Longest retry delay after a transient failure."""


@dataclass(frozen=True, slots=True)
class LastProbe:
    """What the status says about the last check of the Secret values and the endpoint."""

    time: datetime
    """``status.lastProbeTime``."""
    generation: int
    """``status.observedGeneration`` (and the Ready condition's) at that probe."""
    secret_hash: str
    """``status.secretHash`` at that probe."""
    reason: str
    """The Ready reason the probe ended with."""
    failing_since: datetime | None = None
    """For a transient failure: when the failing condition last flipped (outage start)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Probe now, or come back after ``requeue_after`` seconds."""

    probe: bool
    """Whether to read the Secrets and probe now."""
    requeue_after: float
    """When not probing: seconds until the next probe is due (> 0), or 0 when no timer is
    needed (a Model's conclusive answer: its provider's next probe brings it back)."""
    cause: str
    """Why (for logs): ``new``, ``generation``, ``secretHash``, ``provider``, ``interval``,
    ``retry``, ``fresh`` (nothing due yet)."""


@dataclass(frozen=True, slots=True)
class LastCheck:
    """What a Model's status says about its last check at the provider."""

    time: datetime
    """``status.lastCheckTime``."""
    generation: int
    """``status.observedGeneration`` (and the Ready condition's) at that check."""
    provider_hash: str
    """``status.providerHash``: the provider state the check relied on."""
    reason: str
    """The Ready reason the check ended with."""
    failing_since: datetime | None = None
    """For a transient failure: when the outage of the check started (as far as known)."""


def jitter_fraction(seed: str, jitter: float) -> float:
    """A deterministic fraction in ``[0, jitter)`` derived from ``seed``."""
    digest = hashlib.sha256(seed.encode()).digest()
    return jitter * int.from_bytes(digest[:8], "big") / 2**64


def _backoff(attempt: datetime, failing_since: datetime | None, schedule: Schedule) -> float:
    """The wait after a transient failure at ``attempt``: the outage length so far, clamped."""
    elapsed = max(0.0, (attempt - (failing_since or attempt)).total_seconds())
    cap = min(schedule.backoff_cap, schedule.interval)
    return min(cap, max(schedule.backoff_base, elapsed))


def _delay(last: LastProbe, schedule: Schedule, seed: str) -> float:
    if last.reason in RETRY_REASONS:
        return _backoff(last.time, last.failing_since, schedule)
    return schedule.interval * (1.0 + jitter_fraction(seed, schedule.jitter))


def decide(
    now: datetime,
    last: LastProbe | None,
    *,
    generation: int,
    secret_hash: str,
    schedule: Schedule,
    seed: str,
) -> Decision:
    """Whether to probe now, given the last probe recorded in status (None: never probed).

    ``seed`` (the object's UID) feeds the jitter together with the last probe time.
    """
    if last is None:
        return Decision(True, 0.0, "new")
    if last.generation != generation:
        return Decision(True, 0.0, "generation")
    if last.secret_hash != secret_hash:
        return Decision(True, 0.0, "secretHash")
    probed = min(last.time, now)  # a clock ahead of ours must not postpone the next probe
    due = probed + timedelta(seconds=_delay(last, schedule, f"{seed}@{last.time.isoformat()}"))
    remaining = (due - now).total_seconds()
    if remaining <= 0:
        return Decision(True, 0.0, "retry" if last.reason in RETRY_REASONS else "interval")
    return Decision(False, remaining, "fresh")


def decide_check(
    now: datetime,
    last: LastCheck | None,
    *,
    generation: int,
    provider_hash: str,
    schedule: Schedule,
) -> Decision:
    """Whether to check a Model now, given its last check recorded in status.

    ``last`` is ``None`` when the status is not the outcome of a check (never checked, or
    the provider was missing or not ready, or the spec invalid). ``provider_hash``
    describes the provider as it is now.
    """
    if last is None:
        return Decision(True, 0.0, "new")
    if last.generation != generation:
        return Decision(True, 0.0, "generation")
    if last.provider_hash != provider_hash:
        return Decision(True, 0.0, "provider")
    if last.reason not in RETRY_REASONS:
        return Decision(False, 0.0, "fresh")
    # lastCheckTime has whole seconds: count from the end of that second, so the wait is
    # never shorter than the backoff; a clock ahead of ours must not postpone the retry.
    checked = min(last.time, now) + timedelta(seconds=1)
    delay = _backoff(last.time, last.failing_since, schedule)
    remaining = (checked + timedelta(seconds=delay) - now).total_seconds()
    if remaining <= 0:
        return Decision(True, 0.0, "retry")
    return Decision(False, remaining, "fresh")
