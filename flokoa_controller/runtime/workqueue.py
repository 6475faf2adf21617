"""A rate-limited, delaying work queue with client-go's semantics, for asyncio.

Guarantees (client-go ``util/workqueue``):

- **Stingy**: an item added several times before a worker picks it up is processed once (the
  *dirty* set coalesces adds).
- **Fair**: items are handed out in the order they were first added (FIFO).
- **Never concurrent on one item**: while an item is being processed (between :meth:`get` and
  :meth:`done`), adds of it only mark it dirty; :meth:`done` then queues it again, so no two
  workers ever hold the same item.

Delays (:meth:`WorkQueue.add_after`) are kept in a heap driven by a single
``loop.call_at`` timer, so they follow the event loop's clock (fake-time loops such as
``looptime`` drive them). Re-adding a waiting item only ever moves its ready time earlier.

API choice: :meth:`WorkQueue.get` is a coroutine that returns the next item, and raises
:class:`QueueShutDown` once the queue is shut down *and* empty (items queued before the
shutdown are still handed out, as in client-go). Every item returned by ``get`` must be
passed to :meth:`WorkQueue.done` exactly once.

When created with a ``name`` the queue reports controller-runtime's ``workqueue_*`` metrics
with ``name`` and ``controller`` labels both set to ``name``; the two in-flight gauges
(``workqueue_unfinished_work_seconds``, ``workqueue_longest_running_processor_seconds``) are
refreshed every 500 ms by a loop timer that stops at shutdown. An unnamed queue records no
metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import weakref
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from flokoa_controller.runtime import metrics
from flokoa_controller.runtime.clock import Clock, monotonic
from flokoa_controller.runtime.ratelimiter import RateLimiter, default_controller_rate_limiter

__all__ = ["METRICS_REFRESH_PERIOD", "QueueShutDown", "WorkQueue"]

T = TypeVar("T", bound=Hashable)

METRICS_REFRESH_PERIOD = 0.5
"""Seconds between refreshes of the in-flight work gauges (client-go: 500 ms)."""


class QueueShutDown(Exception):
    """Raised by :meth:`WorkQueue.get` when the queue is shut down and has nothing left."""


class _QueueMetrics(Generic[T]):
    """The ``workqueue_*`` series of one named queue, with the per-item timestamps."""

    __slots__ = (
        "_added_at",
        "_adds",
        "_clock",
        "_depth",
        "_longest",
        "_queue_duration",
        "_retries",
        "_started_at",
        "_unfinished",
        "_work_duration",
    )

    def __init__(self, name: str, clock: Clock, dirty: Callable[[], int]) -> None:
        self._clock = clock
        # Depth is the number of dirty items, read at scrape time: nothing to do per add/get.
        self._depth = metrics.WORKQUEUE_DEPTH.labels(name, name)
        self._depth.set_function(dirty)
        self._adds = metrics.WORKQUEUE_ADDS.labels(name, name)
        self._retries = metrics.WORKQUEUE_RETRIES.labels(name, name)
        self._queue_duration = metrics.WORKQUEUE_QUEUE_DURATION.labels(name, name)
        self._work_duration = metrics.WORKQUEUE_WORK_DURATION.labels(name, name)
        self._unfinished = metrics.WORKQUEUE_UNFINISHED_WORK.labels(name, name)
        self._longest = metrics.WORKQUEUE_LONGEST_RUNNING_PROCESSOR.labels(name, name)
        self._added_at: dict[T, float] = {}
        self._started_at: dict[T, float] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the loop's clock directly when the default (loop) clock is in use."""
        if self._clock is monotonic:
            self._clock = loop.time

    def add(self, item: T) -> None:
        self._adds.inc()
        if item not in self._added_at:
            self._added_at[item] = self._clock()

    def get(self, item: T) -> None:
        now = self._clock()
        self._started_at[item] = now
        added = self._added_at.pop(item, None)
        if added is not None:
            self._queue_duration.observe(now - added)

    def done(self, item: T) -> None:
        started = self._started_at.pop(item, None)
        if started is not None:
            self._work_duration.observe(self._clock() - started)

    def retry(self) -> None:
        self._retries.inc()

    def refresh_in_flight(self) -> None:
        now = self._clock()
        total = 0.0
        oldest = 0.0
        for started in self._started_at.values():
            age = now - started
            total += age
            if age > oldest:
                oldest = age
        self._unfinished.set(total)
        self._longest.set(oldest)


class WorkQueue(Generic[T]):
    """A FIFO work queue of hashable items with dirty/processing sets, delays and rate limits.

    ``name``: the queue's name for metrics (empty: no metrics). ``rate_limiter``: used by
    :meth:`add_rate_limited` (default: controller-runtime's max-of exponential 5 ms → 1000 s
    and token bucket 10 qps / burst 100). ``clock``: time source of the metrics (default: the
    event loop's clock).
    """

    def __init__(
        self,
        name: str = "",
        *,
        rate_limiter: RateLimiter[T] | None = None,
        clock: Clock = monotonic,
    ) -> None:
        """Create an empty queue (see the class docstring for the parameters)."""
        self.name = name
        self.rate_limiter: RateLimiter[T] = (
            rate_limiter if rate_limiter is not None else default_controller_rate_limiter()
        )
        self._clock = clock
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._drainers: list[asyncio.Future[None]] = []
        self._shutting_down = False
        # Delayed adds: heap of (ready_at, seq, item); _waiting holds each item's live ready
        # time, heap entries that disagree with it are stale and skipped.
        self._heap: list[tuple[float, int, T]] = []
        self._waiting: dict[T, float] = {}
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._metrics: _QueueMetrics[T] | None = None
        self._refresh: asyncio.TimerHandle | None = None
        if name:
            metrics.init_workqueue_metrics(name)
            self._metrics = _QueueMetrics(name, clock, _dirty_counter(self))

    # -- the basic queue ---------------------------------------------------------------------

    def add(self, item: T) -> None:
        """Queue ``item`` unless it is already waiting to be processed.

        Ignored after shutdown. If ``item`` is being processed it is only marked dirty, and
        :meth:`done` queues it again.
        """
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        m = self._metrics
        if m is not None:
            m.add(item)
            if self._refresh is None:
                self._start_refresh()
        if item in self._processing:
            return
        self._queue.append(item)
        self._wake_getter()

    async def get(self) -> T:
        """Wait for the next item and mark it as being processed.

        Raises :class:`QueueShutDown` once the queue is shut down and empty. The caller must
        call :meth:`done` with the returned item when it has finished with it.
        """
        queue = self._queue
        while not queue:
            if self._shutting_down:
                raise QueueShutDown()
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except BaseException:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._getters.remove(waiter)
                # Woken but cancelled: hand the wake-up to another getter.
                if queue:
                    self._wake_getter()
                raise
        item = queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        m = self._metrics
        if m is not None:
            m.get(item)
        return item

    def done(self, item: T) -> None:
        """Mark ``item`` as finished; if it was added meanwhile, queue it again."""
        self._processing.discard(item)
        m = self._metrics
        if m is not None:
            m.done(item)
        if item in self._dirty:
            self._queue.append(item)
            self._wake_getter()
        if self._drainers and not self._processing:
            for fut in self._drainers:
                if not fut.done():
                    fut.set_result(None)
            self._drainers.clear()

    def __len__(self) -> int:
        """Return the number of items queued (not counting those in processing or waiting)."""
        return len(self._queue)

    def processing(self) -> int:
        """Return the number of items currently held by workers."""
        return len(self._processing)

    def waiting(self) -> int:
        """Return the number of items waiting for their delay (``add_after``) to expire."""
        return len(self._waiting)

    # -- delays and rate limits ----------------------------------------------------------------

    def add_after(self, item: T, delay: float) -> None:
        """Add ``item`` after ``delay`` seconds; ``delay <= 0`` adds it at once.

        If ``item`` is already waiting, its ready time only moves earlier (the earliest wins).
        Ignored after shutdown. Requires a running event loop when ``delay > 0``.
        """
        if self._shutting_down:
            return
        m = self._metrics
        if m is not None:
            m.retry()
        if delay <= 0:
            self.add(item)
            return
        loop = asyncio.get_running_loop()
        ready_at = loop.time() + delay
        current = self._waiting.get(item)
        if current is not None and current <= ready_at:
            return
        self._waiting[item] = ready_at
        heapq.heappush(self._heap, (ready_at, next(self._seq), item))
        if ready_at < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = ready_at
            self._timer = loop.call_at(ready_at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        loop = asyncio.get_running_loop()
        now = loop.time()
        heap = self._heap
        waiting = self._waiting
        while heap and heap[0][0] <= now:
            ready_at, _, item = heapq.heappop(heap)
            if waiting.get(item) == ready_at:
                del waiting[item]
                self.add(item)
        # Skip stale entries so the timer is armed for a live one.
        while heap and waiting.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)
        if heap and not self._shutting_down:
            self._timer_at = heap[0][0]
            self._timer = loop.call_at(self._timer_at, self._on_timer)

    def add_rate_limited(self, item: T) -> None:
        """Add ``item`` after the delay the rate limiter asks for (records one failure)."""
        if self._shutting_down:
            return
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Reset the rate limiter's failure history of ``item`` (does not remove it)."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        """Return how many rate-limited requeues ``item`` has had since it was forgotten."""
        return self.rate_limiter.num_requeues(item)

    # -- shutdown ------------------------------------------------------------------------------

    @property
    def shutting_down(self) -> bool:
        """Whether :meth:`shutdown` has been called."""
        return self._shutting_down

    def shutdown(self) -> None:
        """Stop accepting items and release waiting getters.

        Items already queued are still handed out by :meth:`get`; delayed items are dropped.
        """
        if self._shutting_down:
            return
        self._shutting_down = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = float("inf")
        self._heap.clear()
        self._waiting.clear()
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        if self._metrics is not None:
            self._metrics.refresh_in_flight()
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    async def shutdown_with_drain(self) -> None:
        """Shut down, then wait until every item being processed is :meth:`done`."""
        self.shutdown()
        while self._processing:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._drainers.append(fut)
            try:
                await fut
            finally:
                if fut in self._drainers:
                    self._drainers.remove(fut)
        if self._metrics is not None:
            self._metrics.refresh_in_flight()

    # -- internals -----------------------------------------------------------------------------

    def _wake_getter(self) -> None:
        getters = self._getters
        while getters:
            waiter = getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _start_refresh(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._metrics is not None:
            self._metrics.bind(loop)
        self._refresh = loop.call_later(METRICS_REFRESH_PERIOD, self._on_refresh)

    def _on_refresh(self) -> None:
        self._refresh = None
        if self._metrics is None or self._shutting_down:
            return
        self._metrics.refresh_in_flight()
        self._start_refresh()


def _dirty_counter(queue: WorkQueue[Any]) -> Callable[[], int]:
    """Return a scrape-time reader of ``queue``'s depth that does not keep it alive."""
    ref = weakref.ref(queue)

    def depth() -> int:
        q = ref()
        return len(q._dirty) if q is not None else 0

    return depth
