"""Probes in flight: probes run outside the reconcile workers, capped and fair across namespaces.

A probe can take as long as its (capped) ``timeoutSeconds``; a tenant pointing providers at
an endpoint that accepts and never answers must not hold the controller's reconcile workers.
So, as controller-runtime's long-running work is done, a reconcile that decides to probe
hands the probe to :class:`InFlightProbes` and returns at once; the probe's completion
re-queues the object, and the next reconcile consumes the result and writes the status.

- **Keyed by object and inputs.** An entry is keyed by the object's ``kind/namespace/name``
  and carries the inputs the probe was started with (UID, generation, ``secretHash`` or
  ``providerHash``). A result is handed out only to a reconcile that asks with equal inputs;
  different inputs cancel the stale probe (or drop its result) and start a new one, so a
  result is never applied to a changed spec, a rotated Secret or a re-created object.
- **Capped.** At most ``max_in_flight`` probes run at once in the process, at most
  ``max_per_namespace`` of them for one namespace; the others wait in their namespace's
  queue.
- **Fair.** A free slot goes to the next namespace in round-robin order among those with
  waiting probes and room under their own cap, so a namespace with a thousand slow probes
  waits behind its own probes, never in front of another namespace's.
- **Dropped with their object.** :meth:`InFlightProbes.forget` cancels a probe (or drops
  its result) when its object is gone or no longer wants it; :meth:`InFlightProbes.serve`
  (a leader-only runnable) cancels every probe when the controllers stop, within the
  manager's grace period.

:class:`InlineProbes` is the same interface running the probe inside the reconcile (the
reconcilers' default when built directly, e.g. in unit tests); ``setup_controllers``
always wires :class:`InFlightProbes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeVar, cast

from prometheus_client import Gauge

__all__ = [
    "DEFAULT_MAX_CONCURRENT_PROBES",
    "DEFAULT_MAX_CONCURRENT_PROBES_PER_NAMESPACE",
    "PROBES_IN_FLIGHT",
    "PROBES_QUEUED",
    "InFlightProbes",
    "InlineProbes",
    "ProbeRunner",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_MAX_CONCURRENT_PROBES: Final = 64
"""Probes running at once in the process (``--max-concurrent-probes``).

A probe in flight costs a task, a socket and a few kilobytes: 64 is far from any resource
limit, yet with the per-namespace cap it leaves 56 slots to the other namespaces while one
namespace's probes all hang for ``--max-probe-timeout`` (30 s), i.e. more than a thousand
50 ms probes per second for everybody else."""
DEFAULT_MAX_CONCURRENT_PROBES_PER_NAMESPACE: Final = 8
"""Probes running at once for one namespace (``--max-concurrent-probes-per-namespace``).

Equal to ``--probe-concurrency-per-host``: a namespace gets as much parallelism as one
destination accepts, and one hostile namespace holds at most an eighth of the global cap."""

PROBES_IN_FLIGHT = Gauge(
    "flokoa_probes_in_flight",
    "Probes running outside the reconcile workers (bounded by --max-concurrent-probes).",
)
PROBES_QUEUED = Gauge(
    "flokoa_probes_queued",
    "Probes waiting for a slot (the global or their namespace's cap).",
)


class ProbeRunner(Protocol):
    """How a reconciler runs a probe (:class:`InFlightProbes` or :class:`InlineProbes`)."""

    async def run(
        self,
        key: str,
        namespace: str,
        inputs: Hashable,
        job: Callable[[], Awaitable[T]],
        notify: Callable[[], None],
    ) -> T | None:
        """The result of ``job`` for ``key`` with ``inputs``, or ``None`` while in flight.

        A finished probe's result is returned once (and forgotten); its exception, if it
        raised, is raised here instead. ``notify()`` is called when a started probe
        finishes (the reconciler re-queues the object). ``job`` must not return ``None``.
        """
        ...

    def forget(self, key: str) -> None:
        """Cancel the probe of ``key`` (or drop its result): its object no longer wants it."""
        ...


class InlineProbes:
    """Runs the probe inside the reconcile: :meth:`run` awaits the job (no caps)."""

    async def run(
        self,
        key: str,
        namespace: str,
        inputs: Hashable,
        job: Callable[[], Awaitable[T]],
        notify: Callable[[], None],
    ) -> T | None:
        """Await ``job()`` and return its result."""
        return await job()

    def forget(self, key: str) -> None:
        """Nothing is kept."""


@dataclass(eq=False, slots=True)
class _Entry:
    key: str
    namespace: str
    inputs: Hashable
    job: Callable[[], Awaitable[Any]]
    notify: Callable[[], None]
    task: asyncio.Task[Any] | None = None
    finished: bool = False
    dropped: bool = False
    value: Any = None
    error: BaseException | None = None
    waiting: bool = field(default=True)


class InFlightProbes:
    """Probes outside the reconcile workers, capped globally and per namespace, served
    round-robin across namespaces (see the module docstring).

    ``max_in_flight``: probes running at once; ``max_per_namespace``: of them, at most this
    many for one namespace. ``grace_period``: seconds :meth:`cancel_all` waits for the
    cancelled probes to end.
    """

    def __init__(
        self,
        *,
        max_in_flight: int = DEFAULT_MAX_CONCURRENT_PROBES,
        max_per_namespace: int = DEFAULT_MAX_CONCURRENT_PROBES_PER_NAMESPACE,
        grace_period: float = 5.0,
    ) -> None:
        """Create an empty table (see the class docstring)."""
        if max_in_flight < 1 or max_per_namespace < 1:
            raise ValueError("the probe caps must be at least 1")
        self.max_in_flight = max_in_flight
        self.max_per_namespace = max_per_namespace
        self.grace_period = grace_period
        self._entries: dict[str, _Entry] = {}
        self._pending: dict[str, deque[_Entry]] = {}
        """Waiting probes per namespace (dropped entries are skipped when popped)."""
        self._ready: deque[str] = deque()
        """Namespaces with waiting probes and room under their cap, in serving order."""
        self._in_ready: set[str] = set()
        self._running: dict[str, int] = {}
        self._running_total = 0
        self._queued = 0
        self._closed = False
        self.peak_in_flight = 0
        """The most probes seen running at once (for tests and benchmarks)."""
        # the gauges read the latest table at scrape time (without keeping it alive)
        ref = weakref.ref(self)
        PROBES_IN_FLIGHT.set_function(lambda: _read(ref, "_running_total"))
        PROBES_QUEUED.set_function(lambda: _read(ref, "_queued"))

    # -- what reconcilers call -------------------------------------------------------------

    async def run(
        self,
        key: str,
        namespace: str,
        inputs: Hashable,
        job: Callable[[], Awaitable[T]],
        notify: Callable[[], None],
    ) -> T | None:
        """Hand out a finished result for equal ``inputs``, else start (or keep) the probe.

        Returns ``None`` while the probe waits or runs; ``notify()`` is called when it
        finishes. Different ``inputs`` than the entry's cancel it and start anew. After
        :meth:`cancel_all` nothing is started.
        """
        entry = self._entries.get(key)
        if entry is not None:
            if entry.inputs == inputs:
                if not entry.finished:
                    entry.notify = notify
                    return None
                del self._entries[key]
                if entry.error is not None:
                    raise entry.error
                return cast(T, entry.value)
            self._drop(entry)
        if self._closed:
            return None
        entry = _Entry(key, namespace, inputs, job, notify)
        self._entries[key] = entry
        self._pending.setdefault(namespace, deque()).append(entry)
        self._queued += 1
        self._mark_ready(namespace)
        self._pump()
        return None

    def forget(self, key: str) -> None:
        """Cancel the probe of ``key`` or drop its result (nothing kept: no-op)."""
        entry = self._entries.get(key)
        if entry is not None:
            self._drop(entry)

    # -- lifecycle -------------------------------------------------------------------------

    async def serve(self) -> None:
        """Accept probes until cancelled, then :meth:`cancel_all` (a leader-only runnable:
        probes end with the controllers, within the grace period)."""
        self._closed = False
        try:
            await asyncio.Event().wait()
        finally:
            await self.cancel_all()

    async def cancel_all(self) -> None:
        """Cancel every probe, drop every result, and wait (at most ``grace_period``) for
        the cancelled probes to end; nothing is started afterwards."""
        self._closed = True
        tasks = [e.task for e in self._entries.values() if e.task is not None]
        for entry in list(self._entries.values()):
            self._drop(entry)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.grace_period)
            if late:
                log.warning("%d probes did not stop within the grace period", len(late))

    # -- introspection ---------------------------------------------------------------------

    def in_flight(self) -> int:
        """Probes running now."""
        return self._running_total

    def queued(self) -> int:
        """Probes waiting for a slot."""
        return self._queued

    def in_flight_in(self, namespace: str) -> int:
        """Probes running now for ``namespace``."""
        return self._running.get(namespace, 0)

    def __len__(self) -> int:
        """Entries held: waiting, running, or finished and not yet consumed."""
        return len(self._entries)

    # -- internals -------------------------------------------------------------------------

    def _drop(self, entry: _Entry) -> None:
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
        if entry.dropped:
            return
        entry.dropped = True
        if entry.waiting:
            entry.waiting = False
            self._queued -= 1
        if entry.task is not None and not entry.task.done():
            entry.task.cancel()  # the slot is freed by _finished

    def _mark_ready(self, namespace: str) -> None:
        if (
            namespace not in self._in_ready
            and self._pending.get(namespace)
            and self._running.get(namespace, 0) < self.max_per_namespace
        ):
            self._in_ready.add(namespace)
            self._ready.append(namespace)

    def _pump(self) -> None:
        while self._running_total < self.max_in_flight and self._ready:
            namespace = self._ready.popleft()
            self._in_ready.discard(namespace)
            queue = self._pending.get(namespace)
            entry = None
            while queue:
                candidate = queue.popleft()
                if not candidate.dropped:
                    entry = candidate
                    break
            if queue is not None and not queue:
                del self._pending[namespace]
            if entry is None:
                continue
            self._start(entry)
            self._mark_ready(namespace)

    def _start(self, entry: _Entry) -> None:
        entry.waiting = False
        self._queued -= 1
        self._running[entry.namespace] = self._running.get(entry.namespace, 0) + 1
        self._running_total += 1
        self.peak_in_flight = max(self.peak_in_flight, self._running_total)
        task = asyncio.get_running_loop().create_task(_call(entry.job), name=f"probe {entry.key}")
        entry.task = task
        task.add_done_callback(lambda t: self._finished(entry, t))

    def _finished(self, entry: _Entry, task: asyncio.Task[Any]) -> None:
        namespace = entry.namespace
        left = self._running.get(namespace, 0) - 1
        if left > 0:
            self._running[namespace] = left
        else:
            self._running.pop(namespace, None)
        self._running_total -= 1
        self._mark_ready(namespace)
        if not entry.dropped and not task.cancelled():
            entry.finished = True
            entry.value, entry.error = None, task.exception()
            if entry.error is None:
                entry.value = task.result()
            with contextlib.suppress(Exception):
                entry.notify()
        elif not entry.dropped:  # cancelled from outside: forget it, the object comes back
            self._drop(entry)
            with contextlib.suppress(Exception):
                entry.notify()
        self._pump()


async def _call(job: Callable[[], Awaitable[T]]) -> T:
    return await job()


def _read(ref: weakref.ref[InFlightProbes], name: str) -> float:
    table = ref()
    return float(getattr(table, name)) if table is not None else 0.0
