"""Writing status: only when it differs, as a merge patch on ``/status``, read-your-writes.

:func:`status_patch` compares the desired status with the cached one and returns the fields
that differ (``None`` entries remove a field the controller no longer sets), or ``None`` when
nothing differs: a converged object costs no API call at all.

:class:`StatusWriter` sends the patch and then waits (briefly) until the informer's cache
holds the written version. A reconcile that follows immediately (another event was queued
meanwhile) thus sees its predecessor's status instead of the stale one, and does not probe
or write twice. The wait is driven by the informer's own events, not by polling, and is
bounded by ``observe_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Protocol

from flokoa_controller.controllers.metrics import STATUS_UPDATES
from flokoa_controller.kube.errors import NotFound
from flokoa_controller.kube.resources import ResourceType
from flokoa_controller.runtime.informer import DeletedFinalStateUnknown, EventHandler
from flokoa_controller.runtime.store import key_of

__all__ = ["StatusClient", "StatusWriter", "status_patch"]

log = logging.getLogger(__name__)


class StatusClient(Protocol):
    """The API calls the controllers make (``KubeClient`` provides them)."""

    async def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> Any:
        """Read one object (raises ``NotFound``)."""
        ...

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


def _rv(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _at_least(seen: str, wanted: str) -> bool:
    if seen == wanted:
        return True
    if seen.isdigit() and wanted.isdigit():
        return int(seen) >= int(wanted)
    return False


class StatusWriter:
    """Patches ``/status`` of one resource type and waits for the cache to catch up.

    Register :attr:`handler` on the informer of ``rt`` (``setup`` does).
    """

    def __init__(
        self, client: StatusClient, rt: ResourceType, *, observe_timeout: float = 2.0
    ) -> None:
        """``observe_timeout``: longest wait for the cache to show a written status."""
        self.client = client
        self.rt = rt
        self.observe_timeout = observe_timeout
        self._waiters: dict[str, list[tuple[str, asyncio.Future[None]]]] = {}
        self.handler = EventHandler(
            on_add=lambda obj, _initial: self._seen(obj),
            on_update=lambda _old, new: self._seen(new),
            on_delete=self._gone,
        )
        """Informer handler that wakes the writes waiting for an object's new version."""

    def _seen(self, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        waiters = self._waiters.get(key)
        if not waiters:
            return
        rv = _rv(obj)
        remaining = []
        for wanted, future in waiters:
            if _at_least(rv, wanted):
                if not future.done():
                    future.set_result(None)
            else:
                remaining.append((wanted, future))
        if remaining:
            self._waiters[key] = remaining
        else:
            del self._waiters[key]

    def _gone(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        key = obj.key if isinstance(obj, DeletedFinalStateUnknown) else key_of(obj)
        for _, future in self._waiters.pop(key, []):
            if not future.done():
                future.set_result(None)

    async def write(
        self,
        obj: Mapping[str, Any],
        desired: Mapping[str, Any],
        managed: Iterable[str],
        cached: Any = None,
    ) -> bool:
        """Patch ``obj``'s status to ``desired`` if it differs; return whether it wrote.

        ``cached``: a callable returning the object currently in the cache (to skip the wait
        when the cache already moved on). A deleted object is not an error: nothing is
        written.
        """
        patch = status_patch(obj.get("status"), desired, managed)
        if patch is None:
            return False
        metadata = obj.get("metadata") or {}
        name, namespace = str(metadata.get("name")), metadata.get("namespace")
        try:
            written = await self.client.patch(
                self.rt,
                name,
                {"status": patch},
                namespace,
                patch_type="merge",
                subresource="status",
            )
        except NotFound:
            log.debug("Object deleted before its status could be written")
            return False
        STATUS_UPDATES.labels(self.rt.kind).inc()
        wanted = _rv(written) if isinstance(written, Mapping) else ""
        if wanted and wanted != _rv(obj):
            await self._wait(key_of(obj), wanted, cached)
        return True

    async def _wait(self, key: str, wanted: str, cached: Any) -> None:
        current = cached() if callable(cached) else None
        if isinstance(current, Mapping) and _at_least(_rv(current), wanted):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append((wanted, future))
        try:
            await asyncio.wait_for(future, self.observe_timeout)
        except TimeoutError:
            log.debug("Cache did not show the written status within %ss", self.observe_timeout)
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                self._waiters[key] = [(w, f) for w, f in waiters if f is not future]
                if not self._waiters[key]:
                    del self._waiters[key]
            with contextlib.suppress(asyncio.CancelledError):
                if not future.done():
                    future.cancel()
