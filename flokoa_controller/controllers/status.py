"""Writing status: only when it differs, as an optimistically locked merge patch on ``/status``.

:func:`status_patch` compares the desired status with the observed one and returns the
fields that differ (``None`` entries remove a field the controller no longer sets), or
``None`` when nothing differs: a converged object costs no API call at all.

:class:`StatusWriter` sends the patch with the ``metadata.resourceVersion`` the status was
computed from, so the API server refuses it (409 ``Conflict``) when the object changed
meanwhile — in particular when it was deleted and re-created under the same name while a
probe ran: the old object's verdict never lands on the new one. The caller requeues.

Read-your-writes without blocking: the writer keeps the object the API server returned for
its last write of each key until the informer's cache shows that version (or a later one).
:meth:`StatusWriter.latest` gives a reconcile the newer of the cached object and that
record, so a reconcile that follows its predecessor before the watch delivered the write
(another event was queued meanwhile, or the watch is slow or stalled) sees the written
status instead of the stale one, and neither probes nor writes twice. Nothing waits for the
watch: a stalled watch costs no worker time. Records are dropped as soon as the cache
catches up (the :attr:`StatusWriter.handler` registered on the informer) or the object is
deleted, so at most one object per in-flight write is held.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from flokoa_controller.controllers.metrics import STATUS_UPDATES
from flokoa_controller.kube.errors import Conflict, NotFound
from flokoa_controller.kube.resources import ResourceType
from flokoa_controller.runtime.controller import Request, Result
from flokoa_controller.runtime.informer import DeletedFinalStateUnknown, EventHandler
from flokoa_controller.runtime.meta import metadata_of, uid_of
from flokoa_controller.runtime.meta import resource_version_of as _rv
from flokoa_controller.runtime.store import Store, key_of
from flokoa_controller.runtime.transform import strip_managed_fields

__all__ = [
    "StatusPatcher",
    "StatusWriter",
    "generation_of",
    "reconcile_latest",
    "status_of",
    "status_patch",
]

log = logging.getLogger(__name__)


class NotLeading(Exception):
    """A status write refused because this replica no longer holds the leader Lease."""


class StatusPatcher(Protocol):
    """The API call a :class:`StatusWriter` makes (``KubeClient`` provides it)."""

    async def patch(
        self,
        rt: ResourceType,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: Literal["merge", "json", "strategic"] = "merge",
        subresource: str | None = None,
    ) -> Any:
        """Patch an object or one of its subresources."""
        ...


def status_patch(
    current: object, desired: Mapping[str, Any], managed: Iterable[str]
) -> dict[str, Any] | None:
    """The merge patch turning ``current`` into ``desired`` for the ``managed`` fields.

    Fields of ``current`` outside ``managed`` are left alone (another writer's). Returns
    ``None`` when nothing differs.
    """
    have: Mapping[str, Any] = current if isinstance(current, Mapping) else {}
    patch: dict[str, Any] = {}
    for name in managed:
        if name in desired:
            if have.get(name) != desired[name]:
                patch[name] = desired[name]
        elif have.get(name) is not None:
            patch[name] = None
    return patch or None


def status_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``obj``'s ``status`` (empty when it is missing or not an object)."""
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def generation_of(obj: Mapping[str, Any]) -> int:
    """``obj``'s ``metadata.generation`` (0 when unset)."""
    return int(metadata_of(obj).get("generation") or 0)


def _newer(candidate: str, than: str) -> bool:
    """Whether ``candidate`` is known to be a later resourceVersion than ``than``.

    resourceVersions are opaque; the decimal ones every API server in use sends are
    compared as numbers, anything else is never called newer (the optimistic lock of the
    next write catches what this cannot tell).
    """
    return candidate.isdigit() and than.isdigit() and int(candidate) > int(than)


@dataclass(slots=True)
class _InFlight:
    """A write of one key sent and not answered yet."""

    based_on: str
    """The resourceVersion it is locked on."""
    uid: str
    """The UID of the object written."""
    early: str | None = None
    """The resourceVersion of the update from ``based_on`` that the watch delivered before
    the reply (dropped as this write's echo), if any."""


@dataclass(frozen=True, slots=True)
class _Written:
    """The last write of one key: the object the API server returned, and its origin."""

    obj: dict[str, Any]
    """The object after the write (managedFields stripped)."""
    uid: str
    """Its UID."""
    based_on: str
    """The resourceVersion the write was computed from (what a lagging cache still shows)."""


def _key(obj: Mapping[str, Any]) -> str:
    """``obj``'s cache key, or "" for an object without a name (nothing to remember)."""
    try:
        return key_of(obj)
    except ValueError:
        return ""


class StatusWriter:
    """Patches ``/status`` of one resource type, optimistically locked, read-your-writes.

    Register :attr:`handler` on the informer of ``rt`` (``setup`` does) so that records of
    writes are dropped once the cache shows them.
    """

    def __init__(
        self, client: StatusPatcher, rt: ResourceType, *, fence: Callable[[], bool] = lambda: True
    ) -> None:
        """Write ``rt`` objects' status through ``client``.

        ``fence`` is asked right before every write; when it answers False (this replica no
        longer holds the leader Lease by its own clock) nothing is sent and ``NotLeading`` is
        raised, so a leader that was paused past its renew deadline cannot overwrite the
        status its successor writes.
        """
        self.client = client
        self.rt = rt
        self.fence = fence
        self._written: dict[str, _Written] = {}
        self._echoes: dict[str, str] = {}
        """Per key, the resourceVersion of the last write whose watch event is still due."""
        self._in_flight: dict[str, _InFlight] = {}
        """Per key, the optimistically locked write awaiting its reply."""
        self.requeue: Callable[[str], None] = lambda _key: None
        """Called with a key whose update was taken for this writer's echo before the reply
        showed it was more than that (``setup`` enqueues the key on the controller)."""
        self.handler = EventHandler(
            on_add=lambda obj, _initial: self._seen(obj),
            on_update=lambda _old, new: self._seen(new),
            on_delete=self._gone,
        )
        """Informer handler that drops the records the cache has caught up with."""

    def pending(self) -> int:
        """How many writes the cache has not shown yet (records held)."""
        return len(self._written)

    def _seen(self, obj: Mapping[str, Any]) -> None:
        if not self._written:
            return
        key = _key(obj)
        if not key:
            return
        record = self._written.get(key)
        if record is not None and not self._stale(obj, record):
            del self._written[key]

    def _gone(self, obj: Mapping[str, Any] | DeletedFinalStateUnknown) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            self._written.pop(obj.key, None)
            self._echoes.pop(obj.key, None)
            return
        with contextlib.suppress(ValueError):
            key = key_of(obj)
            self._written.pop(key, None)
            self._echoes.pop(key, None)

    def forget(self, key: str) -> None:
        """Drop what is remembered of ``key`` (its object is gone from the cache). Covers a
        delete whose event arrived before the reply to a write of the object."""
        self._written.pop(key, None)
        self._echoes.pop(key, None)

    def is_own_write(self, old: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
        """Whether the update ``old`` → ``obj``, delivered by the informer, is the watch's
        echo of this writer's own write: ``obj`` is exactly what the last write of it
        returned (same resourceVersion), or — the watch can beat the reply, as a real
        kube-apiserver's often does — a write of it is awaiting its reply and ``old`` is the
        version that write is locked on.

        The reconcile that wrote it has already acted on that state (the write was
        optimistically locked, so nothing changed in between), so the controller's watch
        drops the echo instead of reconciling it again (a predicate in ``setup``). Each echo
        is recognised once; an event past it (the echo was folded into a later change, or a
        relist skipped it) forgets it. An update from the locked version seen before the
        reply can only be this write's (the server takes one write per version): if the
        write is refused (``Conflict``) or fails, its reconcile is requeued anyway; if the
        reply shows a different version (a relist folded the echo into later changes),
        :attr:`requeue` is called.
        """
        if not self._echoes and not self._in_flight:
            return False
        key = _key(obj)
        if not key:
            return False
        in_flight = self._in_flight.get(key)
        if (
            in_flight is not None
            and in_flight.early is None
            and _rv(old) == in_flight.based_on
            and uid_of(obj) == in_flight.uid
        ):
            in_flight.early = _rv(obj)
            self._echoes.pop(key, None)  # older than the locked version: no longer due
            return True
        echo = self._echoes.get(key)
        if echo is None:
            return False
        seen = _rv(obj)
        if seen == echo:
            del self._echoes[key]
            return True
        if _newer(seen, echo):
            del self._echoes[key]
        return False

    @staticmethod
    def _stale(cached: Mapping[str, Any], record: _Written) -> bool:
        """Whether ``cached`` is older than the recorded write (so the record is newer)."""
        if uid_of(cached) != record.uid:
            return False  # another object under the same name: the cache is the truth
        seen = _rv(cached)
        written = _rv(record.obj)
        return seen == record.based_on or _newer(written, seen)

    def latest(self, cached: dict[str, Any]) -> dict[str, Any]:
        """``cached``, or this writer's own later write of it when the cache lags behind.

        Reconcilers call it on the object they read from the cache before deciding
        anything, so they never act on a status older than the one they wrote.
        """
        if not self._written:
            return cached
        key = _key(cached)
        if not key:
            return cached
        record = self._written.get(key)
        if record is None:
            return cached
        if self._stale(cached, record):
            return record.obj
        del self._written[key]
        return cached

    async def write(
        self, obj: Mapping[str, Any], desired: Mapping[str, Any], managed: Iterable[str]
    ) -> bool:
        """Patch ``obj``'s status to ``desired`` if it differs; return whether it wrote.

        The patch carries ``obj``'s resourceVersion: ``kube.errors.Conflict`` is raised when
        the object changed since (the caller requeues and reconciles the new state). A
        deleted object is not an error: nothing is written.
        """
        patch = status_patch(obj.get("status"), desired, managed)
        if patch is None:
            return False
        metadata = metadata_of(obj)
        name, namespace = str(metadata.get("name")), metadata.get("namespace")
        body: dict[str, Any] = {"status": patch}
        based_on = _rv(obj)
        if based_on:
            body["metadata"] = {"resourceVersion": based_on}
        if not self.fence():
            raise NotLeading(f"not writing the status of {namespace}/{name}: lease not held")
        in_flight: _InFlight | None = None
        own_key = _key(obj)
        if based_on and own_key:
            in_flight = _InFlight(based_on, str(metadata.get("uid") or ""))
            self._in_flight[own_key] = in_flight
        try:
            written = await self.client.patch(
                self.rt, name, body, namespace, patch_type="merge", subresource="status"
            )
        except NotFound:
            log.debug("Object deleted before its status could be written")
            return False
        finally:
            if in_flight is not None and self._in_flight.get(own_key) is in_flight:
                del self._in_flight[own_key]
        STATUS_UPDATES.labels(self.rt.kind).inc()
        if in_flight is not None and in_flight.early is not None:
            # the watch delivered the update from the locked version before this reply: the
            # cache already shows this write (no record, no echo due) — or, when the reply
            # names another version, more than this write, which must be reconciled
            if isinstance(written, dict) and in_flight.early != _rv(written):
                self.requeue(own_key)
            return True
        if isinstance(written, dict) and _rv(written):
            key = _key(written)
            if not key:
                return True
            self._written[key] = _Written(strip_managed_fields(written), uid_of(written), based_on)
            if based_on:  # only an optimistically locked write leaves no change unseen
                self._echoes[key] = _rv(written)
        return True


async def reconcile_latest(
    request: Request,
    store: Store,
    writer: StatusWriter,
    reconcile: Callable[[Request, dict[str, Any]], Awaitable[Result]],
) -> Result:
    """Run ``reconcile`` on the freshest view of the cached object ``request`` names.

    Nothing to do when the cache no longer has it (deleted: no finalizer). The object is
    the newer of the cached one and ``writer``'s own last write of it
    (:meth:`StatusWriter.latest`). A status write refused because the object changed
    meanwhile (``Conflict``: edited, or deleted and re-created while a probe ran) is
    requeued, rate limited, to reconcile the new state; it is not an error.
    """
    cached = store.get_by(request.name, request.namespace)
    if cached is None:
        writer.forget(str(request))
        return Result()
    try:
        return await reconcile(request, writer.latest(cached))
    except Conflict:
        log.debug("%s changed while it was reconciled; requeueing", writer.rt.kind)
        return Result(requeue=True)
