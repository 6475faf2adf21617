"""The harness's watch on the benchmark's ModelProviders: when did each become correct?

:class:`Observer` lists and watches ModelProviders in the benchmark namespace (resuming after
drops, relisting after a 410, retrying through outages) and keeps, per object, only what
the verdict needs. :meth:`Observer.expect` registers the ``secretHash`` an object must reach
(Ready, at its generation); the wall-clock time (``time.time()``) of the first event showing
it is recorded in :attr:`Observer.reached`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any

import aiohttp
import orjson

from flokoa_bench import workload
from flokoa_bench.api import Harness


class Observer:
    """Watches ModelProviders; records when each reaches its expected status."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.expected: dict[str, str] = {}
        """name → secretHash it must reach."""
        self.reached: dict[str, float] = {}
        """name → wall time it was first seen correct (for the current expectation)."""
        self.state: dict[str, tuple[bool, str | None, int | None, int | None]] = {}
        """name → (ready, secretHash, observedGeneration, generation) last seen."""
        self.changed = asyncio.Event()
        self.relists = 0
        self.errors: list[str] = []
        """The last watch errors (for diagnosis)."""
        self._task: asyncio.Task[None] | None = None

    # -- expectations ------------------------------------------------------------------------

    def expect(self, name: str, secret_hash: str) -> None:
        """From now on, ``name`` is correct when Ready with ``secret_hash``."""
        self.expected[name] = secret_hash
        self.reached.pop(name, None)
        self._check(name, time.time())

    def pending(self) -> list[str]:
        """Names expected but not reached yet."""
        return [n for n in self.expected if n not in self.reached]

    def correct(self, name: str) -> bool:
        """Whether the last seen state of ``name`` matches its expectation."""
        ready, digest, observed, generation = self.state.get(name, (False, None, None, None))
        return ready and digest == self.expected.get(name) and observed == generation

    def _check(self, name: str, now: float) -> None:
        if name in self.expected and name not in self.reached and self.correct(name):
            self.reached[name] = now
            self.changed.set()

    def _see(self, obj: dict[str, Any], now: float) -> None:
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if not isinstance(name, str):
            return
        status = obj.get("status") or {}
        self.state[name] = (
            status.get("ready") is True,
            status.get("secretHash"),
            status.get("observedGeneration"),
            meta.get("generation"),
        )
        self._check(name, now)

    async def wait_count(self, count: int, within: float) -> bool:
        """Wait until ``count`` expectations are reached (False on timeout)."""
        end = time.monotonic() + within
        while len(self.reached) < count:
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 0.2))
        return True

    async def wait_all(self, within: float) -> bool:
        """Wait until every expectation is reached (False on timeout)."""
        end = time.monotonic() + within
        while self.pending():
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))
        return True

    # -- list + watch ------------------------------------------------------------------------

    async def start(self) -> None:
        """List (so the state is complete) and start watching."""
        rv = await self._relist()
        self._task = asyncio.get_running_loop().create_task(self._watch(rv))

    async def stop(self) -> None:
        """Stop watching."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _relist(self) -> str:
        items, rv = await self.harness.list_all(workload.MODELPROVIDERS_PATH)
        now = time.time()
        self.relists += 1
        for obj in items:
            self._see(obj, now)
        return rv

    async def _watch(self, rv: str) -> None:
        url = self.harness.server + workload.MODELPROVIDERS_PATH
        while True:
            params = {"watch": "1", "allowWatchBookmarks": "true", "resourceVersion": rv}
            try:
                async with self.harness.session.get(
                    url, params=params, timeout=aiohttp.ClientTimeout(total=None)
                ) as r:
                    if r.status == 410:
                        raise _Expired
                    if r.status != 200:
                        raise ConnectionError(r.status)
                    async for line in r.content:
                        if not line.strip():
                            continue
                        event = orjson.loads(line)
                        obj = event["object"]
                        if event["type"] == "ERROR":
                            if obj.get("code") == 410:
                                raise _Expired
                            raise ConnectionError(obj.get("code"))
                        rv = obj["metadata"]["resourceVersion"]
                        if event["type"] in ("ADDED", "MODIFIED"):
                            self._see(obj, time.time())
            except _Expired:
                with contextlib.suppress(Exception):
                    rv = await self._relist()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep watching whatever happened; remember what
                self.errors.append(f"{type(exc).__name__}: {exc}")
                del self.errors[:-20]
                await asyncio.sleep(0.05 + 0.2 * random.random())


class _Expired(Exception):
    pass
