"""Serve the fake OpenAI-compatible endpoint (``FakeProviders``' ``openai``) as a process.

    python hack/bench/fake_openai.py

Prints one line ``BENCH-READY {"base_url": ..., "url": ...}`` once listening, then serves
until SIGINT/SIGTERM. Accepts every ``Bearer`` key starting with ``sk-bench-`` (so the
benchmark can rotate keys without registering each), rejects others with OpenAI's 401.
``GET /bench/stats`` answers ``{"requests": <model API requests so far>}``; recorded
requests are forgotten every second so the fake's memory stays flat on long runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flokoa_bench.workload import KEY_PREFIX
from flokoa_envtest.fakes.openai import FakeOpenAI
from flokoa_envtest.fakes.server import KeySet

from flokoa_controller.runtime import eventloop  # uvloop when installed, as the operator


class PrefixKeys(KeySet):
    """Accepts every non-revoked key with the benchmark's prefix."""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.startswith(KEY_PREFIX) and key not in self.revoked


class BenchOpenAI(FakeOpenAI):
    """The fake OpenAI endpoint plus a request counter."""

    def __init__(self) -> None:
        super().__init__()
        self.keys = PrefixKeys(KEY_PREFIX)
        self.total = 0

    def routes(self) -> list[web.RouteDef]:
        """The OpenAI routes and ``/bench/stats``."""
        return [*super().routes(), web.get("/bench/stats", self._stats)]

    def drain(self) -> None:
        """Count and forget recorded requests."""
        self.total += sum(1 for r in self.requests if r.path.startswith("/v1/"))
        self.requests.clear()

    async def _stats(self, request: web.Request) -> web.Response:
        self.drain()
        return web.json_response({"requests": self.total})


async def serve() -> None:
    """Serve until SIGINT/SIGTERM."""
    fake = BenchOpenAI()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with fake:
        info = {"base_url": fake.base_url, "url": fake.url}
        print("BENCH-READY " + json.dumps(info), flush=True)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            fake.drain()


def main() -> None:
    """Serve until interrupted."""
    eventloop.run(serve())


if __name__ == "__main__":
    main()
