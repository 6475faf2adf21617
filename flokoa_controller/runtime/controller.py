"""Controllers: a workqueue of requests, N async workers and a reconciler.

A :class:`Controller` is level-based, like controller-runtime's: informer events are mapped to
:class:`Request` keys (``namespace/name``) and added to a rate-limited :class:`WorkQueue`, which
coalesces bursts of events into one reconcile and never hands one key to two workers at once.
Workers call ``reconciler.reconcile(request)`` and act on the outcome:

================================  ==============================================  =============
reconcile outcome                 queue action                                    ``result``
================================  ==============================================  =============
raises an exception (an error)    rate-limited requeue (failure count kept)       error
raises :class:`TerminalError`     no requeue (forget); also counted as terminal   error
``Result(requeue_after=d > 0)``   forget, then ``add_after(d)``                   requeue_after
``Result(requeue=True)``          rate-limited requeue                            requeue
``Result()``                      forget                                          success
================================  ==============================================  =============

Errors versus panics: Go reconcilers *return* errors and *panic* on bugs. In Python both are
exceptions, so an exception raised by ``reconcile`` is an **error** (counted in
``controller_runtime_reconcile_errors_total`` and logged with its traceback). Exceptions that
indicate a programming fault — ``AttributeError``, ``TypeError``, ``NameError``,
``LookupError`` (``KeyError``, ``IndexError``), ``ArithmeticError``, ``AssertionError``,
``RecursionError``, ``NotImplementedError`` — and a ``reconcile`` that does not return a
:class:`Result` are **panics**: counted in ``controller_runtime_reconcile_panics_total`` *and*
handled as errors (as controller-runtime does with a recovered panic). With
``recover_panic=False`` a panic is not recovered: it ends the worker and :meth:`Controller.run`
raises it. Task cancellation is never caught.

Every reconcile gets a fresh reconcile ID (uuid4). While it runs, :data:`reconcile_context`
holds a :class:`ReconcileContext` (controller, namespace, name, reconcileID) that the logging
module adds to every log line emitted during the reconcile, the reconciler's included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from flokoa_controller.runtime import metrics
from flokoa_controller.runtime.clock import Clock, monotonic
from flokoa_controller.runtime.informer import DeletedFinalStateUnknown, EventHandler
from flokoa_controller.runtime.predicate import (
    Predicate,
    allows_create,
    allows_delete,
    allows_update,
)
from flokoa_controller.runtime.ratelimiter import RateLimiter
from flokoa_controller.runtime.workqueue import QueueShutDown, WorkQueue

__all__ = [
    "PANIC_EXCEPTIONS",
    "Controller",
    "Mapper",
    "ReconcileContext",
    "Reconciler",
    "Request",
    "Result",
    "TerminalError",
    "reconcile_context",
    "request_for",
]

logger = logging.getLogger(__name__)

PANIC_EXCEPTIONS: tuple[type[BaseException], ...] = (
    AttributeError,
    TypeError,
    NameError,
    LookupError,
    ArithmeticError,
    AssertionError,
    RecursionError,
    NotImplementedError,
)
"""Exception types treated as panics (programming faults) rather than ordinary errors."""


@dataclass(frozen=True, slots=True)
class Request:
    """What to reconcile: the key of one object (``namespace`` is "" when cluster-scoped)."""

    namespace: str
    name: str

    def __str__(self) -> str:
        """Return ``namespace/name`` (or ``name`` for a cluster-scoped object)."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class Result:
    """What a reconcile asks of the queue once it succeeded.

    ``requeue``: reconcile again after the rate limiter's delay. ``requeue_after``: reconcile
    again after this many seconds (takes precedence over ``requeue`` when > 0).
    """

    requeue: bool = False
    requeue_after: float = 0.0


class TerminalError(Exception):
    """A reconcile error that retrying cannot fix: the request is not requeued.

    Raise it (optionally ``from`` the cause) when, say, the object's spec is invalid; a later
    change of the object enqueues it again anyway.
    """


class Reconciler(Protocol):
    """Drives one object towards its desired state; must be idempotent."""

    async def reconcile(self, request: Request) -> Result:
        """Reconcile the object named by ``request`` and say whether to come back."""
        ...


@dataclass(frozen=True, slots=True)
class ReconcileContext:
    """The identity of the reconcile in progress (read by the logging module)."""

    controller: str
    namespace: str
    name: str
    reconcile_id: str

    def log_fields(self) -> dict[str, str]:
        """Return the structured log fields, named as controller-runtime names them."""
        return {
            "controller": self.controller,
            "namespace": self.namespace,
            "name": self.name,
            "reconcileID": self.reconcile_id,
        }


reconcile_context: ContextVar[ReconcileContext | None] = ContextVar(
    "reconcile_context", default=None
)
"""The reconcile the current task is running, or ``None`` outside reconciles."""

Mapper = Callable[[dict[str, Any]], Iterable[Request]]
"""Maps an object of a watched kind to the requests it should trigger."""


def request_for(obj: dict[str, Any]) -> Request:
    """Return the request naming ``obj`` itself (its namespace and name)."""
    metadata = obj.get("metadata") or {}
    return Request(str(metadata.get("namespace") or ""), str(metadata["name"]))


class _Informer(Protocol):
    """The part of an informer a controller needs."""

    def add_handler(self, handler: EventHandler) -> Any:
        """Register ``handler`` for the informer's events."""
        ...


class Controller:
    """Runs ``max_concurrent_reconciles`` workers that reconcile requests from a workqueue.

    ``name``: the controller's name (metric labels, queue name, log field).
    ``reconciler``: the :class:`Reconciler`.
    ``max_concurrent_reconciles``: number of workers (controller-runtime default: 1).
    ``rate_limiter``: the queue's rate limiter (default: max-of exponential 5 ms → 1000 s and a
    10 qps / burst 100 token bucket).
    ``recover_panic``: recover panics (see the module docstring) instead of failing ``run``.
    ``grace_period``: seconds in-flight reconciles get to finish when :meth:`run` is cancelled.
    ``clock``: time source for the reconcile duration metric.

    The queue exists from construction on, so events are collected (and coalesced) before
    :meth:`run` starts — on a standby, for example — and processed once it does.
    """

    def __init__(
        self,
        name: str,
        reconciler: Reconciler,
        *,
        max_concurrent_reconciles: int = 1,
        rate_limiter: RateLimiter[Request] | None = None,
        recover_panic: bool = True,
        grace_period: float = 30.0,
        clock: Clock = monotonic,
    ) -> None:
        """Create the controller and its queue (see the class docstring)."""
        if not name:
            raise ValueError("a controller needs a name")
        if max_concurrent_reconciles < 1:
            raise ValueError("max_concurrent_reconciles must be at least 1")
        self.name = name
        self.reconciler = reconciler
        self.max_concurrent_reconciles = max_concurrent_reconciles
        self.recover_panic = recover_panic
        self.grace_period = grace_period
        self._clock = clock
        self.queue: WorkQueue[Request] = WorkQueue(name, rate_limiter=rate_limiter, clock=clock)
        self._stopping = False
        metrics.init_controller_metrics(name, max_concurrent_reconciles)
        self._results = {
            r: metrics.RECONCILE_TOTAL.labels(name, r) for r in metrics.RECONCILE_RESULTS
        }
        self._errors = metrics.RECONCILE_ERRORS.labels(name)
        self._terminal = metrics.TERMINAL_RECONCILE_ERRORS.labels(name)
        self._panics = metrics.RECONCILE_PANICS.labels(name)
        self._time = metrics.RECONCILE_TIME.labels(name)
        self._active = metrics.ACTIVE_WORKERS.labels(name)

    # -- event sources -------------------------------------------------------------------------

    def enqueue(self, request: Request) -> None:
        """Add ``request`` to the queue (coalesced with a pending one)."""
        self.queue.add(request)

    def watch(
        self,
        informer: _Informer,
        mapper: Mapper | None = None,
        *,
        predicates: Sequence[Predicate] = (),
    ) -> EventHandler:
        """Enqueue requests for the informer's events; return the registered handler.

        Without ``mapper`` each event enqueues the object's own key (the primary kind). With
        ``mapper`` (a related kind) each event enqueues what the mapper returns; an update maps
        both the old and the new object so a changed reference releases its former target too.
        Deletes delivered as ``DeletedFinalStateUnknown`` tombstones map their last known
        object. An event any of ``predicates`` rejects enqueues nothing.
        """
        map_obj: Mapper = mapper if mapper is not None else _own_request
        add = self.queue.add
        filters = tuple(predicates)

        def on_add(obj: dict[str, Any], is_in_initial_list: bool) -> None:
            if filters and not allows_create(filters, obj):
                return
            for request in map_obj(obj):
                add(request)

        def on_update(old: dict[str, Any], new: dict[str, Any]) -> None:
            if filters and not allows_update(filters, old, new):
                return
            for request in map_obj(new):
                add(request)
            if mapper is not None:
                for request in mapper(old):
                    add(request)

        def on_delete(obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
            if filters and not allows_delete(filters, obj):
                return
            if isinstance(obj, DeletedFinalStateUnknown):
                obj = obj.obj
            for request in map_obj(obj):
                add(request)

        handler = EventHandler(on_add=on_add, on_update=on_update, on_delete=on_delete)
        informer.add_handler(handler)
        return handler

    # -- workers -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the workers until cancelled (or until a worker fails with ``recover_panic`` off).

        On cancellation the queue is shut down, in-flight reconciles get ``grace_period``
        seconds to finish (``shutdown_with_drain``), stragglers are cancelled, and the
        cancellation is re-raised.
        """
        self._stopping = False
        logger.info(
            "Starting workers",
            extra={"controller": self.name, "worker_count": self.max_concurrent_reconciles},
        )
        workers = [
            asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}")
            for i in range(self.max_concurrent_reconciles)
        ]
        try:
            done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]  # not None, checked above
        finally:
            await self._stop(workers)

    async def _stop(self, workers: list[asyncio.Task[None]]) -> None:
        self._stopping = True
        self.queue.shutdown()
        pending = [w for w in workers if not w.done()]
        if pending:
            logger.info(
                "Shutdown signal received, waiting for all workers to finish",
                extra={"controller": self.name},
            )
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(
                    asyncio.shield(self.queue.shutdown_with_drain()), self.grace_period
                )
            _, pending_set = await asyncio.wait(pending, timeout=0)
            for task in pending_set:
                task.cancel()
            if pending_set:
                await asyncio.wait(pending_set)
        self._active.set(0)
        logger.info("All workers finished", extra={"controller": self.name})

    async def _worker(self) -> None:
        queue = self.queue
        while not self._stopping:
            try:
                request = await queue.get()
            except QueueShutDown:
                return
            try:
                if self._stopping:
                    return
                await self._reconcile_handler(request)
            finally:
                queue.done(request)

    async def _reconcile_handler(self, request: Request) -> None:
        ctx = ReconcileContext(self.name, request.namespace, request.name, str(uuid.uuid4()))
        token = reconcile_context.set(ctx)
        self._active.inc()
        start = self._clock()
        error: BaseException | None = None
        result = Result()
        try:
            returned = await self.reconciler.reconcile(request)
            if not isinstance(returned, Result):
                raise TypeError(f"reconcile returned {type(returned).__name__}, expected Result")
            result = returned
        except Exception as exc:
            error = exc
        finally:
            self._time.observe(self._clock() - start)
            self._active.dec()
        try:
            self._handle_outcome(request, result, error)
        finally:
            reconcile_context.reset(token)

    def _handle_outcome(
        self, request: Request, result: Result, error: BaseException | None
    ) -> None:
        queue = self.queue
        if error is not None:
            if isinstance(error, TerminalError):
                self._terminal.inc()
                queue.forget(request)
                logger.error("Reconciler error (terminal, not requeued)", exc_info=error)
            elif isinstance(error, PANIC_EXCEPTIONS):
                self._panics.inc()
                if not self.recover_panic:
                    self._errors.inc()
                    self._results["error"].inc()
                    raise error
                queue.add_rate_limited(request)
                logger.error("Observed a panic in reconciler", exc_info=error)
            else:
                queue.add_rate_limited(request)
                logger.error("Reconciler error", exc_info=error)
            self._errors.inc()
            self._results["error"].inc()
        elif result.requeue_after > 0:
            queue.forget(request)
            queue.add_after(request, result.requeue_after)
            self._results["requeue_after"].inc()
            logger.debug("Reconcile done, requeueing after %ss", result.requeue_after)
        elif result.requeue:
            queue.add_rate_limited(request)
            self._results["requeue"].inc()
            logger.debug("Reconcile done, requeueing")
        else:
            queue.forget(request)
            self._results["success"].inc()
            logger.debug("Reconcile successful")


def _own_request(obj: dict[str, Any]) -> tuple[Request]:
    return (request_for(obj),)
