"""Benchmark: provider probes per second against the fake OpenAI endpoint.

    .venv/bin/python tests/providers/bench_probes.py [--probes 3000] [--concurrency 16]
        [--tls] [--same-process] [--model]

By default the fake runs in a child process (so the figure is the probing side's cost plus a
real loopback round trip); `--same-process` shares one event loop between fake and client.
Not collected by pytest (no `test_` prefix); prints one line per run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from multiprocessing.connection import Connection

import trustme
from flokoa_envtest.dev import DEV_ALLOWED_DESTINATIONS
from flokoa_envtest.fakes import FakeOpenAI

from flokoa_controller.providers import (
    ProbeHTTP,
    ProbeTarget,
    TLSSettings,
    probe_model,
    probe_provider,
)
from flokoa_controller.providers.destinations import DestinationPolicy


def _serve(conn: Connection, tls: bool) -> None:
    async def main() -> None:
        ca = trustme.CA() if tls else None
        async with FakeOpenAI(tls=ca) as fake:
            conn.send((fake.base_url, fake.api_key, ca.cert_pem.bytes() if ca else None))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    asyncio.run(main())


async def run(
    probes: int, concurrency: int, base_url: str, key: str, ca: bytes | None, model: bool
) -> float:
    target = ProbeTarget(kind="openai", base_url=base_url, api_key=key, tls=TLSSettings(ca_pem=ca))
    async with ProbeHTTP(
        max_per_host=concurrency, policy=DestinationPolicy.build(allow=DEV_ALLOWED_DESTINATIONS)
    ) as http:
        remaining = probes

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                result = await (
                    probe_model(target, "gpt-4o", http) if model else probe_provider(target, http)
                )
                assert result.ok, result

        await worker()  # warm the pool and the TLS context
        remaining = probes
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return probes / (time.perf_counter() - start)


async def same_process(args: argparse.Namespace) -> float:
    ca = trustme.CA() if args.tls else None
    async with FakeOpenAI(tls=ca) as fake:
        pem = ca.cert_pem.bytes() if ca else None
        return await run(
            args.probes, args.concurrency, fake.base_url, fake.api_key, pem, args.model
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--probes", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--tls", action="store_true", help="HTTPS with a trustme CA")
    parser.add_argument("--same-process", action="store_true")
    parser.add_argument("--model", action="store_true", help="probe a model instead of the list")
    args = parser.parse_args()
    if args.same_process:
        rate = asyncio.run(same_process(args))
    else:
        parent, child = multiprocessing.Pipe()
        server = multiprocessing.get_context("spawn").Process(target=_serve, args=(child, args.tls))
        server.start()
        try:
            base_url, key, pem = parent.recv()
            rate = asyncio.run(run(args.probes, args.concurrency, base_url, key, pem, args.model))
        finally:
            parent.send("stop")
            server.join(10)
    where = "same process" if args.same_process else "fake in a child process"
    kind = "model" if args.model else "provider"
    print(
        f"{rate:,.0f} {kind} probes/s ({args.probes} probes, concurrency {args.concurrency}, "
        f"{'https' if args.tls else 'http'}, {where})"
    )


if __name__ == "__main__":
    main()
