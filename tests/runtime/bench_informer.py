"""Informer benchmark (not collected by pytest): list-and-sync time and event throughput.

Runs envtest in a separate process (so the server's work is not charged to the informer),
creates N ConfigMaps, then measures:

- **sync**: time from ``Informer.run()`` to ``wait_for_sync()`` for the streaming list and
  for the paginated list (limit=500), median of ``--repeat`` runs;
- **events/s**: the informer is paused, ``--events`` updates are written, and the informer
  resumes its watch from its last resourceVersion: the time to deliver every update to a
  handler (server replay + decode + transform + store + handler) gives events per second.

Usage::

    .venv/bin/python tests/runtime/bench_informer.py --objects 10000 --events 20000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from flokoa_controller.kube.client import KubeClient
from flokoa_controller.kube.config import load_kubeconfig
from flokoa_controller.kube.resources import CONFIGMAPS, NAMESPACES
from flokoa_controller.runtime.informer import EventHandler, Informer

NAMESPACE = "bench"


async def start_envtest(workdir: Path, history: int) -> tuple[asyncio.subprocess.Process, Path]:
    kubeconfig = workdir / "kubeconfig"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "flokoa_controller",
        "envtest",
        "--port",
        "0",
        "--kubeconfig-out",
        str(kubeconfig),
        "--watch-history",
        str(history),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    while True:
        line = (await proc.stdout.readline()).decode()
        if not line:
            raise RuntimeError("envtest did not start")
        if line.startswith("kubeconfig:"):
            return proc, kubeconfig


async def populate(client: KubeClient, count: int) -> None:
    await client.create(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    )
    semaphore = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        async with semaphore:
            await client.create(
                CONFIGMAPS,
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": f"cm-{i:05d}",
                        "labels": {"app": "bench", "shard": str(i % 16)},
                    },
                    "data": {f"key{k}": f"value-{i}-{k}" for k in range(8)},
                },
                namespace=NAMESPACE,
            )

    await asyncio.gather(*(one(i) for i in range(count)))


async def time_sync(client: KubeClient, streaming: bool) -> float:
    informer = Informer(client, CONFIGMAPS, namespaces=[NAMESPACE], streaming_list=streaming)
    started = time.perf_counter()
    task = asyncio.create_task(informer.run())
    try:
        assert await informer.wait_for_sync(300)
        return time.perf_counter() - started
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def events_per_second(client: KubeClient, count: int) -> tuple[float, int]:
    received = 0
    done = asyncio.Event()

    def on_update(old: dict[str, Any], new: dict[str, Any]) -> None:
        nonlocal received
        received += 1
        if received >= count:
            done.set()

    informer = Informer(client, CONFIGMAPS, namespaces=[NAMESPACE])
    informer.add_handler(EventHandler(on_update=on_update))
    task = asyncio.create_task(informer.run())
    assert await informer.wait_for_sync(300)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    names = sorted(informer.store.keys())
    semaphore = asyncio.Semaphore(64)

    async def touch(i: int) -> None:
        name = names[i % len(names)].split("/", 1)[1]
        async with semaphore:
            await client.patch(
                CONFIGMAPS, name, {"data": {"key0": f"update-{i}"}}, namespace=NAMESPACE
            )

    await asyncio.gather(*(touch(i) for i in range(count)))
    started = time.perf_counter()
    task = asyncio.create_task(informer.run())  # resumes the watch from its last version
    try:
        await asyncio.wait_for(done.wait(), 300)
        elapsed = time.perf_counter() - started
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert informer.stats.lists + informer.stats.streaming_lists == 1, "relisted"
    return count / elapsed, received


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc, kubeconfig = await start_envtest(Path(tmp), history=args.events + 1000)
        try:
            async with KubeClient(load_kubeconfig(kubeconfig)) as client:
                t0 = time.perf_counter()
                await populate(client, args.objects)
                print(f"created {args.objects} ConfigMaps in {time.perf_counter() - t0:.1f}s")
                for streaming in (True, False):
                    runs = [await time_sync(client, streaming) for _ in range(args.repeat)]
                    label = "streaming list" if streaming else "list (limit=500) "
                    shown = ", ".join(f"{r:.2f}" for r in runs)
                    median = statistics.median(runs)
                    print(f"sync {args.objects} objects, {label}: median {median:.2f}s ({shown})")
                rate, received = await events_per_second(client, args.events)
                print(f"events through an informer: {rate:,.0f}/s ({received} updates)")
        finally:
            proc.terminate()
            await proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
