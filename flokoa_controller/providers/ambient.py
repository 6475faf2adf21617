"""`AmbientExecutor`: the few threads the operator's *ambient* identity may block.

Every token request of a ModelProvider goes through `ProbeHTTP` (aiohttp: cancellable, one
deadline). The one exception is the operator's own ambient identity — botocore's default
credential chain (environment, IRSA file, EKS Pod Identity, shared config, instance
metadata) and Google's Application Default Credentials (metadata server,
`GOOGLE_APPLICATION_CREDENTIALS`) — whose discovery logic lives in botocore and google-auth
and does its own, synchronous I/O. It is only used for namespaces the administrator allows
(`--ambient-identity-namespaces`) and only talks to the administrator's own environment,
yet a stuck metadata server must not stall anything else, so that work runs here:

- at most `max_workers` threads (daemon threads: a stuck one never delays the process's
  exit, and the default executor — which `asyncio.run` joins at shutdown — is never used);
- at most `max_pending` calls queued behind them; beyond that a call fails at once
  (`AmbientBusy`) instead of piling up;
- every call awaited with a hard deadline (`run`): the awaiting probe gives up at the
  deadline whatever the thread does; a thread that outlives it stays counted in
  `max_workers`, so a misbehaving environment can hold at most those few threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_AMBIENT_WORKERS = 4
"""Threads of the ambient executor."""

DEFAULT_AMBIENT_PENDING = 32
"""Calls that may wait for an ambient thread before new ones are refused."""


class AmbientBusy(Exception):
    """Every ambient thread is busy and the queue is full."""


_STOP = object()


class AmbientExecutor(concurrent.futures.Executor):
    """A small, bounded pool of daemon threads (see the module docstring)."""

    def __init__(
        self,
        max_workers: int = DEFAULT_AMBIENT_WORKERS,
        max_pending: int = DEFAULT_AMBIENT_PENDING,
    ) -> None:
        self.max_workers = max_workers
        self.max_pending = max_pending
        self._queue: queue.Queue[Any] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._pending = 0
        self._shutdown = False

    @property
    def threads(self) -> int:
        """Threads started so far (never more than `max_workers`)."""
        return len(self._threads)

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        """Queue `fn(*args, **kwargs)`; raises `AmbientBusy` when the queue is full."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("the ambient executor is shut down")
            if self._pending >= self.max_pending + self.max_workers:
                raise AmbientBusy()
            self._pending += 1
            if len(self._threads) < self.max_workers:
                thread = threading.Thread(
                    target=self._work, name=f"flokoa-ambient-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._queue.put((future, fn, args, kwargs))
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            future, fn, args, kwargs = item
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args, **kwargs))
                    except BaseException as exc:  # handed to the awaiting coroutine
                        future.set_exception(exc)
            finally:
                with self._lock:
                    self._pending -= 1

    def shutdown(self, wait: bool = False, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; idle threads exit, busy ones are abandoned (daemons)."""
        with self._lock:
            self._shutdown = True
        for _ in self._threads:
            self._queue.put(_STOP)

    async def run(self, fn: Callable[[], T], deadline: float) -> T:
        """`fn()` on an ambient thread, awaited at most `deadline` seconds.

        Raises `TimeoutError` past the deadline, `AmbientBusy` when saturated.
        """
        future = self.submit(fn)
        try:
            async with asyncio.timeout(deadline):
                return await asyncio.wrap_future(future)
        finally:
            future.cancel()  # a call still queued never runs
