"""The reflector: keeps a local view of one resource in one scope in step with the API server.

One :class:`Reflector` serves one resource in one namespace (or in all namespaces). It
delivers a *snapshot* (``sink.replace``) after each full list and single *events*
(``sink.apply``) from the watch in between; the informer turns these into store changes and
handler calls. Behaviour (client-go's reflector, with fewer relists):

- Initial state: the streaming list (a watch with ``sendInitialEvents=true`` that ends its
  initial state with a BOOKMARK annotated ``k8s.io/initial-events-end``) when enabled and the
  server supports it; otherwise a paginated list (``limit=500`` + ``continue``; an expired
  continue token restarts as one unpaginated list), then a watch from the list's
  resourceVersion. Like client-go ("making progress is better than deadlocking"), *any*
  failure of the streaming list before its initial state is complete falls back to list+watch
  at once: an HTTP error of any code (a v1.32 server over an etcd without progress
  notifications answers ``500 InternalError``), a transport error, a stream that ends or goes
  silent early, or a server that answers it like a plain watch (a BOOKMARK without the
  annotation, a MODIFIED/DELETED during the initial state). The one exception is 429: the
  server is throttling, so the reflector waits (Retry-After) and tries the streaming list
  again rather than sending a costlier list. The failure is remembered: relists
  within ``streaming_retry_interval`` use list+watch without trying the streaming list again.
  Each fallback counts in ``flokoa_reflector_streaming_list_fallbacks_total{resource}``; the
  first one of a reflector is logged at INFO, later ones at DEBUG.
- Watches ask for bookmarks and a ``timeoutSeconds`` drawn uniformly from [300, 600] so that
  many clients do not reconnect together. A watch that ends (server timeout, dropped
  connection) resumes from the last seen resourceVersion: no relist.
- BOOKMARK events only advance the resourceVersion.
- 410 Gone / Expired, as an HTTP status or as a watch ERROR event, discards the
  resourceVersion and relists (at once the first time; after a backoff delay if it repeats).
- Any other failure waits for a backoff delay (0.8 s, doubling, full jitter, cap 30 s, reset after
  2 minutes without failures) and resumes the watch (or retries the list if none finished
  yet); 429 waits at least the server's Retry-After.
- A watch that delivers nothing (no event, no bookmark) for ``inactivity_timeout`` seconds
  is a "zombie": it is closed and resumed from the last resourceVersion.
- A watch that ends normally within a second without delivering anything (a proxy or a
  broken server closing every watch at once) is resumed only after a backoff delay, as
  client-go does with its "very short watch": no tight reconnect loop.

Every object is passed through ``transform`` (``apiVersion`` and ``kind`` filled in first,
as list responses may omit them) before the sink sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from flokoa_controller.kube.errors import (
    ApiError,
    Gone,
    TooManyRequests,
    error_from_response,
)
from flokoa_controller.kube.resources import ResourceType
from flokoa_controller.runtime.backoff import Backoff
from flokoa_controller.runtime.clock import Clock, monotonic
from flokoa_controller.runtime.meta import resource_version_of
from flokoa_controller.runtime.metrics import REFLECTOR_STREAMING_LIST_FALLBACKS
from flokoa_controller.runtime.transform import Transform, default_transform

__all__ = [
    "INITIAL_EVENTS_END_ANNOTATION",
    "ListerWatcher",
    "Reflector",
    "ReflectorSink",
    "ReflectorStats",
    "WatchEventLike",
]

log = logging.getLogger(__name__)

INITIAL_EVENTS_END_ANNOTATION = "k8s.io/initial-events-end"
"""Annotation of the BOOKMARK that ends a streaming list's initial state."""

_SHORT_WATCH_SECONDS = 1.0


class WatchEventLike(Protocol):
    """A watch event as the API client yields it (``kube.client.WatchEvent``)."""

    @property
    def type(self) -> str:
        """ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."""

    @property
    def object(self) -> dict[str, Any]:
        """The object (a ``Status`` for ERROR)."""


class ListerWatcher(Protocol):
    """The part of ``kube.client.KubeClient`` the reflector uses."""

    async def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """One page of a list."""

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
        send_initial_events: bool = False,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> AsyncIterator[Any]:
        """A stream of watch events."""


class ReflectorSink(Protocol):
    """Where a reflector delivers what it sees (the informer)."""

    def replace(
        self, namespace: str | None, objs: list[dict[str, Any]], resource_version: str
    ) -> None:
        """A complete, consistent snapshot of the scope at ``resource_version``."""

    def apply(self, event_type: str, obj: dict[str, Any]) -> None:
        """One ADDED, MODIFIED or DELETED event (``obj`` already transformed)."""


@dataclass
class ReflectorStats:
    """Counters of what a reflector did (for tests, benchmarks and debugging)."""

    lists: int = 0
    """Full lists completed (paginated or not)."""
    pages: int = 0
    """List pages fetched."""
    streaming_lists: int = 0
    """Streaming lists completed (initial-events-end bookmark received)."""
    watches: int = 0
    """Watch requests started (streaming lists included)."""
    events: int = 0
    """ADDED/MODIFIED/DELETED events applied from watches (initial events excluded)."""
    bookmarks: int = 0
    """BOOKMARK events received."""
    gone: int = 0
    """410 Gone / Expired answers (each leads to a relist)."""
    errors: int = 0
    """Other failures (each followed by a backoff delay)."""
    inactivity_timeouts: int = 0
    """Watches closed because they stayed silent for the inactivity timeout."""
    streaming_fallbacks: int = 0
    """Streaming lists that failed before their initial state and fell back to list+watch."""
    short_watches: int = 0
    """Watches that ended within a second with nothing delivered (resumed after a backoff)."""


class _WatchInactive(Exception):
    """The watch delivered nothing for the inactivity timeout."""


class _NotAStreamingList(Exception):
    """The server answered the streaming list like a plain watch."""


class _ShortWatch(Exception):
    """A watch ended normally at once without delivering anything."""


def _failure_text(exc: Exception, inactivity_timeout: float | None) -> str:
    """Why a streaming list failed, for the fallback log line."""
    if isinstance(exc, _WatchInactive):
        return f"the stream was silent for {inactivity_timeout or 0.0:.0f}s"
    if isinstance(exc, ApiError | _NotAStreamingList):
        return str(exc)
    return type(exc).__name__


class Reflector:
    """List+watch (or streaming list) of one resource in one scope into a sink."""

    def __init__(
        self,
        client: ListerWatcher,
        rt: ResourceType,
        sink: ReflectorSink,
        *,
        namespace: str | None = None,
        transform: Transform = default_transform,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
        streaming_list: bool = True,
        inactivity_timeout: float | None = 90.0,
        min_watch_timeout: int = 300,
        max_watch_timeout: int = 600,
        backoff: Backoff | None = None,
        streaming_retry_interval: float = 600.0,
        rng: Callable[[int, int], int] = random.randint,
        sleep: Callable[[float], Any] = asyncio.sleep,
        clock: Clock = monotonic,
    ) -> None:
        """Configure the reflector; :meth:`run` does the work.

        ``namespace`` ``None`` watches all namespaces (or a cluster-scoped resource).
        ``inactivity_timeout`` ``None`` disables the zombie-watch defence. ``rng`` draws the
        watch timeout from ``[min_watch_timeout, max_watch_timeout]``. After a streaming list
        failed, relists use list+watch for ``streaming_retry_interval`` seconds (on ``clock``).
        """
        self._client = client
        self.resource = rt
        self._sink = sink
        self.namespace = namespace
        self._transform = transform
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._page_size = page_size
        self._streaming = streaming_list
        self._streaming_retry_interval = streaming_retry_interval
        self._streaming_retry_at: float | None = None
        self._clock = clock
        self.inactivity_timeout = inactivity_timeout
        self._min_watch_timeout = min_watch_timeout
        self._max_watch_timeout = max_watch_timeout
        self._backoff = backoff or Backoff()
        self._rng = rng
        self._sleep = sleep
        self._need_list = True
        self._gone_streak = 0
        self.resource_version = ""
        """The last resourceVersion seen (list, event or bookmark); "" before the first."""
        self.stats = ReflectorStats()
        """What this reflector did so far."""

    @property
    def streaming_list(self) -> bool:
        """Whether the next (re)list will try the streaming list."""
        if not self._streaming:
            return False
        return self._streaming_retry_at is None or self._clock() >= self._streaming_retry_at

    @property
    def scope(self) -> str:
        """Human-readable scope for logs: the resource and the namespace."""
        return f"{self.resource} in {self.namespace or 'all namespaces'}"

    # -- main loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """List and watch until cancelled; never returns otherwise, never raises."""
        while True:
            delay = 0.0
            try:
                if self._need_list:
                    await self._list_and_watch()
                else:
                    await self._watch()
                self._gone_streak = 0
            except Gone as exc:
                self.stats.gone += 1
                self._need_list = True
                self._gone_streak += 1
                log.info("%s: resourceVersion expired (%s); relisting", self.scope, exc.reason)
                if self._gone_streak > 1:
                    delay = self._backoff.next_delay()
            except _ShortWatch:
                self.stats.short_watches += 1
                delay = self._backoff.next_delay()
                log.info(
                    "%s: watch closed at once without events; resuming in %.1fs",
                    self.scope,
                    delay,
                )
            except _WatchInactive:
                self.stats.inactivity_timeouts += 1
                log.warning(
                    "%s: watch silent for %.0fs; restarting it from resourceVersion %s",
                    self.scope,
                    self.inactivity_timeout or 0.0,
                    self.resource_version,
                )
            except TooManyRequests as exc:
                self.stats.errors += 1
                delay = max(exc.retry_after or 0.0, self._backoff.next_delay())
                log.info("%s: throttled (429); retrying in %.1fs", self.scope, delay)
            except ApiError as exc:
                self.stats.errors += 1
                delay = self._backoff.next_delay()
                log.warning("%s: %s; retrying in %.1fs", self.scope, exc, delay)
            except Exception as exc:
                self.stats.errors += 1
                delay = self._backoff.next_delay()
                log.warning(
                    "%s: unexpected %s; retrying in %.1fs",
                    self.scope,
                    type(exc).__name__,
                    delay,
                    exc_info=True,
                )
            if delay > 0:
                await self._sleep(delay)

    # -- list ------------------------------------------------------------------------------

    async def _list_and_watch(self) -> None:
        if self.streaming_list:
            failure = await self._streaming_list_and_watch()
            if failure is None:
                return
            self._fall_back(failure)
        await self._list()
        await self._watch()

    def _fall_back(self, why: str) -> None:
        self._streaming_retry_at = self._clock() + self._streaming_retry_interval
        self.stats.streaming_fallbacks += 1
        REFLECTOR_STREAMING_LIST_FALLBACKS.labels(str(self.resource)).inc()
        log.log(
            logging.INFO if self.stats.streaming_fallbacks == 1 else logging.DEBUG,
            "%s: streaming list failed (%s); using list+watch, and again on relists for %.0fs",
            self.scope,
            why,
            self._streaming_retry_interval,
        )

    async def _list(self) -> None:
        objs: list[dict[str, Any]] = []
        token: str | None = None
        limit: int | None = self._page_size
        while True:
            try:
                page = await self._client.list(
                    self.resource,
                    self.namespace,
                    label_selector=self._label_selector,
                    field_selector=self._field_selector,
                    limit=limit,
                    continue_token=token,
                )
            except Gone:
                if token is None:
                    raise
                log.info("%s: list continue token expired; listing again in one page", self.scope)
                objs, token, limit = [], None, None
                continue
            self.stats.pages += 1
            objs.extend(self._prepare(item) for item in page.get("items") or [])
            metadata = page.get("metadata") or {}
            token = metadata.get("continue") or None
            if token is None:
                version = str(metadata.get("resourceVersion") or "")
                break
        self.stats.lists += 1
        self._sink.replace(self.namespace, objs, version)
        self.resource_version = version
        self._need_list = False
        log.debug("%s: listed %d objects at resourceVersion %s", self.scope, len(objs), version)

    async def _streaming_list_and_watch(self) -> str | None:
        """Fill the store with a streaming list, then go on watching on the same stream.

        Returns ``None`` after the stream served its initial state and ended normally. Returns
        why it failed when anything goes wrong *before* the initial state is complete (the
        caller falls back to list+watch); failures after it propagate like any watch failure.
        """
        pending: dict[str, dict[str, Any]] = {}
        synced = False
        version = ""

        def on_event(event: WatchEventLike) -> None:
            nonlocal synced, version, pending
            if synced:
                self._handle(event)
                return
            kind = event.type
            obj = event.object
            if kind == "ERROR":
                raise self._status_error(obj)
            if kind == "ADDED":
                prepared = self._prepare(obj)
                meta = prepared.get("metadata") or {}
                ns = meta.get("namespace")
                pending[f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))] = prepared
                version = resource_version_of(prepared) or version
                return
            if kind == "BOOKMARK":
                annotations = (obj.get("metadata") or {}).get("annotations") or {}
                if annotations.get(INITIAL_EVENTS_END_ANNOTATION) != "true":
                    raise _NotAStreamingList("a BOOKMARK came before the initial-events-end")
                version = resource_version_of(obj) or version
                self.stats.bookmarks += 1
                self.stats.streaming_lists += 1
                self._sink.replace(self.namespace, list(pending.values()), version)
                pending = {}
                synced = True
                self.resource_version = version
                self._need_list = False
                self._streaming_retry_at = None
                log.debug("%s: streaming list complete at resourceVersion %s", self.scope, version)
                return
            raise _NotAStreamingList(f"a {kind} event came during the initial state")

        try:
            await self._consume(self._open_watch(None, send_initial_events=True), on_event)
        except TooManyRequests:
            raise  # throttled, not unsupported: a list would cost the server more
        except Exception as exc:
            if synced:
                raise
            return _failure_text(exc, self.inactivity_timeout)
        if not synced:
            return "the stream ended before its initial state was complete"
        return None

    # -- watch -----------------------------------------------------------------------------

    def _open_watch(
        self, resource_version: str | None, *, send_initial_events: bool = False
    ) -> AsyncIterator[Any]:
        self.stats.watches += 1
        return self._client.watch(
            self.resource,
            self.namespace,
            resource_version=resource_version,
            timeout_seconds=self._rng(self._min_watch_timeout, self._max_watch_timeout),
            allow_bookmarks=True,
            send_initial_events=send_initial_events,
            label_selector=self._label_selector,
            field_selector=self._field_selector,
        )

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        delivered = self.stats.events + self.stats.bookmarks
        await self._consume(self._open_watch(self.resource_version), self._handle)
        if (
            self.stats.events + self.stats.bookmarks == delivered
            and loop.time() - started < _SHORT_WATCH_SECONDS
        ):
            raise _ShortWatch

    async def _consume(
        self, stream: AsyncIterator[Any], on_event: Callable[[WatchEventLike], None]
    ) -> None:
        """Feed ``stream`` to ``on_event``, closing it after ``inactivity_timeout`` of silence."""
        loop = asyncio.get_running_loop()
        idle = self.inactivity_timeout
        try:
            async with contextlib.AsyncExitStack() as stack:
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    stack.push_async_callback(aclose)
                async with asyncio.timeout(idle) as deadline:
                    async for event in stream:
                        if idle is not None:
                            deadline.reschedule(loop.time() + idle)
                        on_event(event)
        except TimeoutError:
            if deadline.expired():
                raise _WatchInactive from None
            raise

    def _handle(self, event: WatchEventLike) -> None:
        kind = event.type
        obj = event.object
        if kind == "BOOKMARK":
            self.stats.bookmarks += 1
            self.resource_version = resource_version_of(obj) or self.resource_version
            return
        if kind == "ERROR":
            raise self._status_error(obj)
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            log.warning("%s: ignoring watch event of unknown type %r", self.scope, kind)
            return
        prepared = self._prepare(obj)
        self.stats.events += 1
        self._sink.apply(kind, prepared)
        self.resource_version = resource_version_of(prepared) or self.resource_version

    # -- helpers ---------------------------------------------------------------------------

    def _prepare(self, obj: dict[str, Any]) -> dict[str, Any]:
        if "kind" not in obj or "apiVersion" not in obj:
            obj = {"apiVersion": self.resource.api_version, "kind": self.resource.kind, **obj}
        return self._transform(obj)

    def _status_error(self, status: Mapping[str, Any]) -> ApiError:
        error = error_from_response(
            0, status, verb="WATCH", path=self.resource.path(self.namespace)
        )
        if not error.code and not error.reason:
            return ApiError(0, "WatchError", "the watch sent an ERROR event without a Status")
        return error
