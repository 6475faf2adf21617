"""Leader election on a coordination.k8s.io/v1 Lease (client-go ``leaderelection`` semantics).

Several replicas run a :class:`LeaderElector` on the same Lease; at most one leads. The
leader renews the Lease every ``retry_period``; standbys poll it with jitter and take it over
once it has expired or been released.

- **Compare-and-swap**: every write is an update carrying the resourceVersion last read, so
  two candidates can never both win the same round; a conflict means "re-read and retry".
- **Local clock only**: a standby judges expiry as "the record has not changed for
  ``leaseDurationSeconds`` since I first saw it", measured on its own monotonic clock; the
  remote ``renewTime`` is never compared with local time.
- **Record upkeep**: ``leaseTransitions`` grows by one on every change of holder,
  ``acquireTime`` is kept across renewals, ``renewTime`` is RFC 3339 with microseconds.
- **Losing the lease**: a leader that cannot renew within ``renew_deadline`` (or finds
  another holder) stops leading at once: the work started by ``on_started_leading`` is
  cancelled, ``on_stopped_leading`` is called and :meth:`LeaderElector.run` raises
  :class:`LeaderElectionLost` (the manager then exits non-zero so a standby takes over
  cleanly).
- **Graceful stop** (``run`` cancelled): the leading work is cancelled and awaited, then, with
  ``release_on_cancel``, the Lease is released (empty holder, ``leaseDurationSeconds: 1``) so a
  standby takes over within about one retry period. Only safe when the process then exits.

Metric: ``leader_election_master_status{name}`` (1 leader, 0 standby).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from flokoa_controller.kube.errors import AlreadyExists, ApiError, Conflict, NotFound
from flokoa_controller.kube.resources import LEASES, ResourceType
from flokoa_controller.runtime import metrics
from flokoa_controller.runtime.clock import Clock, monotonic

__all__ = [
    "JITTER_FACTOR",
    "LeaderElectionLost",
    "LeaderElector",
    "LeaseClient",
    "default_identity",
]

logger = logging.getLogger(__name__)

JITTER_FACTOR = 1.2
"""Candidates of a free Lease wait ``retry_period * (1 + random() * JITTER_FACTOR)``."""


class LeaseClient(Protocol):
    """The API client calls the elector makes (a ``KubeClient`` provides them)."""

    async def get(
        self, rt: ResourceType, name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        """Read an object."""
        ...

    async def create(
        self, rt: ResourceType, body: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        """Create an object."""
        ...

    async def update(
        self,
        rt: ResourceType,
        body: dict[str, Any],
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Replace an object (compare-and-swap on ``metadata.resourceVersion``)."""
        ...


class LeaderElectionLost(Exception):
    """Raised by :meth:`LeaderElector.run` when the leader could not keep its Lease."""


def default_identity() -> str:
    """Return ``hostname_uuid``: unique per process, readable in ``kubectl get lease``."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


Callback = Callable[[], Awaitable[None] | None]


class LeaderElector:
    """Campaigns for the Lease ``namespace/name`` and runs work only while leading.

    ``client``: API client (get/create/update of Leases).
    ``namespace``, ``name``: the Lease.
    ``identity``: this candidate's holderIdentity (default ``hostname_uuid``).
    ``lease_duration``: seconds a standby waits after the record last changed before taking
    over (client-go default 15).
    ``renew_deadline``: seconds a leader keeps retrying a failed renewal before giving up
    (default 10); a round's deadline is ``retry_period + renew_deadline`` after the start of
    the last successful write, so a slow reply never stretches it.
    ``retry_period``: seconds between attempts (default 2).
    ``release_on_cancel``: release the Lease when :meth:`run` is cancelled (default True).
    ``clock``: monotonic time source; it must advance with the event loop's time (the
    default is the loop's clock, which ``looptime`` drives in tests).
    ``rng``: random source of the jitter (seed it for reproducible tests).

    Requires ``lease_duration > renew_deadline > 1.2 * retry_period`` (client-go's rule).
    """

    def __init__(
        self,
        client: LeaseClient,
        *,
        namespace: str,
        name: str,
        identity: str | None = None,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        release_on_cancel: bool = True,
        clock: Clock = monotonic,
        rng: random.Random | None = None,
    ) -> None:
        """Validate the timings and create the elector (see the class docstring)."""
        if lease_duration <= renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if renew_deadline <= JITTER_FACTOR * retry_period:
            raise ValueError("renew_deadline must be greater than 1.2 * retry_period")
        if retry_period <= 0:
            raise ValueError("retry_period must be positive")
        if lease_duration < 1:
            raise ValueError("lease_duration must be at least one second")
        if not namespace or not name:
            raise ValueError("the Lease needs a namespace and a name")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_cancel = release_on_cancel
        self._clock = clock
        self._rng = rng or random.Random()
        self._lease: dict[str, Any] | None = None  # last Lease read or written
        self._observed_spec: dict[str, Any] | None = None
        self._observed_at = 0.0
        self._renewed_at = 0.0  # clock at the start of the last successful acquire/renew
        self._leading = asyncio.Event()
        self._status = metrics.LEADER_ELECTION_MASTER_STATUS.labels(name)
        self._status.set(0)

    # -- public state ----------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """Whether this candidate currently holds the Lease."""
        return self._leading.is_set()

    def holds_lease(self) -> bool:
        """Whether this candidate may act as leader *now*: the fence for writes.

        True while leading and the last successful acquire or renewal started less than
        ``retry_period + renew_deadline`` ago on this candidate's clock. Unlike
        :attr:`is_leader`, it turns false the moment that deadline passes, before the renew
        loop gets to run: a process that was paused (SIGSTOP, a frozen VM) or whose loop was
        starved resumes with ``is_leader`` still set while a standby may already lead, and
        must not write on the strength of a lease it no longer holds.
        """
        if not self.is_leader:
            return False
        return self._clock() - self._renewed_at < self.retry_period + self.renew_deadline

    async def wait_leading(self) -> None:
        """Wait until this candidate leads."""
        await self._leading.wait()

    @property
    def observed_holder(self) -> str:
        """The holderIdentity last seen on the Lease ("" if none or unknown)."""
        return str((self._observed_spec or {}).get("holderIdentity") or "")

    # -- the campaign ----------------------------------------------------------------------------

    async def run(
        self,
        on_started_leading: Callable[[], Awaitable[None]],
        on_stopped_leading: Callback | None = None,
    ) -> None:
        """Acquire the Lease, run ``on_started_leading()`` while leading, keep renewing.

        Returns only by raising: :class:`asyncio.CancelledError` after a graceful stop (work
        cancelled and awaited, Lease released if ``release_on_cancel``),
        :class:`LeaderElectionLost` after losing the Lease (work cancelled,
        ``on_stopped_leading()`` called), or the exception the work raised (Lease released if
        ``release_on_cancel``).
        If the work returns normally, leadership is kept until cancellation or loss.
        """
        await self._acquire()
        self._set_leading(True)
        logger.info(
            "Successfully acquired lease",
            extra={"lease": f"{self.namespace}/{self.name}", "identity": self.identity},
        )
        work = asyncio.create_task(_call_async(on_started_leading), name=f"leading-{self.name}")
        renew = asyncio.create_task(self._renew_loop(), name=f"lease-renew-{self.name}")
        try:
            pending: set[asyncio.Task[None]] = {work, renew}
            while renew in pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if work in done and not work.cancelled() and work.exception() is not None:
                    renew.cancel()
                    await asyncio.wait({renew})
                    if self.release_on_cancel:
                        await self._release()
                    self._set_leading(False)
                    raise work.exception()  # type: ignore[misc]  # checked not None above
            renew.result()  # the renew loop only returns on loss; re-raise a bug
        except asyncio.CancelledError:
            await self._stop_gracefully(work, renew)
            raise
        except BaseException:
            work.cancel()
            renew.cancel()
            self._set_leading(False)
            raise
        # Lost the lease: stop acting at once.
        self._set_leading(False)
        logger.error(
            "Leader election lost",
            extra={"lease": f"{self.namespace}/{self.name}", "identity": self.identity},
        )
        await _cancel_hard(work)
        if on_stopped_leading is not None:
            await _call_async(on_stopped_leading)
        raise LeaderElectionLost(f"lost the lease {self.namespace}/{self.name}")

    async def _stop_gracefully(self, work: asyncio.Task[None], renew: asyncio.Task[None]) -> None:
        """Cancel the work and keep renewing until it has finished; then release."""
        work.cancel()
        try:
            if not renew.done():
                done, _ = await asyncio.wait({work, renew}, return_when=asyncio.FIRST_COMPLETED)
                if work not in done:  # lost the lease while the work was winding down
                    self._set_leading(False)
                    await _cancel_hard(work)
            else:
                self._set_leading(False)
                await _cancel_hard(work)
        finally:
            if not work.done():
                work.cancel()
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({renew})
        if self.release_on_cancel and self.is_leader:
            await self._release()
        self._set_leading(False)

    def _set_leading(self, leading: bool) -> None:
        if leading:
            self._leading.set()
        else:
            self._leading.clear()
        self._status.set(1 if leading else 0)

    async def _acquire(self) -> None:
        while True:
            started = self._clock()
            if await self._attempt():
                self._renewed_at = started
                return
            await asyncio.sleep(self._next_wait())

    def _next_wait(self) -> float:
        """Seconds until a standby's next attempt.

        While another candidate holds an unexpired Lease, poll every ``retry_period``
        exactly, and wake a millisecond after the predicted expiry if that comes first: a
        renewal is then noticed within one period, so a dead leader is replaced within
        ``lease_duration + retry_period``. Otherwise (free Lease, conflict, API error) wait
        a jittered ``retry_period * (1 + random() * JITTER_FACTOR)`` so candidates spread out.
        """
        if self.observed_holder not in ("", self.identity):
            expires_in = self._observed_at + self._lease_seconds() - self._clock()
            if expires_in > 0:
                return min(self.retry_period, expires_in + 0.001)
        return self.retry_period * (1 + self._rng.random() * JITTER_FACTOR)

    async def _attempt(self) -> bool:
        """One bounded try (an attempt never outlives ``renew_deadline``)."""
        try:
            async with asyncio.timeout(self.renew_deadline):
                return await self._try_acquire_or_renew()
        except TimeoutError:
            logger.warning("Lease request timed out", extra={"lease": self.name})
            return False
        except ApiError as exc:
            logger.warning(
                "Error acquiring or renewing the lease: %s", exc, extra={"lease": self.name}
            )
            return False

    async def _renew_loop(self) -> None:
        """Renew every ``retry_period``; return when a round misses ``renew_deadline``.

        The deadline of a round is ``retry_period + renew_deadline`` after the *start* of the
        last successful write, not after its reply: the write may have been applied long before
        a slow reply arrived, and standbys count the lease duration from when they saw it. So
        this leader always stops at least ``lease_duration - renew_deadline - retry_period``
        seconds before any standby may take over, however slow the API server answers.
        """
        while True:
            await asyncio.sleep(self.retry_period)
            deadline = self._renewed_at + self.retry_period + self.renew_deadline
            while True:
                started = self._clock()
                remaining = deadline - started
                if remaining <= 0:
                    return
                try:
                    async with asyncio.timeout(remaining):
                        ok = await self._try_acquire_or_renew()
                except TimeoutError:
                    ok = False
                except ApiError as exc:
                    logger.warning("Failed to renew the lease: %s", exc, extra={"lease": self.name})
                    ok = False
                if ok:
                    self._renewed_at = started
                    break
                if self.observed_holder not in ("", self.identity):
                    return  # someone else holds it: we are no longer the leader
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return
                await asyncio.sleep(min(self.retry_period, remaining))

    # -- one round -------------------------------------------------------------------------------

    def _lease_seconds(self) -> float:
        spec = self._observed_spec or {}
        seconds = spec.get("leaseDurationSeconds")
        return float(seconds) if isinstance(seconds, int | float) else self.lease_duration

    def _observe(self, lease: dict[str, Any]) -> None:
        spec = dict(lease.get("spec") or {})
        if spec != self._observed_spec:
            self._observed_spec = spec
            self._observed_at = self._clock()
        self._lease = lease

    def _new_spec(self, old: dict[str, Any]) -> dict[str, Any]:
        now = _micro_time()
        transitions = int(old.get("leaseTransitions") or 0)
        if old.get("holderIdentity") == self.identity and old.get("acquireTime"):
            acquire_time = old["acquireTime"]
        else:
            acquire_time = now
            if old:
                transitions += 1
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration)),
            "acquireTime": acquire_time,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    async def _try_acquire_or_renew(self) -> bool:
        # Fast path: the leader renews from the object it wrote last, without a read.
        if self.is_leader and self._lease is not None:
            try:
                await self._write(self._lease)
                return True
            except (Conflict, NotFound):
                logger.info("Lease changed behind our back, re-reading", extra={"lease": self.name})
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except NotFound:
            body = {
                "apiVersion": LEASES.api_version,
                "kind": LEASES.kind,
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._new_spec({}),
            }
            try:
                created = await self.client.create(LEASES, body, self.namespace)
            except AlreadyExists:
                return False
            self._observe(created)
            return True
        self._observe(lease)
        spec = self._observed_spec or {}
        holder = spec.get("holderIdentity") or ""
        expired = self._observed_at + self._lease_seconds() <= self._clock()
        if holder and holder != self.identity and not expired:
            return False  # held by another and not expired
        try:
            await self._write(lease)
        except Conflict:
            return False
        return True

    def _metadata(self, lease: dict[str, Any]) -> dict[str, Any]:
        """The metadata to PUT back: all of it (a PUT replaces the whole object, so leaving
        out, say, ``ownerReferences`` or ``finalizers`` would delete them), minus
        ``managedFields``, which the server keeps when a write omits them."""
        metadata = dict(lease.get("metadata") or {})
        metadata.pop("managedFields", None)
        metadata["name"] = self.name
        metadata["namespace"] = self.namespace
        return metadata

    async def _write(self, lease: dict[str, Any]) -> None:
        body = {
            "apiVersion": LEASES.api_version,
            "kind": LEASES.kind,
            "metadata": self._metadata(lease),
            "spec": self._new_spec(dict(lease.get("spec") or {})),
        }
        written = await self.client.update(LEASES, body, self.namespace)
        self._observe(written)

    async def _release(self) -> None:
        """Give the Lease up (empty holder, 1 s) if we still hold it; best effort.

        A conflict (a renewal in flight when the work stopped may have changed the
        resourceVersion) is resolved by re-reading: if we still hold the Lease, try again.
        """
        if self._lease is None or self.observed_holder != self.identity:
            return
        try:
            async with asyncio.timeout(self.renew_deadline):
                for _ in range(3):
                    try:
                        written = await self.client.update(
                            LEASES, self._released(self._lease), self.namespace
                        )
                    except Conflict:
                        self._observe(await self.client.get(LEASES, self.name, self.namespace))
                        if self.observed_holder != self.identity:
                            return
                        continue
                    self._observe(written)
                    logger.info(
                        "Released the lease", extra={"lease": f"{self.namespace}/{self.name}"}
                    )
                    return
        except (ApiError, TimeoutError) as exc:
            logger.warning("Failed to release the lease: %s", exc, extra={"lease": self.name})
            return
        logger.warning("Failed to release the lease: it kept changing", extra={"lease": self.name})

    def _released(self, lease: dict[str, Any]) -> dict[str, Any]:
        """The body of ``lease`` given up: empty holder, one-second duration."""
        spec = dict(lease.get("spec") or {})
        now = _micro_time()
        return {
            "apiVersion": LEASES.api_version,
            "kind": LEASES.kind,
            "metadata": self._metadata(lease),
            "spec": {
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": int(spec.get("leaseTransitions") or 0),
            },
        }


async def _call_async(func: Callback) -> None:
    result = func()
    if inspect.isawaitable(result):
        await result


async def _cancel_hard(task: asyncio.Future[None], attempts: int = 100) -> None:
    """Cancel ``task`` and keep cancelling until it ends (no grace: we lost the lease)."""
    for _ in range(attempts):
        if task.done():
            break
        task.cancel()
        await asyncio.wait({task}, timeout=0)
    if task.done() and not task.cancelled():
        exc = task.exception()
        if exc is not None:
            logger.error("Leading work failed while stopping", exc_info=exc)
