"""Collects envtest's audit log during a scenario and counts a contender's requests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from flokoa_bench.api import HARNESS_AGENT, Control

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class Row:
    """One API request as envtest recorded it."""

    time: float
    verb: str
    resource: str
    namespace: str
    name: str
    subresource: str
    code: int
    agent: str
    initial: bool = False
    """A watch with ``sendInitialEvents=true`` (a streaming list)."""

    @property
    def is_write(self) -> bool:
        """Whether the verb changes state."""
        return self.verb in WRITE_VERBS

    @property
    def target(self) -> str:
        """``resource`` or ``resource/subresource``."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


class AuditCollector:
    """Drains envtest's audit log every ``interval`` seconds into :attr:`rows`."""

    def __init__(self, control: Control, interval: float = 1.0) -> None:
        self.control = control
        self.interval = interval
        self.rows: list[Row] = []
        self._task: asyncio.Task[None] | None = None

    async def drain(self) -> None:
        """Fetch what was recorded since the last drain."""
        for r in await self.control.audit():
            if str(r[7]).startswith(HARNESS_AGENT):
                continue
            self.rows.append(
                Row(float(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6]), r[7], bool(r[8]))
            )

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            with contextlib.suppress(Exception):
                await self.drain()

    def start(self) -> None:
        """Start draining periodically."""
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop and drain once more."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.drain()

    async def quiesce(
        self, agent_prefix: str = "", quiet: float = 2.0, limit: float = 60.0
    ) -> float:
        """Wait until no request (from agents starting with ``agent_prefix``) arrived for
        ``quiet`` seconds (at most ``limit`` seconds); the seconds waited."""
        began = time.monotonic()
        while time.monotonic() - began < limit:
            await self.drain()
            last = max(
                (r.time for r in reversed(self.rows[-500:]) if r.agent.startswith(agent_prefix)),
                default=0.0,
            )
            if time.time() - last >= quiet:
                break
            await asyncio.sleep(0.5)
        return time.monotonic() - began

    def mark(self) -> int:
        """Position to count from (see :meth:`since`)."""
        return len(self.rows)

    def since(self, mark: int, until: float | None = None) -> list[Row]:
        """Rows after ``mark`` (and before wall time ``until``)."""
        rows = self.rows[mark:]
        return [r for r in rows if until is None or r.time <= until]


def summarize(rows: list[Row]) -> dict[str, Any]:
    """Request counts: total, by verb, by verb+target, writes, status writes, lists, errors."""
    by_verb = Counter(r.verb for r in rows)
    by_target = Counter(f"{r.verb} {r.target}" for r in rows)
    return {
        "total": len(rows),
        "by_verb": dict(sorted(by_verb.items())),
        "by_target": dict(sorted(by_target.items())),
        "writes": sum(1 for r in rows if r.is_write),
        "status_writes": sum(1 for r in rows if r.is_write and r.subresource == "status"),
        "object_writes": sum(
            1
            for r in rows
            if r.is_write and r.resource in ("modelproviders", "secrets") and not r.subresource
        ),
        "lists": by_verb.get("list", 0),
        "streaming_lists": sum(1 for r in rows if r.verb == "watch" and r.initial),
        "watches": by_verb.get("watch", 0),
        "errors": sum(1 for r in rows if r.code >= 400 or r.code == 0),
    }
