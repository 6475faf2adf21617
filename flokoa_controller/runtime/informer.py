"""The informer: a cached, always-current view of one resource, with change notifications.

An :class:`Informer` runs one :class:`~flokoa_controller.runtime.reflector.Reflector` per
namespace in scope (or one for all namespaces), keeps the objects in a
:class:`~flokoa_controller.runtime.store.Store` and calls the registered
:class:`EventHandler` s on every change:

- ``on_add(obj, is_in_initial_list)``: a new object; ``is_in_initial_list`` is true for the
  objects of the first list (and for the replay a handler added later receives);
- ``on_update(old, new)``: a changed object (a relist reports only objects whose
  resourceVersion changed; a resync reports every object with ``old is new``);
- ``on_delete(obj)``: the final state from the DELETED event, or a
  :class:`DeletedFinalStateUnknown` tombstone holding the last cached state when the delete
  happened while the watch was down and only a relist revealed it.

Every object goes through the transform before it is stored or handed to a handler: the
caller's transform (on the object without managedFields), then
:func:`~flokoa_controller.runtime.transform.default_transform` (strings interned, the payload
of Secrets stripped), so the cache never holds a Secret payload whatever the caller's
transform does; what a controller keeps of a Secret (digests, here) is its transform's job.
Handlers run on the event loop, synchronously, in the order of events: keep them
cheap (map to a key and enqueue). A handler that raises is logged and skipped; the informer
goes on. Objects are shared with the store: treat them as read-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flokoa_controller.kube.resources import ResourceType
from flokoa_controller.runtime.backoff import Backoff
from flokoa_controller.runtime.meta import resource_version_of
from flokoa_controller.runtime.reflector import ListerWatcher, Reflector, ReflectorStats
from flokoa_controller.runtime.store import IndexFunc, Store, key_of
from flokoa_controller.runtime.transform import (
    Transform,
    chain,
    default_transform,
    strip_managed_fields,
)

__all__ = ["DeletedFinalStateUnknown", "EventHandler", "Informer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown:
    """A delete noticed only by a relist: ``obj`` is the last state the cache held."""

    key: str
    """Cache key (``namespace/name`` or ``name``) of the deleted object."""
    obj: dict[str, Any]
    """The last known (transformed) state of the object."""


AddFunc = Callable[[dict[str, Any], bool], None]
UpdateFunc = Callable[[dict[str, Any], dict[str, Any]], None]
DeleteFunc = Callable[[dict[str, Any] | DeletedFinalStateUnknown], None]


@dataclass(frozen=True)
class EventHandler:
    """Callbacks for changes of an informer's objects; any of them may be omitted."""

    on_add: AddFunc | None = None
    """Called with ``(obj, is_in_initial_list)`` for a new object."""
    on_update: UpdateFunc | None = None
    """Called with ``(old, new)`` for a changed object."""
    on_delete: DeleteFunc | None = None
    """Called with the deleted object or a :class:`DeletedFinalStateUnknown`."""


def _all_namespaces(namespaces: Iterable[str] | None) -> list[str | None]:
    scopes = sorted({ns for ns in namespaces or () if ns})
    return list(scopes) if scopes else [None]


class Informer:
    """Shared cache and change notifications for one resource type in a namespace scope."""

    def __init__(
        self,
        client: ListerWatcher,
        rt: ResourceType,
        *,
        namespaces: Sequence[str] | None = None,
        transform: Transform | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        resync_period: float | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        streaming_list: bool = True,
        inactivity_timeout: float | None = 90.0,
        page_size: int = 500,
        backoff_factory: Callable[[], Backoff] = Backoff,
    ) -> None:
        """Configure the informer; :meth:`run` starts it.

        ``namespaces`` empty or ``None`` means all namespaces (always so for cluster-scoped
        resources); otherwise one list+watch runs per namespace. ``transform`` is applied
        to every object (after managedFields are stripped, before ``default_transform``).
        ``resync_period`` (seconds) replays the cache to the handlers as updates, never
        listing from the server.
        """
        self.resource = rt
        """The resource type this informer caches."""
        self.namespaces: list[str | None] = _all_namespaces(namespaces if rt.namespaced else None)
        """The scopes watched: namespaces, or ``[None]`` for all namespaces."""
        self.transform: Transform | None = transform
        """The caller's transform (``None``: only the default one)."""
        self.store = Store(indexers)
        """The cache (read-only for everyone but the informer)."""
        self.resync_period = resync_period
        """Seconds between replays of the cache to the handlers; ``None``: never."""
        self._handlers: list[EventHandler] = []
        self._initial_pending: set[str | None] = set(self.namespaces)
        self._synced = asyncio.Event()
        self._running = False
        effective = (
            chain(strip_managed_fields, transform, default_transform)
            if transform
            else default_transform
        )
        self.reflectors = [
            Reflector(
                client,
                rt,
                self,
                namespace=ns,
                transform=effective,
                label_selector=label_selector,
                field_selector=field_selector,
                page_size=page_size,
                streaming_list=streaming_list,
                inactivity_timeout=inactivity_timeout,
                backoff=backoff_factory(),
            )
            for ns in self.namespaces
        ]
        """One reflector per scope."""

    # -- handlers --------------------------------------------------------------------------

    def add_handler(self, handler: EventHandler) -> None:
        """Register ``handler``; if objects are cached already, replay them to it as adds."""
        self._handlers.append(handler)
        if handler.on_add is not None:
            for obj in self.store.list():
                self._call(handler.on_add, obj, True)

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add named indexers to the store (existing objects are indexed at once)."""
        self.store.add_indexers(indexers)

    def _call(self, func: Callable[..., None], *args: Any) -> None:
        try:
            func(*args)
        except Exception:
            log.exception("%s: event handler %s failed", self.resource, _name(func))

    def _added(self, obj: dict[str, Any], initial: bool) -> None:
        for handler in self._handlers:
            if handler.on_add is not None:
                self._call(handler.on_add, obj, initial)

    def _updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        for handler in self._handlers:
            if handler.on_update is not None:
                self._call(handler.on_update, old, new)

    def _deleted(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        for handler in self._handlers:
            if handler.on_delete is not None:
                self._call(handler.on_delete, obj)

    # -- reflector sink --------------------------------------------------------------------

    def replace(
        self, namespace: str | None, objs: list[dict[str, Any]], resource_version: str
    ) -> None:
        """Apply a full snapshot of one scope (called by the reflectors)."""
        initial = namespace in self._initial_pending
        keyed: dict[str, dict[str, Any]] = {}
        for obj in objs:
            key = self._key(obj)
            if key is not None:
                keyed[key] = obj
        previous = {key: self.store.get(key) for key in keyed}
        removed = self.store.replace(keyed.values(), namespace=namespace)
        for key, old in removed.items():
            self._deleted(DeletedFinalStateUnknown(key, old))
        for key, obj in keyed.items():
            before = previous[key]
            if before is None:
                self._added(obj, initial)
            else:
                version = resource_version_of(obj)
                if resource_version_of(before) != version or not version:
                    self._updated(before, obj)
        if initial:
            self._initial_pending.discard(namespace)
            if not self._initial_pending:
                self._synced.set()
                log.debug("%s: cache synced (%d objects)", self.resource, len(self.store))

    def _key(self, obj: dict[str, Any]) -> str | None:
        """The cache key of ``obj``, or ``None`` (logged) for an object without a name.

        The API server never sends one; skipping it beats a watch that stops forever on it.
        """
        try:
            return key_of(obj)
        except (ValueError, AttributeError, TypeError):
            log.warning("%s: ignoring an object without metadata.name", self.resource)
            return None

    def apply(self, event_type: str, obj: dict[str, Any]) -> None:
        """Apply one watch event (called by the reflectors)."""
        key = self._key(obj)
        if key is None:
            return
        if event_type == "DELETED":
            self.store.delete(key)
            self._deleted(obj)
            return
        old = self.store.add(obj)
        if old is None:
            self._added(obj, False)
        else:
            self._updated(old, obj)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        """Whether every scope has been listed once (the cache is complete)."""
        return self._synced.is_set()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 (client-go's API)
        """Wait until :attr:`has_synced`; return ``False`` if ``timeout`` seconds pass first."""
        if self._synced.is_set():
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._synced.wait()
        except TimeoutError:
            return False
        return True

    @property
    def stats(self) -> ReflectorStats:
        """Sum of the reflectors' counters."""
        total = ReflectorStats()
        for reflector in self.reflectors:
            for field, value in vars(reflector.stats).items():
                setattr(total, field, getattr(total, field) + value)
        return total

    async def run(self) -> None:
        """Run the reflectors (and the resync loop) until cancelled."""
        if self._running:
            raise RuntimeError(f"informer for {self.resource} is already running")
        self._running = True
        try:
            async with asyncio.TaskGroup() as group:
                for reflector in self.reflectors:
                    group.create_task(reflector.run(), name=f"reflector {reflector.scope}")
                if self.resync_period:
                    group.create_task(self._resync_loop(self.resync_period))
        finally:
            self._running = False

    async def _resync_loop(self, period: float) -> None:
        with contextlib.suppress(TimeoutError):
            await self.wait_for_sync()
        while True:
            await asyncio.sleep(period)
            self.resync()

    def resync(self) -> None:
        """Replay every cached object to the handlers as ``on_update(obj, obj)``."""
        for obj in self.store.list():
            self._updated(obj, obj)


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or repr(func)
