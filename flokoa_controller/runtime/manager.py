"""The manager: shared informers, controllers, probes, metrics, leader election, shutdown.

:meth:`Manager.run` brings a controller process up and down in controller-runtime's order:

1. serve ``/healthz`` (always ok while the loop runs), ``/readyz`` (ok once every cache has
   synced) and ``/metrics``;
2. start every informer and wait for their caches to sync (``cache_sync_timeout``; failing
   raises :class:`CacheSyncTimeout`, the CLI exits 1);
3. start the runnables that do not need leadership;
4. with ``leader_elect``, campaign for the Lease (caches keep running on standbys, so a
   takeover starts warm) and start controllers and leader-only runnables once leading;
   without it, start them at once;
5. run until SIGTERM/SIGINT (or :meth:`Manager.stop`), then shut down gracefully within
   ``graceful_shutdown_timeout``: controllers stop taking work and finish in-flight
   reconciles, the Lease is released, informers and servers stop. The API client is the
   caller's to close.

Losing the Lease stops everything at once and raises :class:`LeaderElectionLost` (the CLI
exits 1 so that Kubernetes restarts the pod as a standby). A runnable or controller that
fails stops the manager and its exception propagates from :meth:`run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from flokoa_controller.kube.resources import ResourceType
from flokoa_controller.runtime.controller import Controller, Reconciler, Request
from flokoa_controller.runtime.health import HealthServer
from flokoa_controller.runtime.informer import Informer
from flokoa_controller.runtime.leaderelection import (
    LeaderElectionLost,
    LeaderElector,
    LeaseClient,
    default_identity,
)
from flokoa_controller.runtime.options import ManagerOptions, parse_bind_address
from flokoa_controller.runtime.ratelimiter import RateLimiter
from flokoa_controller.runtime.reflector import ListerWatcher
from flokoa_controller.runtime.store import IndexFunc
from flokoa_controller.runtime.transform import Transform

__all__ = [
    "CacheSyncTimeout",
    "ClientT",
    "LeaderElectionLost",
    "Manager",
    "ManagerClient",
    "Runnable",
]

log = logging.getLogger(__name__)

Runnable = Callable[[], Awaitable[None]]
"""A long-running coroutine function the manager starts and cancels."""


class ManagerClient(ListerWatcher, LeaseClient, Protocol):
    """What the manager needs from the API client (``KubeClient`` provides it)."""


ClientT = TypeVar("ClientT", bound=ManagerClient)
"""The type of a manager's API client: a `ManagerClient` or more (controllers set up on the
manager see the client's full type through `Manager.client`)."""


class CacheSyncTimeout(Exception):
    """The caches did not fill within ``cache_sync_timeout``."""


class Manager(Generic[ClientT]):
    """Owns the shared informers and the controllers of one process (see the module doc)."""

    def __init__(
        self,
        client: ClientT,
        options: ManagerOptions | None = None,
        *,
        identity: str | None = None,
        health: HealthServer | None = None,
    ) -> None:
        """Create a manager; nothing starts before :meth:`run`.

        ``identity`` is the leader-election holder identity (default ``hostname_uuid``);
        ``health`` replaces the HTTP server built from the options' bind addresses.
        """
        self.client = client
        """The API client (shared by informers, controllers and leader election)."""
        self.options = options or ManagerOptions()
        """The configuration."""
        self.identity = identity or default_identity()
        """This process's leader-election identity."""
        self.server = health or HealthServer(
            health_address=parse_bind_address(self.options.health_probe_bind_address),
            metrics_address=parse_bind_address(self.options.metrics_bind_address),
        )
        """The probes and metrics server."""
        self.server.readyz_checks["informer-sync"] = self._sync_check
        self.elector: LeaderElector | None = None
        """The leader elector while :meth:`run` runs with ``leader_elect``."""
        self._informers: dict[ResourceType, Informer] = {}
        self._field_selectors: dict[ResourceType, str | None] = {}
        self._informer_tasks: dict[ResourceType, asyncio.Task[None]] = {}
        self._controllers: list[Controller] = []
        self._runnables: list[tuple[Runnable, bool]] = []
        self._stop_requested: asyncio.Event | None = None
        self._synced = False
        self._running = False
        self._shutting_down = False

    # -- building --------------------------------------------------------------------------

    def informer(
        self,
        rt: ResourceType,
        *,
        transform: Transform | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        field_selector: str | None = None,
    ) -> Informer:
        """The shared informer of ``rt`` over the options' namespaces (created on first use).

        ``field_selector`` (e.g. ``type!=helm.sh/release.v1`` for Secrets) restricts what is
        listed and watched, so objects the controllers never need cost neither memory nor
        bandwidth; objects leaving the selection are seen as deleted. Later callers may add
        indexers; asking for a different transform or field selector than the informer was
        created with is an error (the informer is shared: every user sees the same objects).
        """
        informer = self._informers.get(rt)
        if informer is None:
            informer = Informer(
                self.client,
                rt,
                namespaces=self.options.namespaces,
                transform=transform,
                indexers=indexers,
                field_selector=field_selector or None,
                resync_period=self.options.resync_period,
                streaming_list=self.options.streaming_list,
                inactivity_timeout=self.options.watch_inactivity_timeout,
            )
            self._informers[rt] = informer
            self._field_selectors[rt] = field_selector or None
            if self._running and not self._shutting_down:
                self._start_informer(rt, informer)
            return informer
        if transform is not None and transform is not informer.transform:
            raise ValueError(f"the informer of {rt} exists with another transform")
        if (field_selector or None) != self._field_selectors.get(rt):
            raise ValueError(f"the informer of {rt} exists with another field selector")
        if indexers:
            informer.add_indexers(indexers)
        return informer

    @property
    def informers(self) -> list[Informer]:
        """Every informer created so far."""
        return list(self._informers.values())

    def add_controller(self, controller: Controller) -> None:
        """Run ``controller`` while leading (always, without leader election)."""
        self._controllers.append(controller)

    def new_controller(
        self,
        name: str,
        reconciler: Reconciler,
        *,
        max_concurrent_reconciles: int | None = None,
        rate_limiter: RateLimiter[Request] | None = None,
        **kwargs: Any,
    ) -> Controller:
        """Create a controller with the options' worker count and grace period, and add it."""
        controller = Controller(
            name,
            reconciler,
            max_concurrent_reconciles=max_concurrent_reconciles
            or self.options.max_concurrent_reconciles,
            rate_limiter=rate_limiter,
            grace_period=kwargs.pop("grace_period", self.options.graceful_shutdown_timeout),
            **kwargs,
        )
        self.add_controller(controller)
        return controller

    def add_runnable(self, runnable: Runnable, *, needs_leader: bool) -> None:
        """Run ``runnable()`` once caches have synced (and, if ``needs_leader``, while leading).

        It is cancelled at shutdown; returning early is fine; raising stops the manager.
        """
        self._runnables.append((runnable, needs_leader))

    # -- state -----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether every cache has synced (what ``/readyz`` reports)."""
        return self._synced

    @property
    def is_leader(self) -> bool:
        """Whether controllers run here: leading, or leader election is off (once started)."""
        if self.elector is not None:
            return self.elector.is_leader
        return self._synced and self._running

    @property
    def holds_leadership(self) -> bool:
        """Whether writes may be made now: :attr:`is_leader`, and with leader election the
        Lease still held by this replica's clock (:meth:`LeaderElector.holds_lease`)."""
        if self.elector is not None:
            return self.elector.holds_lease()
        return self.is_leader

    def _sync_check(self) -> str | None:
        if self._synced:
            return None
        waiting = [str(rt) for rt, inf in self._informers.items() if not inf.has_synced]
        return "caches not synced: " + (", ".join(waiting) or "not started")

    def stop(self) -> None:
        """Ask :meth:`run` for a graceful shutdown (what SIGTERM and SIGINT do)."""
        if self._stop_requested is not None:
            self._stop_requested.set()

    # -- running ---------------------------------------------------------------------------

    def _start_informer(self, rt: ResourceType, informer: Informer) -> None:
        self._informer_tasks[rt] = asyncio.create_task(informer.run(), name=f"informer {rt}")

    def _install_signal_handlers(self) -> list[signal.Signals]:
        if not self.options.install_signal_handlers:
            return []
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            installed.append(sig)
        return installed

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop_requested is not None and self._stop_requested.is_set():
            log.warning("Received %s again; already shutting down", sig.name)
            return
        log.info("Received %s; shutting down gracefully", sig.name)
        self.stop()

    async def _wait_for_caches(self, stop: asyncio.Event) -> bool:
        """Wait for every cache; False if a stop was requested first."""
        timeout = self.options.cache_sync_timeout
        waits = asyncio.gather(*(inf.wait_for_sync(timeout) for inf in self._informers.values()))
        stopper: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        both: set[asyncio.Future[Any]] = {waits, stopper}
        try:
            done, _ = await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if waits not in done:
            waits.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waits
            return False
        if not all(waits.result()):
            missing = [str(rt) for rt, inf in self._informers.items() if not inf.has_synced]
            raise CacheSyncTimeout(f"caches did not sync within {timeout:g}s: {', '.join(missing)}")
        return True

    async def _lead(self) -> None:
        """Run the controllers and leader-only runnables; keep leading if they all return."""
        work: list[Runnable] = [c.run for c in self._controllers]
        work += [fn for fn, needs_leader in self._runnables if needs_leader]
        log.info("Starting controllers", extra={"controllers": len(self._controllers)})
        async with asyncio.TaskGroup() as group:
            for fn in work:
                group.create_task(_as_coroutine(fn))
        await asyncio.Event().wait()

    def _elector(self) -> LeaderElector:
        opts = self.options
        return LeaderElector(
            self.client,
            namespace=opts.lease_namespace(),
            name=opts.leader_election_id,
            identity=self.identity,
            lease_duration=opts.lease_duration,
            renew_deadline=opts.renew_deadline,
            retry_period=opts.retry_period,
        )

    async def run(self) -> None:
        """Run until a graceful stop (returns) or a failure (raises); see the module doc."""
        if self._running:
            raise RuntimeError("the manager is already running")
        self._running = True
        self._shutting_down = False
        stop = self._stop_requested = asyncio.Event()
        installed = self._install_signal_handlers()
        elector = self._elector() if self.options.leader_elect else None
        main: asyncio.Task[None] | None = None
        others: list[asyncio.Task[None]] = []
        try:
            await self.server.start()
            for rt, informer in self._informers.items():
                self._start_informer(rt, informer)
            log.info("Waiting for caches to sync", extra={"informers": len(self._informers)})
            if not await self._wait_for_caches(stop):
                return
            self._synced = True
            log.info("Caches synced")
            others = [
                asyncio.create_task(_as_coroutine(fn), name="runnable")
                for fn, needs_leader in self._runnables
                if not needs_leader
            ]
            if elector is not None:
                self.elector = elector
                log.info(
                    "Attempting to acquire the leader lease",
                    extra={
                        "lease": f"{elector.namespace}/{elector.name}",
                        "identity": elector.identity,
                    },
                )
                main = asyncio.create_task(elector.run(self._lead), name="leader-election")
            else:
                main = asyncio.create_task(self._lead(), name="controllers")
            stopper = asyncio.create_task(stop.wait(), name="stop")
            watched: set[asyncio.Task[Any]] = {main, stopper, *others}
            while True:
                done, watched = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                if stopper in done:
                    break
                failed = next((t for t in done if not t.cancelled() and t.exception()), None)
                if failed is not None:
                    stopper.cancel()
                    error = failed.exception()
                    assert error is not None  # for mypy: checked by `next` above
                    if isinstance(error, LeaderElectionLost):
                        log.error("Leader election lost; stopping")
                    else:
                        log.error("A component failed; stopping", exc_info=error)
                    raise error
        finally:
            await self._shutdown(main, others)
            loop = asyncio.get_running_loop()
            for sig in installed:
                loop.remove_signal_handler(sig)
            self._running = False
            self._synced = False
            self.elector = None

    async def _shutdown(
        self, main: asyncio.Task[None] | None, others: list[asyncio.Task[None]]
    ) -> None:
        """Stop controllers (drain), release the Lease, stop runnables, informers, servers."""
        self._shutting_down = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.graceful_shutdown_timeout
        if main is not None and not main.done():
            log.info("Stopping controllers and releasing leadership")
            main.cancel()
            # Controllers drain within their own grace period; allow a little for the release.
            await _wait_until(main, deadline + 5.0, loop)
        for task in others:
            task.cancel()
        await _wait_until_all(others, deadline, loop)
        informer_tasks = list(self._informer_tasks.values())
        self._informer_tasks.clear()
        for task in informer_tasks:
            task.cancel()
        await _wait_until_all(informer_tasks, deadline, loop)
        await self.server.stop()
        log.info("Manager stopped")


async def _as_coroutine(fn: Runnable) -> None:
    await fn()


async def _wait_until(
    task: asyncio.Task[Any], deadline: float, loop: asyncio.AbstractEventLoop
) -> None:
    await _wait_until_all([task], deadline, loop)


async def _wait_until_all(
    tasks: list[asyncio.Task[Any]], deadline: float, loop: asyncio.AbstractEventLoop
) -> None:
    pending = [t for t in tasks if not t.done()]
    if pending:
        _, late = await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
        for task in late:
            log.warning("Task %s did not stop within the grace period", task.get_name())
    for task in tasks:
        if task.done() and not task.cancelled():
            error = task.exception()
            if error is not None and not isinstance(error, LeaderElectionLost):
                log.debug("Task %s ended with %r during shutdown", task.get_name(), error)
