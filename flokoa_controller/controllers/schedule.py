"""When to probe a ModelProvider (or check a Model): on change, after a jittered interval,
or after a backoff.

Changes are read from the object's own status (``observedGeneration``, ``secretHash``,
``lastProbeTime`` and the conditions), so a restarted controller (or a new leader) sees them
exactly as the one before it did. The time of the last probe is kept in memory
(:class:`DueTimes`), because a probe whose outcome changes nothing writes nothing: a
converged, unchanged cluster costs zero writes. ``lastProbeTime`` is therefore the time of
the last probe that changed the status.

- **Change**: the spec generation or the ``secretHash`` differ from the ones the last probe
  saw, or the status is not the outcome of a check at all → probe now.
- **Re-validation**: after a conclusive outcome (success, rejected credentials, wrong URL,
  untrusted certificate, ...) the next probe is due ``interval * (1 + jitter)`` after the
  last probe (remembered, else ``lastProbeTime``). The jitter (up to 10 %) is derived from
  the object's UID and the probe time, so providers created together spread out.
- **Start-up**: with nothing remembered (a restart, a new leader), an object whose
  re-validation is overdue by its status is due at a point in ``[now, now + interval)``
  derived from its UID (:func:`revalidation`): a restart probes and writes nothing at once,
  and the overdue objects spread over one interval instead of arriving as a herd.
- **Backoff**: after a transient failure (5xx, timeout, unreachable, a Secret read that
  failed) the next attempt waits as long as the failure has lasted so far — the time between
  the condition's ``lastTransitionTime`` (the start of the outage) and the last attempt —
  clamped to ``[base, cap]``. Attempts thus double their spacing (1 s, 1 s, 2 s, 4 s, ...)
  up to ``cap``; the outage start is read back from status, so the series survives restarts.

Models (:func:`decide_check`) follow the same rules, read from *their* status
(``lastCheckTime``, ``observedGeneration``, ``providerHash``): a Model is checked when it
changed, when the provider state its last check relied on (``providerHash``: the provider's
UID, generation, ``secretHash`` and ``lastProbeTime`` — which move only when a probe of the
provider changed its status, e.g. a rotation or a revoked key) is no longer the current one,
at its own jittered re-validation interval after a conclusive answer, or, after a transient
failure, once the backoff has passed.
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
    "DueTimes",
    "LastCheck",
    "LastProbe",
    "Schedule",
    "decide",
    "decide_check",
    "jitter_fraction",
    "revalidation",
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
    """When not probing: seconds until the next probe is due (> 0)."""
    cause: str
    """Why (for logs): ``new``, ``generation``, ``secretHash``, ``provider`` (changes),
    ``interval``, ``retry``, ``due`` (a remembered due time passed), ``fresh`` (nothing due
    yet), ``start`` (overdue by status after a restart: spread over one interval)."""


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
    change = _changed(last, generation, secret_hash)
    if change is not None:
        return change
    probed = min(last.time, now)  # a clock ahead of ours must not postpone the next probe
    due = probed + timedelta(seconds=_delay(last, schedule, f"{seed}@{last.time.isoformat()}"))
    return _until(now, due, "retry" if last.reason in RETRY_REASONS else "interval")


def decide_check(
    now: datetime,
    last: LastCheck | None,
    *,
    generation: int,
    provider_hash: str,
    schedule: Schedule,
    seed: str,
) -> Decision:
    """Whether to check a Model now, given its last check (``last``, from status).

    ``last`` is ``None`` when the status is not the outcome of a check (never checked, or
    the provider was missing or not ready, or the spec invalid). ``provider_hash``
    describes the provider as it is now. ``seed`` (the Model's UID) feeds the jitter of
    the re-validation interval together with the last check time.
    """
    if last is None:
        return Decision(True, 0.0, "new")
    change = _changed(last, generation, provider_hash)
    if change is not None:
        return change
    if last.reason not in RETRY_REASONS:
        jitter = jitter_fraction(f"{seed}@{last.time.isoformat()}", schedule.jitter)
        due = min(last.time, now) + timedelta(seconds=schedule.interval * (1.0 + jitter))
        return _until(now, due, "interval")
    # lastCheckTime has whole seconds: count from the end of that second, so the wait is
    # never shorter than the backoff; a clock ahead of ours must not postpone the retry.
    checked = min(last.time, now) + timedelta(seconds=1)
    delay = _backoff(last.time, last.failing_since, schedule)
    return _until(now, checked + timedelta(seconds=delay), "retry")


def _changed(last: LastProbe | LastCheck, generation: int, digest: str) -> Decision | None:
    """Due now because something changed since ``last``: the generation, or the digest of
    the inputs (``secretHash`` of a probe, ``providerHash`` of a model check); None: no
    change."""
    if last.generation != generation:
        return Decision(True, 0.0, "generation")
    if isinstance(last, LastProbe):
        return Decision(True, 0.0, "secretHash") if last.secret_hash != digest else None
    return Decision(True, 0.0, "provider") if last.provider_hash != digest else None


def _until(now: datetime, due: datetime, cause: str) -> Decision:
    """Due now (for ``cause``) once ``due`` has come, else come back when it does."""
    remaining = (due - now).total_seconds()
    if remaining <= 0:
        return Decision(True, 0.0, cause)
    return Decision(False, remaining, "fresh")


CHANGE_CAUSES: Final = frozenset({"new", "generation", "secretHash", "provider"})
"""Decision causes that mean the object (or what its last check relied on) changed."""


def revalidation(
    now: datetime,
    decision: Decision,
    remembered: datetime | None,
    *,
    schedule: Schedule,
    seed: str,
) -> tuple[Decision, datetime | None]:
    """Combine the status' ``decision`` with the ``remembered`` due time of the next probe.

    Returns the decision and the due time to remember (``None``: probe now, nothing to
    remember). A change always probes now. A remembered due time governs the timing
    otherwise. With nothing remembered (a restart), an object overdue for re-validation by
    its status is due at a point in ``[now, now + interval)`` derived from ``seed`` (its
    UID), so that a restart costs no probe at once and the overdue objects spread out; an
    overdue retry is made now.
    """
    if decision.probe and decision.cause in CHANGE_CAUSES:
        return decision, None
    if remembered is not None:
        remaining = (remembered - now).total_seconds()
        if remaining <= 0:
            return Decision(True, 0.0, "due"), None
        return Decision(False, remaining, "fresh"), remembered
    if decision.probe and decision.cause == "interval":
        spread = max(1e-3, schedule.interval * jitter_fraction(f"{seed}@start", 1.0))
        return Decision(False, spread, "start"), now + timedelta(seconds=spread)
    if decision.probe:
        return decision, None
    return decision, now + timedelta(seconds=decision.requeue_after)


class DueTimes:
    """When the next probe of each object is due, in memory.

    Keyed by the object's ``namespace/name``, and valid for one UID only (an object deleted
    and re-created under the same name starts afresh). Reconcilers drop the entry of an
    object that is gone, so at most one entry per live object is held.
    """

    def __init__(self) -> None:
        """An empty table."""
        self._due: dict[str, tuple[str, datetime]] = {}

    def __len__(self) -> int:
        """How many objects have a due time."""
        return len(self._due)

    def get(self, key: str, uid: str) -> datetime | None:
        """The due time remembered for ``key`` with ``uid`` (``None``: nothing remembered)."""
        entry = self._due.get(key)
        return entry[1] if entry is not None and entry[0] == uid else None

    def set(self, key: str, uid: str, due: datetime | None) -> None:
        """Remember ``due`` for ``key`` with ``uid`` (``None`` forgets it)."""
        if due is None:
            self._due.pop(key, None)
        else:
            self._due[key] = (uid, due)

    def forget(self, key: str) -> None:
        """Drop what is remembered for ``key``."""
        self._due.pop(key, None)
