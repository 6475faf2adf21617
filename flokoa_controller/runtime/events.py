"""Kubernetes Events (core/v1), recorded like client-go's event recorder.

``EventRecorder.event(obj, type, reason, message)`` never blocks and never fails: it decides
at once what to write (correlation) and hands the write to a background task through a
bounded queue. When the queue is full, or the API write fails, the event is dropped and
counted (``flokoa_controller_events_dropped_total{reason}``); a reconcile never waits for or
fails because of an event.

Correlation, as client-go's ``EventCorrelator`` does it:

- **Spam filter**: a token bucket per involved object (and source): burst 25, refilled at one
  event per 5 minutes. Events over it are dropped (reason ``rate_limited``).
- **Aggregation**: events of one object with the same type and reason but *different*
  messages are counted while they keep coming less than 10 minutes apart (the window slides
  with each one); from the 10th distinct message on, they are recorded as a single event
  whose message starts with ``(combined from similar events):``.
- **Deduplication**: an event identical to one recorded before (same object, type, reason,
  message, source; remembered in an LRU cache, with no time limit, as client-go's event
  logger) is not created again: the existing Event's ``count`` and ``lastTimestamp`` are
  patched (merge patch). If that Event is gone (Events expire after an hour), it is created
  again with the running count.

The recorder adds no object data to the message: the caller writes it, and must never put a
Secret value in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from prometheus_client import Counter

from flokoa_controller.kube.errors import AlreadyExists, ApiError, NotFound
from flokoa_controller.kube.resources import EVENTS, ResourceType
from flokoa_controller.runtime.clock import Clock, monotonic

__all__ = [
    "AGGREGATE_MAX_EVENTS",
    "AGGREGATE_PREFIX",
    "CORRELATION_WINDOW",
    "EVENTS_DROPPED",
    "EventClient",
    "EventRecorder",
    "EventType",
]

logger = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]
"""The two event types Kubernetes knows."""

CORRELATION_WINDOW = 600.0
"""Similar events (same object, type and reason) less than this many seconds apart are
counted together for aggregation (10 min)."""
AGGREGATE_MAX_EVENTS = 10
"""Distinct messages of one (object, type, reason) within the window before aggregation."""
AGGREGATE_PREFIX = "(combined from similar events): "
"""Message prefix of an aggregated event."""
SPAM_BURST = 25
"""Events an object may emit in a burst before the spam filter drops them."""
SPAM_QPS = 1.0 / 300.0
"""Refill rate of an object's spam-filter bucket (one event per five minutes)."""
CACHE_SIZE = 4096
"""Entries kept in each correlation cache (least recently used are evicted)."""
MAX_MESSAGE = 1024
"""Messages are truncated to this many characters."""

EVENTS_DROPPED = Counter(
    "flokoa_controller_events_dropped_total",
    "Events not written: queue_full, rate_limited (spam filter) or write_failed.",
    ["reason"],
)
for _reason in ("queue_full", "rate_limited", "write_failed"):
    EVENTS_DROPPED.labels(_reason)


class EventClient(Protocol):
    """The API client calls the recorder makes (a ``KubeClient`` provides them)."""

    async def create(
        self, rt: ResourceType, body: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        """Create an object."""
        ...

    async def patch(
        self,
        rt: ResourceType,
        name: str,
        patch: Mapping[str, Any],
        namespace: str | None = None,
        *,
        patch_type: Literal["merge", "json", "strategic"] = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Patch an object."""
        ...


@dataclass(slots=True)
class _Recorded:
    """An Event written (or queued to be written), for deduplication."""

    name: str
    namespace: str
    count: int
    first_timestamp: str
    body: dict[str, Any]


@dataclass(slots=True)
class _Similar:
    """Distinct messages seen for one (object, type, reason) within the window."""

    messages: set[str]
    last: float
    """When the last similar event was seen (the window slides)."""


@dataclass(slots=True)
class _Bucket:
    tokens: float
    last: float


@dataclass(frozen=True, slots=True)
class _Write:
    """One write for the background task: create ``body`` or patch the event it names."""

    body: dict[str, Any]
    patch: dict[str, Any] | None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _rfc3339(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _involved_object(obj: Mapping[str, Any]) -> dict[str, str]:
    metadata = obj.get("metadata") or {}
    ref = {
        "kind": obj.get("kind"),
        "apiVersion": obj.get("apiVersion"),
        "namespace": metadata.get("namespace"),
        "name": metadata.get("name"),
        "uid": metadata.get("uid"),
        "resourceVersion": metadata.get("resourceVersion"),
    }
    return {k: str(v) for k, v in ref.items() if v}


class EventRecorder:
    """Records core/v1 Events about objects, aggregated, deduplicated and rate limited.

    ``client``: the API client (``create`` and ``patch`` on ``EVENTS``).
    ``component``: ``source.component`` and ``reportingComponent`` (the controller's name).
    ``host``: ``source.host`` and ``reportingInstance`` (default: this machine's host name).
    ``max_queued``: bound of the write queue; further events are dropped and counted.
    ``clock``: monotonic time source for the window and the spam filter.
    ``wall_clock``: source of the events' timestamps (default: now, UTC).
    """

    def __init__(
        self,
        client: EventClient,
        component: str,
        host: str | None = None,
        *,
        max_queued: int = 1000,
        clock: Clock = monotonic,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Create the recorder (see the class docstring); nothing runs until the first event."""
        self.client = client
        self.component = component
        self.host = host if host is not None else socket.gethostname()
        self._clock = clock
        self._wall_clock: Callable[[], datetime] = wall_clock or _utcnow
        self._queue: asyncio.Queue[_Write] = asyncio.Queue(maxsize=max_queued)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._recorded: OrderedDict[tuple[str, ...], _Recorded] = OrderedDict()
        self._similar: OrderedDict[tuple[str, ...], _Similar] = OrderedDict()
        self._buckets: OrderedDict[tuple[str, ...], _Bucket] = OrderedDict()
        self._seq = itertools.count()
        self.dropped = 0
        """Events dropped so far (all reasons)."""

    # -- the public call -----------------------------------------------------------------------

    def event(self, obj: Mapping[str, Any], type: EventType, reason: str, message: str) -> None:
        """Record an event about ``obj``; never blocks, never raises for API trouble."""
        if self._closed:
            return
        now = self._clock()
        ref = _involved_object(obj)
        object_key = (
            ref.get("kind", ""),
            ref.get("apiVersion", ""),
            ref.get("namespace", ""),
            ref.get("name", ""),
            ref.get("uid", ""),
        )
        if not self._allow(object_key, now):
            self._drop("rate_limited")
            return
        message = message[:MAX_MESSAGE]
        message, identity = self._aggregate(object_key, type, reason, message, now)
        key = (*object_key, type, reason, identity)
        wall = _rfc3339(self._wall_clock())
        recorded = self._recorded.get(key)
        if recorded is not None:
            recorded.count += 1
            recorded.body["count"] = recorded.count
            recorded.body["lastTimestamp"] = wall
            recorded.body["message"] = message
            self._recorded.move_to_end(key)
            patch = {"count": recorded.count, "lastTimestamp": wall, "message": message}
            self._submit(_Write(dict(recorded.body), patch))
            return
        namespace = ref.get("namespace") or "default"
        name = f"{ref.get('name', 'unknown')}.{time.time_ns() + next(self._seq):x}"
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": type,
            "source": {"component": self.component, "host": self.host},
            "firstTimestamp": wall,
            "lastTimestamp": wall,
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        }
        self._recorded[key] = _Recorded(name, namespace, 1, wall, body)
        self._recorded.move_to_end(key)
        if len(self._recorded) > CACHE_SIZE:
            self._recorded.popitem(last=False)
        self._submit(_Write(dict(body), None))

    # -- lifecycle -----------------------------------------------------------------------------

    async def flush(self) -> None:
        """Wait until every queued write has been attempted."""
        self._ensure_writer()
        await self._queue.join()

    async def close(self, grace: float = 5.0) -> None:
        """Stop accepting events, give queued writes ``grace`` seconds, stop the writer."""
        self._closed = True
        self._ensure_writer()
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    # -- correlation -----------------------------------------------------------------------------

    def _allow(self, object_key: tuple[str, ...], now: float) -> bool:
        bucket = self._buckets.get(object_key)
        if bucket is None:
            bucket = _Bucket(float(SPAM_BURST), now)
            self._buckets[object_key] = bucket
            if len(self._buckets) > CACHE_SIZE:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(object_key)
            if now > bucket.last:
                bucket.tokens = min(
                    float(SPAM_BURST), bucket.tokens + (now - bucket.last) * SPAM_QPS
                )
                bucket.last = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _aggregate(
        self, object_key: tuple[str, ...], type: str, reason: str, message: str, now: float
    ) -> tuple[str, str]:
        """Return the message to record and its identity for deduplication.

        Aggregated events share one identity, so they all update a single combined Event.
        """
        key = (*object_key, type, reason)
        similar = self._similar.get(key)
        if similar is None or now - similar.last > CORRELATION_WINDOW:
            similar = _Similar(set(), now)
            self._similar[key] = similar
            if len(self._similar) > CACHE_SIZE:
                self._similar.popitem(last=False)
        similar.last = now
        self._similar.move_to_end(key)
        if message in similar.messages:
            return message, message
        if len(similar.messages) < AGGREGATE_MAX_EVENTS - 1:
            similar.messages.add(message)
            return message, message
        return AGGREGATE_PREFIX + message, "\x00" + AGGREGATE_PREFIX

    # -- writing ---------------------------------------------------------------------------------

    def _submit(self, write: _Write) -> None:
        try:
            self._queue.put_nowait(write)
        except asyncio.QueueFull:
            self._drop("queue_full")
            return
        self._ensure_writer()

    def _ensure_writer(self) -> None:
        """Start the background writer if events wait and none runs (needs a running loop:
        events recorded outside one are written once the recorder is next used inside one)."""
        if self._queue.empty() or (self._task is not None and not self._task.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._writer(), name=f"event-recorder-{self.component}")

    def _drop(self, reason: str) -> None:
        self.dropped += 1
        EVENTS_DROPPED.labels(reason).inc()

    async def _writer(self) -> None:
        queue = self._queue
        while True:
            write = await queue.get()
            try:
                await self._write(write)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._drop("write_failed")
                logger.warning(
                    "Could not write event %s/%s (%s): %s",
                    write.body["metadata"]["namespace"],
                    write.body["metadata"]["name"],
                    write.body["reason"],
                    exc if isinstance(exc, ApiError) else type(exc).__name__,
                )
            finally:
                queue.task_done()

    async def _write(self, write: _Write) -> None:
        body = write.body
        namespace = body["metadata"]["namespace"]
        if write.patch is not None:
            try:
                await self.client.patch(
                    EVENTS, body["metadata"]["name"], write.patch, namespace, patch_type="merge"
                )
                return
            except NotFound:
                pass  # expired or never created: create it with the current count
        try:
            await self.client.create(EVENTS, body, namespace)
        except AlreadyExists:
            if write.patch is None:
                return
            await self.client.patch(
                EVENTS, body["metadata"]["name"], write.patch, namespace, patch_type="merge"
            )
