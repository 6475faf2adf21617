"""The scheduled probe both reconcilers run: is a check due → run it → verdict → status → events.

A ModelProvider is *probed* (its credentials at its endpoint) and a Model is *checked* (the
model at its provider); past their preconditions both reconciles are the same pipeline,
written here once (:func:`probe_when_due`):

1. **Due?** The reconciler's :attr:`Check.due` reads the last check from the cached status
   (:mod:`.schedule`); :func:`.schedule.revalidation` applies the in-memory due time of the
   object (:class:`.DueTimes`). A status somebody else edited (:func:`.status_consistent`)
   is checked at once. Not due → requeue for when it is; nothing written.
2. **Run** the check through the reconciler's :class:`.ProbeRunner` under the key
   :attr:`Check.key`, with inputs ``(UID, generation, digest)``: a result is taken only
   while those are still current. In flight → return; its completion re-queues the object.
3. **Verdict**: :attr:`Check.judge` turns the outcome into the conditions and the status
   fields it learnt (a ``secretHash`` read, a ``resolvedModel``, the ``providerHash``).
4. **Write only differences** (:func:`commit`): the time field (``lastProbeTime``,
   ``lastCheckTime``) moves only when the outcome changes the status, so a steady outcome
   writes nothing; events are emitted only when the write happened.
5. **Requeue** at the next due time the written status implies, never at once.

Each reconciler supplies only what differs: :class:`StatusRules` (its status fields,
conditions and events, fixed per kind) and a :class:`Check` per reconcile (what to run and
how to judge it). The reconciler itself serves as the :class:`Reconciling` machinery.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from flokoa_controller.controllers.conditions import (
    TRUE,
    Cond,
    ConditionVerdict,
    Type,
    desired_status,
    find_condition,
    format_time,
    status_consistent,
)
from flokoa_controller.controllers.probes_inflight import ProbeRunner
from flokoa_controller.controllers.schedule import Decision, DueTimes, Schedule, revalidation
from flokoa_controller.controllers.status import (
    StatusWriter,
    reconcile_latest,
    status_of,
    status_patch,
)
from flokoa_controller.providers.result import ProbeResult
from flokoa_controller.runtime.controller import Request, Result
from flokoa_controller.runtime.store import Store

__all__ = [
    "Check",
    "EventSink",
    "Reconciling",
    "StatusRules",
    "commit",
    "log_outcome",
    "no_requeue",
    "outcome_level",
    "probe_when_due",
    "reconcile_scheduled",
    "same_condition",
    "utc_now",
    "write_unchecked",
]

log = logging.getLogger(__name__)

V = TypeVar("V", bound=ConditionVerdict)
R = TypeVar("R")


class EventSink(Protocol):
    """Where events go (``runtime.events.EventRecorder`` is one)."""

    def event(self, obj: Mapping[str, Any], type: Any, reason: str, message: str) -> None:
        """Record an event about ``obj``."""
        ...


def utc_now() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


def no_requeue(request: Request) -> None:
    """The reconcilers' default ``requeue`` (setup replaces it with the controller's
    ``enqueue``; :class:`.InlineProbes` never calls it)."""


class Reconciling(Protocol):
    """The machinery a reconciler holds for its scheduled checks (read at each call, so a
    test or ``setup`` may replace any of it on the reconciler)."""

    @property
    def writer(self) -> StatusWriter:
        """Status writes."""
        ...

    @property
    def probes(self) -> ProbeRunner:
        """Where checks run."""
        ...

    @property
    def schedule(self) -> Schedule:
        """Re-validation interval, jitter and backoff."""
        ...

    @property
    def due(self) -> DueTimes:
        """When each object's next check is due (in memory)."""
        ...

    @property
    def now(self) -> Callable[[], datetime]:
        """Wall clock (UTC)."""
        ...

    @property
    def requeue(self) -> Callable[[Request], None]:
        """Called with the request when its check finishes."""
        ...


@dataclass(frozen=True, slots=True)
class StatusRules(Generic[V]):
    """How one kind's status is written (fixed per reconciler)."""

    kind: str
    """The kind (``ModelProvider``): in-flight keys are ``Kind/namespace/name``."""
    managed_fields: tuple[str, ...]
    """The status fields the reconciler owns."""
    time_field: str
    """Where the time of the last check that changed the status goes (``lastProbeTime``)."""
    hash_field: str
    """The status field holding the digest of the checked inputs (``secretHash``)."""
    events: Callable[[Mapping[str, Any], Mapping[str, Any], V], None]
    """``(object, observed status, verdict)``: emit the transition events of a write."""
    floor_at_backoff: bool = True
    """Never requeue sooner than the backoff base after a check (else only when the next
    check would be due at once)."""

    def key(self, request: Request) -> str:
        """The in-flight key of ``request``'s check."""
        return f"{self.kind}/{request}"


@dataclass(frozen=True, slots=True)
class Check(Generic[V, R]):
    """The check one reconcile wants: what to run and how to judge its outcome."""

    uid: str
    """The object's UID (also the seed of the schedule's jitter)."""
    digest: str
    """The digest of the inputs as cached now (``secretHash``, ``providerHash``)."""
    run: Callable[[], Awaitable[R]]
    """The check itself (runs in the in-flight table; must not return ``None``)."""
    judge: Callable[[R], tuple[V, Mapping[str, Any]]]
    """Outcome → verdict and the status fields it sets (at least :attr:`StatusRules.hash_field`)."""
    due: Callable[[datetime, Mapping[str, Any], str, datetime | None], Decision]
    """``(now, status, digest, checked_at)``: whether a check is due by the last one
    ``status`` records (its time replaced by ``checked_at`` when given: one just made)."""


async def commit(
    r: Reconciling,
    rules: StatusRules[V],
    obj: Mapping[str, Any],
    status: Mapping[str, Any],
    base: Mapping[str, Any],
    verdict: V,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Write the desired status (``base`` plus ``verdict``'s conditions, at ``now`` or
    ``r.now()``) if it differs from ``status``; emit transition events when it was written;
    return it."""
    generation = int(base["observedGeneration"])
    desired = desired_status(status, base, verdict, generation, now or r.now())
    if await r.writer.write(obj, desired, rules.managed_fields):
        rules.events(obj, status, verdict)
    return desired


async def write_unchecked(
    r: Reconciling,
    rules: StatusRules[V],
    request: Request,
    obj: Mapping[str, Any],
    base: Mapping[str, Any],
    verdict: V,
) -> Result:
    """No check is wanted (invalid spec, missing Secret, provider not ready): drop any in
    flight and :func:`commit` ``verdict``; not requeued (a change brings the object back)."""
    r.probes.forget(rules.key(request))
    await commit(r, rules, obj, status_of(obj), base, verdict)
    return Result()


async def reconcile_scheduled(
    r: Reconciling,
    rules: StatusRules[V],
    request: Request,
    store: Store,
    reconcile: Callable[[Request, dict[str, Any]], Awaitable[Result]],
) -> Result:
    """Run ``reconcile`` on the latest view of ``request``'s object
    (:func:`.status.reconcile_latest`), first forgetting its due time and any check in
    flight when the object is gone from ``store``."""
    if store.get_by(request.name, request.namespace) is None:
        r.due.forget(str(request))
        r.probes.forget(rules.key(request))
    return await reconcile_latest(request, store, r.writer, reconcile)


async def probe_when_due(
    r: Reconciling,
    rules: StatusRules[V],
    check: Check[V, R],
    request: Request,
    obj: Mapping[str, Any],
    base: Mapping[str, Any],
) -> Result:
    """Run ``check`` for ``obj`` if one is due and write its outcome over ``base`` (the
    status fields computed before the check, with the time field kept from the cached
    status: a steady outcome then writes nothing); see the module docstring for the steps."""
    status = status_of(obj)
    key, uid, generation = str(request), check.uid, int(base["observedGeneration"])
    now = r.now()
    decision = check.due(now, status, check.digest, None)
    decision, due = revalidation(now, decision, r.due.get(key, uid), schedule=r.schedule, seed=uid)
    if not decision.probe and not status_consistent(status, base):
        decision, due = Decision(True, 0.0, "edited"), None
    if not decision.probe:
        r.probes.forget(rules.key(request))
        r.due.set(key, uid, due)
        return Result(requeue_after=decision.requeue_after)

    log.debug("Checking %s (%s)", rules.key(request), decision.cause)
    outcome = await r.probes.run(
        rules.key(request),
        request.namespace,
        (uid, generation, check.digest),
        check.run,
        lambda: r.requeue(request),
    )
    if outcome is None:
        return Result()  # in flight: its completion brings the object back
    verdict, learnt = check.judge(outcome)
    fields = {**base, **learnt}
    now = r.now()
    unchanged = desired_status(status, fields, verdict, generation, now)
    if status_patch(status, unchanged, rules.managed_fields) is not None or not status.get(
        rules.time_field
    ):
        fields[rules.time_field] = format_time(now)  # the outcome changes the status
    desired = await commit(r, rules, obj, status, fields, verdict, now)
    following = check.due(now, desired, str(fields[rules.hash_field]), now)
    # a check just made is never due again at once (the status is its outcome); never spin
    if following.probe:
        delay = r.schedule.backoff_base
    elif rules.floor_at_backoff:
        delay = max(following.requeue_after, r.schedule.backoff_base)
    else:
        delay = following.requeue_after
    r.due.set(key, uid, now + timedelta(seconds=delay))
    return Result(requeue_after=delay)


def outcome_level(old: Mapping[str, Any], ready: Cond) -> int:
    """INFO when the ``Ready`` status or reason changes (a transition) or a first probe
    fails, DEBUG otherwise: a steady outcome or a first success is not news (as with
    events), and logging 10,000 new providers costs CPU at scale."""
    before = find_condition(old.get("conditions"), Type.READY)
    if before is None:
        return logging.DEBUG if ready[0] == TRUE else logging.INFO
    return logging.DEBUG if same_condition(before, ready) else logging.INFO


def same_condition(before: Mapping[str, Any] | None, cond: Cond) -> bool:
    """Whether the condition ``before`` (None: absent) has ``cond``'s status and reason
    (no transition)."""
    return before is not None and (before.get("status"), before.get("reason")) == cond[:2]


def log_outcome(
    logger: logging.Logger, what: str, old: Mapping[str, Any], ready: Cond, result: ProbeResult
) -> None:
    """Log a check's ``result`` as ``<what>: <reason>`` at :func:`outcome_level` (the URL and
    HTTP status as extras; never a credential)."""
    logger.log(
        outcome_level(old, ready),
        "%s: %s",
        what,
        result.reason,
        extra={"url": result.url, "http_status": result.http_status},
    )
