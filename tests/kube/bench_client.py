"""Benchmarks of the API client (not collected by pytest; run by hand).

    .venv/bin/python tests/kube/bench_client.py decode     # inline vs threaded JSON decode
    .venv/bin/python tests/kube/bench_client.py envtest    # GET/s and list of 10,000 objects

`decode` measures how long the event loop stalls while a large list body is decoded on the
loop and in a worker thread (orjson holds the GIL, so the thread is not expected to help).
`envtest` needs `flokoa_envtest.APIServer`.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from typing import Any

import orjson


def list_body(n: int) -> bytes:
    """A list of `n` ConfigMap-sized objects (about 1 KiB each)."""
    items = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"cm-{i:05d}",
                "namespace": "bench",
                "uid": f"00000000-0000-0000-0000-{i:012d}",
                "resourceVersion": str(1000 + i),
                "labels": {"app": "bench", "shard": str(i % 10)},
                "managedFields": [
                    {
                        "manager": "bench",
                        "operation": "Update",
                        "apiVersion": "v1",
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:data": {"f:k": {}}},
                    }
                ],
            },
            "data": {"k": "v" * 512},
        }
        for i in range(n)
    ]
    return orjson.dumps(
        {
            "kind": "ConfigMapList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "99999"},
            "items": items,
        }
    )


async def _ticker(stop: asyncio.Event, gaps: list[float]) -> None:
    loop = asyncio.get_running_loop()
    last = loop.time()
    while not stop.is_set():
        await asyncio.sleep(0.001)
        now = loop.time()
        gaps.append(now - last)
        last = now


async def _decode_once(body: bytes, threaded: bool) -> tuple[float, float]:
    """(decode seconds, longest loop stall seconds) of one decode; GC off meanwhile so that
    freeing earlier results does not blur the figure."""
    stop = asyncio.Event()
    gaps: list[float] = []
    ticker = asyncio.create_task(_ticker(stop, gaps))
    await asyncio.sleep(0.02)
    gaps.clear()
    gc.disable()
    try:
        started = time.perf_counter()
        if threaded:
            result = await asyncio.to_thread(orjson.loads, body)
        else:
            result = orjson.loads(body)
        elapsed = time.perf_counter() - started
        await asyncio.sleep(0.02)
    finally:
        gc.enable()
    stop.set()
    await ticker
    del result
    return elapsed, max(gaps)


async def bench_decode() -> None:
    for n in (500, 10_000):
        body = list_body(n)
        for threaded in (False, True):
            runs = [await _decode_once(body, threaded) for _ in range(7)]
            per_decode = statistics.median(r[0] for r in runs)
            stall = statistics.median(r[1] for r in runs)
            print(
                f"{n:>6} objects {len(body) / 1e6:6.1f} MB "
                f"{'thread' if threaded else 'inline':>6}: decode {per_decode * 1e3:7.1f} ms, "
                f"longest loop stall {stall * 1e3:7.1f} ms"
            )


async def bench_envtest() -> None:
    from flokoa_envtest import APIServer

    from flokoa_controller.kube.client import KubeClient
    from flokoa_controller.kube.config import load_kubeconfig
    from flokoa_controller.kube.resources import CONFIGMAPS, NAMESPACES

    async with APIServer() as api:
        config = load_kubeconfig(api.kubeconfig_path)
        async with KubeClient(config) as client:
            await client.create(NAMESPACES, {"metadata": {"name": "bench"}})
            await client.create(
                CONFIGMAPS,
                {"metadata": {"name": "small", "namespace": "bench"}, "data": {"k": "v"}},
            )
            for concurrency in (1, 16):
                n = 2000

                async def worker(count: int) -> None:
                    for _ in range(count):
                        await client.get(CONFIGMAPS, "small", "bench")

                started = time.perf_counter()
                await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
                elapsed = time.perf_counter() - started
                print(
                    f"GET small ConfigMap, concurrency {concurrency:>2}: "
                    f"{n / elapsed:7.0f} requests/s"
                )

            sem = asyncio.Semaphore(32)

            async def create(i: int) -> None:
                body: dict[str, Any] = {
                    "metadata": {
                        "name": f"cm-{i:05d}",
                        "namespace": "bench",
                        "labels": {"app": "bench"},
                    },
                    "data": {"k": "v" * 512},
                }
                async with sem:
                    await client.create(CONFIGMAPS, body)

            await asyncio.gather(*(create(i) for i in range(10_000)))
            for page_size in (500, 0):
                times = []
                for _ in range(3):
                    started = time.perf_counter()
                    if page_size:
                        result = await client.list_all(
                            CONFIGMAPS, "bench", page_size=page_size, label_selector="app=bench"
                        )
                    else:
                        result = await client.list(CONFIGMAPS, "bench", label_selector="app=bench")
                    times.append(time.perf_counter() - started)
                    assert len(result["items"]) == 10_000
                label = f"pages of {page_size}" if page_size else "one request"
                print(
                    f"list+decode 10,000 ConfigMaps ({label}): "
                    f"median {statistics.median(times):.2f} s"
                )


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "decode"
    asyncio.run(bench_decode() if what == "decode" else bench_envtest())


if __name__ == "__main__":
    main()
