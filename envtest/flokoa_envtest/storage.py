"""The in-memory object store: one global resourceVersion, per-resource buckets and history.

This plays etcd plus kube-apiserver's watch cache. Each stored object is an immutable
:class:`Record` holding the object and its serialized JSON bytes (built once with orjson, so a
list of 10,000 objects is a join of cached byte strings). Keys sort like etcd keys
(``namespace/name``), so lists come back in kube's order and a namespace is a contiguous range.

Every write appends a :class:`Change` to its bucket's bounded history. Watches replay it from a
resourceVersion; a resourceVersion older than the history window is answered with 410 Expired.
Lists at an older resourceVersion (``resourceVersionMatch=Exact`` and ``continue`` tokens) are
served consistently by undoing the newer changes from the history.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from flokoa_envtest.errors import expired, too_old_resource_version

JSON = dict[str, Any]

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"

DEFAULT_WATCH_HISTORY = 10_000
"""Default number of changes each resource keeps for watch resumption."""


_META_ORDER = (
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)


def dumps(obj: Any) -> bytes:
    """Serialize JSON the way the server answers (orjson, UTF-8, no spaces)."""
    return orjson.dumps(obj)


@dataclass(slots=True)
class Record:
    """An immutable stored object: the dict, its JSON bytes, its resourceVersion.

    ``views`` caches the object converted to other served versions (another CRD version, the
    events.k8s.io form of an Event), keyed by the view's name.
    """

    obj: JSON
    raw: bytes
    rv: int
    views: dict[str, tuple[JSON, bytes]] | None = None

    def view(self, name: str, convert: Callable[[JSON], JSON]) -> tuple[JSON, bytes]:
        """The object and its bytes converted with ``convert`` (cached under ``name``)."""
        if self.views is None:
            self.views = {}
        cached = self.views.get(name)
        if cached is None:
            converted = convert(self.obj)
            cached = (converted, dumps(converted))
            self.views[name] = cached
        return cached


@dataclass(slots=True)
class Change:
    """One write in a bucket's history (a future watch event)."""

    rv: int
    type: str
    """ADDED, MODIFIED or DELETED."""
    key: str
    namespace: str
    record: Record
    """The new state; for DELETED the final state stamped with the deletion's resourceVersion."""
    prev: Record | None
    """The state before the change (None for ADDED)."""


@dataclass(eq=False)
class Waker:
    """A watch's doorbell: set when its bucket changes or the watch must stop."""

    event: asyncio.Event = field(default_factory=asyncio.Event)

    def ring(self) -> None:
        """Wake the watch."""
        if not self.event.is_set():
            self.event.set()


@dataclass(eq=False)
class Bucket:
    """All objects of one stored resource (shared by every served version of it)."""

    name: str
    records: dict[str, Record] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    history: list[Change] = field(default_factory=list)
    compacted_rv: int = 0
    """resourceVersion of the newest change dropped from ``history`` (0: nothing dropped)."""
    wakers: set[Waker] = field(default_factory=set)


def object_key(namespace: str, name: str) -> str:
    """The storage key of an object (etcd order: ``namespace/name`` or ``name``)."""
    return f"{namespace}/{name}" if namespace else name


def _namespace_range(keys: list[str], namespace: str | None) -> tuple[int, int]:
    if not namespace:
        return 0, len(keys)
    prefix = namespace + "/"
    lo = bisect.bisect_left(keys, prefix)
    hi = bisect.bisect_left(keys, namespace + "0")  # '0' follows '/'
    return lo, hi


class Storage:
    """Buckets of records, the global resourceVersion and the bounded watch history."""

    def __init__(self, *, history_limit: int = DEFAULT_WATCH_HISTORY) -> None:
        self.rv = 1
        """The current (latest) global resourceVersion."""
        self.history_limit = max(1, history_limit)
        """Changes kept per bucket for watch resumption and consistent paged lists."""
        self.buckets: dict[str, Bucket] = {}
        self.namespace_counts: dict[str, int] = {}
        """How many objects each namespace holds (to finish namespace deletion)."""

    # --- buckets ---------------------------------------------------------------------------

    def bucket(self, name: str) -> Bucket:
        """The bucket called ``name`` (created empty on first use)."""
        b = self.buckets.get(name)
        if b is None:
            b = Bucket(name, compacted_rv=0)
            self.buckets[name] = b
        return b

    def open_bucket(self, name: str) -> Bucket:
        """The bucket of a resource that starts being served now (a CRD became established).

        Like the watch cache kube-apiserver starts for it, its history begins at the current
        resourceVersion: a watch from an older one is 410 Expired.
        """
        b = self.buckets.get(name)
        if b is None:
            b = Bucket(name, compacted_rv=self.rv)
            self.buckets[name] = b
        return b

    def drop_bucket(self, name: str) -> None:
        """Forget a bucket entirely (its CRD is gone); its watches are woken to end."""
        b = self.buckets.pop(name, None)
        if b is None:
            return
        for rec in b.records.values():
            ns = rec.obj.get("metadata", {}).get("namespace") or ""
            if ns:
                self._count(ns, -1)
        for w in list(b.wakers):
            w.ring()

    # --- reads -----------------------------------------------------------------------------

    def get(self, bucket: str, key: str) -> Record | None:
        """The current record at ``key``."""
        b = self.buckets.get(bucket)
        return b.records.get(key) if b else None

    def count(self, bucket: str, namespace: str | None = None) -> int:
        """Number of objects (in ``namespace`` if given)."""
        b = self.buckets.get(bucket)
        if b is None:
            return 0
        lo, hi = _namespace_range(b.keys, namespace)
        return hi - lo

    def iterate(
        self,
        bucket: str,
        namespace: str | None = None,
        *,
        at_rv: int | None = None,
        after: str | None = None,
    ) -> Iterator[tuple[str, Record]]:
        """Records in key order, optionally after key ``after`` and as they were at ``at_rv``.

        Raises 410 Expired when ``at_rv`` is older than the bucket's history.
        """
        b = self.buckets.get(bucket)
        if b is None:
            return iter(())
        overlay = self._overlay(b, at_rv) if at_rv is not None else {}
        lo, hi = _namespace_range(b.keys, namespace)
        if after is not None:
            lo = max(lo, bisect.bisect_right(b.keys, after))
        if not overlay:
            return ((k, b.records[k]) for k in b.keys[lo:hi])
        extra = [
            k
            for k in overlay
            if (not namespace or k.startswith(namespace + "/"))
            and (after is None or k > after)
            and k not in b.records
        ]
        keys = sorted([*b.keys[lo:hi], *extra])
        return self._with_overlay(b, keys, overlay)

    @staticmethod
    def _with_overlay(
        b: Bucket, keys: list[str], overlay: dict[str, Record | None]
    ) -> Iterator[tuple[str, Record]]:
        for k in keys:
            rec = overlay[k] if k in overlay else b.records.get(k)
            if rec is not None:
                yield k, rec

    def _overlay(self, b: Bucket, at_rv: int) -> dict[str, Record | None]:
        if at_rv >= self.rv:
            return {}
        if at_rv < b.compacted_rv:
            raise expired(
                f"The resourceVersion for the provided list is too old. "
                f"(requested {at_rv}, oldest {b.compacted_rv})"
            )
        start = bisect.bisect_right(b.history, at_rv, key=lambda c: c.rv)
        overlay: dict[str, Record | None] = {}
        for change in b.history[start:]:
            if change.key not in overlay:
                overlay[change.key] = change.prev
        return overlay

    def changes_since(self, bucket: str, rv: int, limit: int | None = None) -> list[Change]:
        """The bucket's changes newer than ``rv`` (at most ``limit``, oldest first); 410
        Expired if ``rv`` fell out of history."""
        b = self.buckets.get(bucket)
        if b is None:
            return []
        if rv < b.compacted_rv:
            raise too_old_resource_version(rv, b.compacted_rv + 1)
        if not b.history or b.history[-1].rv <= rv:
            return []
        start = bisect.bisect_right(b.history, rv, key=lambda c: c.rv)
        return b.history[start : start + limit if limit is not None else None]

    def check_resumable(self, bucket: str, rv: int) -> None:
        """Raise the 410 a watch from ``rv`` would get, if it would."""
        b = self.buckets.get(bucket)
        if b is not None and rv < b.compacted_rv:
            raise too_old_resource_version(rv, b.compacted_rv + 1)

    # --- writes ----------------------------------------------------------------------------

    def _stamp(self, obj: JSON) -> Record:
        self.rv += 1
        meta = obj.get("metadata") or {}
        meta["resourceVersion"] = str(self.rv)
        ordered = {k: meta[k] for k in _META_ORDER if k in meta}
        if len(ordered) != len(meta):
            ordered.update((k, v) for k, v in meta.items() if k not in ordered)
        obj["metadata"] = ordered
        return Record(obj, dumps(obj), self.rv)

    def _count(self, namespace: str, delta: int) -> None:
        n = self.namespace_counts.get(namespace, 0) + delta
        if n <= 0:
            self.namespace_counts.pop(namespace, None)
        else:
            self.namespace_counts[namespace] = n

    def put(self, bucket: str, key: str, namespace: str, obj: JSON) -> Record:
        """Store ``obj`` (now owned by the store) at ``key`` under a new resourceVersion."""
        b = self.bucket(bucket)
        prev = b.records.get(key)
        record = self._stamp(obj)
        b.records[key] = record
        if prev is None:
            bisect.insort(b.keys, key)
            if namespace:
                self._count(namespace, 1)
        self._append(
            b, Change(record.rv, MODIFIED if prev else ADDED, key, namespace, record, prev)
        )
        return record

    def remove(self, bucket: str, key: str, namespace: str) -> Record | None:
        """Delete the object at ``key``; the DELETED change carries a new resourceVersion."""
        b = self.buckets.get(bucket)
        if b is None:
            return None
        prev = b.records.pop(key, None)
        if prev is None:
            return None
        idx = bisect.bisect_left(b.keys, key)
        if idx < len(b.keys) and b.keys[idx] == key:
            del b.keys[idx]
        if namespace:
            self._count(namespace, -1)
        final = orjson.loads(prev.raw)
        record = self._stamp(final)
        self._append(b, Change(record.rv, DELETED, key, namespace, record, prev))
        return record

    def _append(self, b: Bucket, change: Change) -> None:
        b.history.append(change)
        excess = len(b.history) - self.history_limit
        if excess > 0 and (excess >= 1024 or excess * 8 >= self.history_limit):
            b.compacted_rv = b.history[excess - 1].rv
            del b.history[:excess]
        for w in b.wakers:
            w.ring()

    def compact(self, bucket: str | None = None) -> None:
        """Drop history (of one bucket or all) up to now: older resourceVersions become 410."""
        if bucket is None:
            targets = list(self.buckets.values())
        else:
            targets = [self.buckets[bucket]] if bucket in self.buckets else []
        for b in targets:
            b.history.clear()
            b.compacted_rv = self.rv

    def oldest_resumable(self, bucket: str) -> int:
        """The oldest resourceVersion a watch on ``bucket`` can resume from."""
        b = self.buckets.get(bucket)
        return b.compacted_rv if b else 0
