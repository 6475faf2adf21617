"""Fault injection: the failures a real cluster inflicts on clients, switchable at run time.

Set attributes on ``api.faults`` (or pass CLI flags / ``POST /envtest/faults``):

* ``latency`` — seconds added before every API request is answered;
* ``write_reply_delay`` — seconds every write's reply is held after the write is stored: its
  watch events reach watchers first, as a real kube-apiserver's watch often beats the reply
  to the write (clients must not assume the reply comes first);
* ``error_rate``, ``error_code`` (500, 503, 429 …), ``retry_after`` — fail that share of API
  requests (``error_verbs`` limits it to some verbs); ``fail_next(n)`` fails the next ``n``;
* ``watch_max_seconds`` — every watch ends (cleanly) that long after it started;
* ``expire_watch_resumes`` — the next N watches that resume from a resourceVersion get an ERROR
  event with a 410 Expired ``Status``;
* ``zombie_watches`` — watches stay open but send nothing (no events, no bookmarks) until
  dropped;
* ``refuse_streaming_list`` — every streaming list (a watch with ``sendInitialEvents=true``, or
  one kube 1.32 makes a streaming list by default: from resourceVersion "" or "0", bookmarks
  allowed, no ``sendInitialEvents`` and no ``resourceVersionMatch``) is
  answered as kube-apiserver v1.32 with its default ``WatchList`` gate answers over an etcd
  without progress notifications: ``200``, then one ERROR event carrying a ``500 InternalError``
  ``Status`` ("a watch stream was requested by the client but the required storage feature
  RequestWatchProgress is disabled"), and the end of the stream;
* ``drop_watches()`` — reset every open watch connection now;
* ``outage(seconds)`` — close the listening socket and every connection, reopen on the same
  port after ``seconds`` (clients see connection refused meanwhile).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from typing import Any

from flokoa_envtest.errors import StatusError, injected

_NOTIFY_ON = frozenset({"zombie_watches", "watch_max_seconds"})


class Faults:
    """The fault knobs of one :class:`~flokoa_envtest.server.APIServer`."""

    latency: float
    """Seconds of delay added to every API request."""
    write_reply_delay: float
    """Seconds a write's reply is held after the write (its watch events go out first)."""
    error_rate: float
    """Share (0..1) of API requests answered with ``error_code``."""
    error_code: int
    """HTTP status of injected failures (500, 503, 429, 504)."""
    retry_after: int | None
    """``Retry-After`` seconds sent with injected failures (None: no header)."""
    error_verbs: frozenset[str] | None
    """Only fail these kube verbs (None: every verb)."""
    watch_max_seconds: float | None
    """End every watch this many seconds after it started (None: no limit)."""
    expire_watch_resumes: int
    """Answer the next N watch resumes (a specific resourceVersion) with 410 Expired."""
    zombie_watches: bool
    """Keep watches open but silent."""
    refuse_streaming_list: bool
    """Answer every streaming list with kube-apiserver's ERROR event (a 500 ``Status``) for a
    storage that cannot send watch progress notifications (what a real v1.32 server over
    etcd 3.4 does)."""

    def __init__(self, *, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._failures_left = 0
        self._drop: Callable[[], int] = lambda: 0
        self._outage_begin: Callable[[], None] | None = None
        self._outage_end: Callable[[float], Coroutine[Any, Any, None]] | None = None
        self._notify: Callable[[], None] = lambda: None
        self.latency = 0.0
        self.write_reply_delay = 0.0
        self.error_rate = 0.0
        self.error_code = 503
        self.retry_after = 1
        self.error_verbs = None
        self.watch_max_seconds = None
        self.expire_watch_resumes = 0
        self.zombie_watches = False
        self.refuse_streaming_list = False
        self.outages = 0
        """Outages so far."""

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in _NOTIFY_ON and "_notify" in self.__dict__:
            self._notify()

    def reset(self) -> None:
        """Switch every knob off."""
        self.latency = 0.0
        self.write_reply_delay = 0.0
        self.error_rate = 0.0
        self.error_code = 503
        self.retry_after = 1
        self.error_verbs = None
        self.watch_max_seconds = None
        self.expire_watch_resumes = 0
        self.zombie_watches = False
        self.refuse_streaming_list = False
        self._failures_left = 0

    def fail_next(self, count: int, code: int | None = None, retry_after: int | None = -1) -> None:
        """Fail the next ``count`` API requests (optionally changing code and Retry-After)."""
        self._failures_left = count
        if code is not None:
            self.error_code = code
        if retry_after != -1:
            self.retry_after = retry_after

    def injected_failure(self, verb: str) -> StatusError | None:
        """The failure to answer a request with, if one is due."""
        if self.error_verbs is not None and verb not in self.error_verbs:
            return None
        if self._failures_left > 0:
            self._failures_left -= 1
            return injected(self.error_code, self.retry_after)
        if self.error_rate > 0 and self._rng.random() < self.error_rate:
            return injected(self.error_code, self.retry_after)
        return None

    def take_expired_resume(self) -> bool:
        """Consume one of the pending forced 410s for a watch resume."""
        if self.expire_watch_resumes > 0:
            self.expire_watch_resumes -= 1
            return True
        return False

    def drop_watches(self) -> int:
        """Reset every open watch connection now; returns how many were dropped."""
        return self._drop()

    async def outage(self, seconds: float) -> None:
        """Refuse connections for ``seconds`` (returns when the server listens again)."""
        await self.start_outage(seconds)

    def start_outage(self, seconds: float) -> asyncio.Task[None]:
        """Close the socket and connections now; the returned task reopens after ``seconds``."""
        if self._outage_begin is None or self._outage_end is None:
            raise RuntimeError("the server is not running")
        self.outages += 1
        self._outage_begin()
        return asyncio.get_running_loop().create_task(self._outage_end(seconds))

    def snapshot(self) -> dict[str, Any]:
        """The knob values (for ``GET /envtest/faults``)."""
        return {
            "latency": self.latency,
            "write_reply_delay": self.write_reply_delay,
            "error_rate": self.error_rate,
            "error_code": self.error_code,
            "retry_after": self.retry_after,
            "error_verbs": sorted(self.error_verbs) if self.error_verbs is not None else None,
            "watch_max_seconds": self.watch_max_seconds,
            "expire_watch_resumes": self.expire_watch_resumes,
            "zombie_watches": self.zombie_watches,
            "refuse_streaming_list": self.refuse_streaming_list,
            "fail_next": self._failures_left,
            "outages": self.outages,
        }

    def update(self, values: dict[str, Any]) -> None:
        """Set knobs from a JSON document (``POST /envtest/faults``)."""
        for key, value in values.items():
            if key == "fail_next":
                self.fail_next(int(value))
            elif key == "error_verbs":
                self.error_verbs = frozenset(value) if value is not None else None
            elif key in (
                "latency",
                "write_reply_delay",
                "error_rate",
                "error_code",
                "retry_after",
                "watch_max_seconds",
                "expire_watch_resumes",
                "zombie_watches",
                "refuse_streaming_list",
            ):
                setattr(self, key, value)
            else:
                raise ValueError(f"unknown fault knob {key!r}")
