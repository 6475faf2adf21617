"""Watch streams: newline-delimited JSON events replayed from the bucket history.

A watch is an async iterator of byte chunks (one or more ``{"type":…,"object":…}\\n`` lines)
that the HTTP layer writes to a chunked response. It follows kube-apiserver's watch cache:

* ``resourceVersion`` unset or ``0``: synthetic ADDED events for the current state first;
  a specific resourceVersion: the changes after it, or one ERROR event with a 410 Expired
  ``Status`` when it is older than the history window;
* ``sendInitialEvents=true`` (streaming list): the current state, then a BOOKMARK annotated
  ``k8s.io/initial-events-end: "true"``;
* ``allowWatchBookmarks``: a BOOKMARK with the current resourceVersion every bookmark interval
  and, like kube's watch cache, one more 2 s before the watch's deadline (``timeoutSeconds``),
  so that a client resumes from a recent resourceVersion even when nothing it selects changed;
* label and field selectors: an object entering the selection arrives as ADDED, one leaving it
  as DELETED (its previous state with the event's resourceVersion);
* ``timeoutSeconds`` ends the stream cleanly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from flokoa_envtest.errors import StatusError
from flokoa_envtest.resources import ResourceInfo
from flokoa_envtest.selectors import FieldSelector, LabelSelector
from flokoa_envtest.storage import (
    ADDED,
    DELETED,
    MODIFIED,
    Change,
    Record,
    Storage,
    Waker,
    dumps,
)

JSON = dict[str, Any]

INITIAL_EVENTS_END = "k8s.io/initial-events-end"

PRE_TIMEOUT_BOOKMARK = 2.0
"""Seconds before a watch's deadline when kube's watch cache sends its last BOOKMARK."""

CHUNK_EVENTS = 500
"""Most events in one chunk: a watch catching up (or sending the initial state) renders and
holds at most this many events at a time, however far behind it is."""

Render = Callable[[JSON, bytes], bytes]
"""Turns an object (served form) and its JSON bytes into the event's object bytes."""


def raw_json(obj: JSON, raw: bytes) -> bytes:
    """The plain JSON :data:`Render`: the stored bytes as they are (watches using it copy
    each object's bytes once, straight into the chunk)."""
    return raw


@dataclass
class WatchSpec:
    """What one watch request asks for."""

    info: ResourceInfo
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    resource_version: str = ""
    send_initial_events: bool | None = None
    allow_bookmarks: bool = False
    timeout: float | None = None
    """Seconds until the stream ends cleanly (``timeoutSeconds``; None: never)."""
    bookmark_interval: float = 60.0


@dataclass(eq=False)
class WatchHandle:
    """Control of one running watch (for the fault knobs and shutdown)."""

    waker: Waker = field(default_factory=Waker)
    dropped: bool = False
    """Set to end the watch abruptly (the HTTP layer then resets the connection)."""
    ended: bool = False
    """Set to end the watch cleanly."""
    zombie_check: Callable[[], bool] = field(default=lambda: False)
    """Polled: True turns the watch into a zombie (kept open, silent, until dropped)."""
    max_age: Callable[[], float | None] = field(default=lambda: None)
    """Polled: seconds after which every watch ends cleanly (a fault knob; None: no limit)."""
    abort: Callable[[], None] | None = None
    """Resets the connection at once (set by the HTTP layer), so that a watch blocked on a
    client that stopped reading is dropped too."""

    def drop(self) -> None:
        """End abruptly."""
        self.dropped = True
        self.waker.ring()
        if self.abort is not None:
            self.abort()

    def end(self) -> None:
        """End cleanly."""
        self.ended = True
        self.waker.ring()


def event_line(kind: str, obj: bytes) -> bytes:
    """One watch event line."""
    return b'{"type":"' + kind.encode() + b'","object":' + obj + b"}\n"


_LINE_HEAD = {
    kind: b'{"type":"' + kind.encode() + b'","object":' for kind in (ADDED, MODIFIED, DELETED)
}
_LINE_TAIL = b"}\n"


def error_line(status: JSON) -> bytes:
    """The ERROR event carrying a ``Status``."""
    return event_line("ERROR", dumps(status))


class Watch:
    """One watch stream over a storage bucket."""

    def __init__(
        self, storage: Storage, spec: WatchSpec, render: Render, handle: WatchHandle
    ) -> None:
        self.storage = storage
        self.spec = spec
        self.render = render
        self.handle = handle
        self._bucket = storage.bucket(spec.info.bucket)
        self._filtering = not spec.labels.empty or not spec.fields.empty
        self._plain = render is raw_json and spec.info.view is None and not self._filtering

    # --- event conversion --------------------------------------------------------------------

    def _selected(self, obj: JSON) -> bool:
        return self.spec.labels.matches(
            obj.get("metadata", {}).get("labels")
        ) and self.spec.fields.matches(obj)

    def _object_bytes(self, record: Record) -> bytes:
        info = self.spec.info
        if info.view is None:
            return self.render(record.obj, record.raw)
        obj, raw = record.view(info.view.name, info.view.to_view)
        return self.render(obj, raw)

    def _convert(self, change: Change) -> bytes | None:
        ns = self.spec.namespace
        if ns and change.namespace != ns:
            return None
        if not self._filtering:
            return event_line(change.type, self._object_bytes(change.record))
        cur = change.type != DELETED and self._selected(change.record.obj)
        old = change.prev is not None and self._selected(change.prev.obj)
        if cur and not old:
            return event_line(ADDED, self._object_bytes(change.record))
        if cur and old:
            return event_line(MODIFIED, self._object_bytes(change.record))
        if old:
            if change.type == DELETED:
                return event_line(DELETED, self._object_bytes(change.record))
            assert change.prev is not None
            prev = orjson.loads(change.prev.raw)
            prev["metadata"]["resourceVersion"] = str(change.rv)
            return event_line(DELETED, self._object_bytes(Record(prev, dumps(prev), change.rv)))
        return None

    def _bookmark(self, rv: int, *, initial_end: bool = False) -> bytes:
        meta: JSON = {"resourceVersion": str(rv), "creationTimestamp": None}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        obj = {
            "kind": self.spec.info.kind,
            "apiVersion": self.spec.info.api_version,
            "metadata": meta,
        }
        return event_line("BOOKMARK", dumps(obj))

    def _initial(self) -> list[Record]:
        """The selected records now (references only: records are immutable)."""
        ns = self.spec.namespace if self.spec.info.namespaced else None
        records = self.storage.iterate(self.spec.info.bucket, ns)
        if not self._filtering:
            return [record for _key, record in records]
        return [record for _key, record in records if self._selected(record.obj)]

    # --- the stream --------------------------------------------------------------------------

    def start_rv(self) -> tuple[int, bool]:
        """The resourceVersion to replay from and whether to send the current state first.

        Raises the 410 :class:`StatusError` of a resourceVersion older than the history.
        """
        rv_text = self.spec.resource_version
        if self.spec.send_initial_events:
            return self.storage.rv, True
        if rv_text in ("", "0"):
            if self.spec.send_initial_events is False:
                return self.storage.rv, False
            return self.storage.rv, True
        rv = int(rv_text)
        self.storage.check_resumable(self.spec.info.bucket, rv)
        return rv, False

    async def stream(self, cursor: int, initial: bool) -> AsyncIterator[bytes]:
        """The event chunks until timeout, drop or end (raises nothing on a clean end).

        ``cursor`` and ``initial`` come from :meth:`start_rv`. With ``initial``, the state is
        read when the stream starts and the cursor moves to the resourceVersion of that very
        read, so a write in between is neither lost nor sent twice.
        """
        loop = asyncio.get_running_loop()
        spec = self.spec
        handle = self.handle
        started = loop.time()
        own_deadline = started + spec.timeout if spec.timeout is not None else None
        self._bucket.wakers.add(handle.waker)
        try:
            if initial:
                cursor = self.storage.rv  # the state and its resourceVersion, read together
                records = self._initial()
                for i in range(0, len(records), CHUNK_EVENTS):
                    batch = records[i : i + CHUNK_EVENTS]
                    yield b"".join(event_line(ADDED, self._object_bytes(r)) for r in batch)
                del records
                if spec.send_initial_events and spec.allow_bookmarks:
                    yield self._bookmark(cursor, initial_end=True)
            next_bookmark = self._next_bookmark(loop.time(), own_deadline)
            while True:
                handle.waker.event.clear()
                if handle.dropped or handle.ended:
                    return
                if handle.zombie_check():
                    await self._zombie()
                    return
                if self.storage.buckets.get(spec.info.bucket) is not self._bucket:
                    return  # the resource went away (CRD deleted)
                try:
                    changes = self.storage.changes_since(spec.info.bucket, cursor, CHUNK_EVENTS)
                except StatusError:
                    return  # fell behind the history window: close, the client resumes
                if changes:
                    out: list[bytes] = []
                    if self._plain:  # the common case: pieces joined once, no per-event copy
                        ns = spec.namespace
                        for change in changes:
                            if not ns or change.namespace == ns:
                                out += (_LINE_HEAD[change.type], change.record.raw, _LINE_TAIL)
                    else:
                        for change in changes:
                            line = self._convert(change)
                            if line is not None:
                                out.append(line)
                    cursor = changes[-1].rv
                    if out:
                        yield b"".join(out)
                    continue
                now = loop.time()
                deadline = own_deadline
                max_age = handle.max_age()
                if max_age is not None:
                    forced = started + max_age
                    deadline = forced if deadline is None else min(deadline, forced)
                if deadline is not None and now >= deadline:
                    return
                if next_bookmark is not None and now >= next_bookmark:
                    cursor = max(cursor, self.storage.rv)
                    yield self._bookmark(cursor)
                    next_bookmark = self._next_bookmark(loop.time(), own_deadline)
                    continue
                wake_at = next_bookmark
                if deadline is not None:
                    wake_at = deadline if wake_at is None else min(wake_at, deadline)
                try:
                    if wake_at is None:
                        await handle.waker.event.wait()
                    else:
                        async with asyncio.timeout(max(0.0, wake_at - now)):
                            await handle.waker.event.wait()
                except TimeoutError:
                    pass
        finally:
            self._bucket.wakers.discard(handle.waker)

    def _next_bookmark(self, now: float, deadline: float | None) -> float | None:
        """When the next BOOKMARK is due (None: no more), as kube's ``nextBookmarkTime``.

        Every bookmark interval, but no later than 2 s before the deadline; none once that
        moment has passed.
        """
        if not self.spec.allow_bookmarks:
            return None
        due = now + self.spec.bookmark_interval
        if deadline is not None:
            due = min(due, deadline - PRE_TIMEOUT_BOOKMARK)
        return due if due > now else None

    async def _zombie(self) -> None:
        """Stay open and silent until dropped or cancelled (client gone, server stopping)."""
        while not self.handle.dropped:
            self.handle.waker.event.clear()
            await self.handle.waker.event.wait()
