"""Workqueue throughput (not a test): ``.venv/bin/python tests/runtime/bench_workqueue.py``.

Two workloads, each on an unnamed queue (no metrics) and on a named one (``workqueue_*``
metrics recorded):

- *cycle*: one task does ``add``, ``get``, ``done`` in a loop (the uncontended hot path);
- *workers*: one producer adds keys from a set of 1,000 while 4 workers ``get``/``done``.

An operation is one ``add``, ``get`` or ``done`` call.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from flokoa_controller.runtime.workqueue import QueueShutDown, WorkQueue

N = 200_000


async def cycle(name: str) -> float:
    q: WorkQueue[int] = WorkQueue(name)
    start = time.perf_counter()
    for i in range(N):
        q.add(i)
        q.done(await q.get())
    elapsed = time.perf_counter() - start
    q.shutdown()
    return 3 * N / elapsed


async def workers(name: str, keys: int = 1000, count: int = 4) -> float:
    q: WorkQueue[int] = WorkQueue(name)
    ops = 0

    async def worker() -> None:
        nonlocal ops
        while True:
            try:
                item = await q.get()
            except QueueShutDown:
                return
            q.done(item)
            ops += 2

    tasks = [asyncio.create_task(worker()) for _ in range(count)]
    start = time.perf_counter()
    for i in range(N):
        q.add(i % keys)
        ops += 1
        if i % 100 == 0:
            await asyncio.sleep(0)
    await q.shutdown_with_drain()
    await asyncio.gather(*tasks)
    return ops / (time.perf_counter() - start)


def main() -> None:
    """Print operations per second for each workload and queue kind."""
    for label, name in (("unnamed (no metrics)", ""), ("named (metrics)", "bench")):
        suffix = uuid.uuid4().hex[:6] if name else ""
        c = asyncio.run(cycle(name and f"{name}-cycle-{suffix}"))
        w = asyncio.run(workers(name and f"{name}-workers-{suffix}"))
        print(f"{label:22s} cycle: {c:12,.0f} ops/s   4 workers: {w:12,.0f} ops/s")


if __name__ == "__main__":
    main()
