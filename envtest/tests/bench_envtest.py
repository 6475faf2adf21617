"""Scale figures for envtest (not collected by pytest): list latency, watch fan-out, memory.

    .venv/bin/python envtest/tests/bench_envtest.py [--objects 10000] [--watches 300]

Seeds objects in-process (same admission as HTTP), then measures over real HTTP on 127.0.0.1:
a full list (JSON and Table), a paginated relist (limit=500), and the time for N concurrent
watches to each receive a burst of writes.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time

import aiohttp
import orjson
from flokoa_envtest import APIServer

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def _seed(api: APIServer, count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        api.create_object(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": f"cm-{i:06d}",
                    "labels": {"app": "bench", "shard": str(i % 10)},
                },
                "data": {"key": "value" * 10, "index": str(i)},
            }
        )
    return time.perf_counter() - started


async def _timed_get(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[float, int, int, float]:
    """(seconds until the whole body is received, bytes, items, client decode seconds)."""
    started = time.perf_counter()
    async with session.get(url, headers=headers) as resp:
        body = await resp.read()
    elapsed = time.perf_counter() - started
    decode_started = time.perf_counter()
    items = orjson.loads(body)
    decode = time.perf_counter() - decode_started
    count = len(items.get("items") or items.get("rows") or [])
    return elapsed, len(body), count, decode


async def main(objects: int, watches: int) -> None:
    async with APIServer(watch_history=max(10_000, objects)) as api:
        seed_s = _seed(api, objects)
        print(f"seeded {objects} configmaps in-process: {seed_s:.2f} s ({objects / seed_s:.0f}/s)")
        url = f"{api.url}/api/v1/namespaces/default/configmaps"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await _timed_get(session, url)  # warm up
            runs = [await _timed_get(session, url) for _ in range(5)]
            times = [r[0] for r in runs]
            print(
                f"list {runs[0][2]} objects (JSON, {runs[0][1] / 1e6:.1f} MB), request to last "
                f"byte: median {statistics.median(times) * 1000:.0f} ms, min "
                f"{min(times) * 1000:.0f} ms (client orjson decode, same process: median "
                f"{statistics.median(r[3] for r in runs) * 1000:.0f} ms)"
            )
            table = [await _timed_get(session, url, {"Accept": TABLE}) for _ in range(3)]
            print(
                f"list as Table, request to last byte: median "
                f"{statistics.median(t[0] for t in table) * 1000:.0f} ms"
            )
            started = time.perf_counter()
            token, pages = "", 0
            while True:
                async with session.get(
                    url, params={"limit": "500", **({"continue": token} if token else {})}
                ) as resp:
                    page = orjson.loads(await resp.read())
                pages += 1
                token = page["metadata"].get("continue", "")
                if not token:
                    break
            relist_ms = (time.perf_counter() - started) * 1000
            print(f"paginated relist (limit=500, {pages} pages): {relist_ms:.0f} ms")
            selected = await _timed_get(session, url + "?labelSelector=shard%3D3")
            print(
                f"list with labelSelector ({selected[2]} of {objects}): {selected[0] * 1000:.0f} ms"
            )

            rv = str(api.storage.rv)
            streams = []
            for _ in range(watches):
                resp = await session.get(url, params={"watch": "1", "resourceVersion": rv})
                streams.append(resp)
            writes = 100

            async def drain(resp: aiohttp.ClientResponse) -> None:
                seen = 0
                while seen < writes:
                    line = await resp.content.readline()
                    if not line:
                        raise RuntimeError("watch ended early")
                    seen += 1

            started = time.perf_counter()
            for i in range(writes):
                api.patch_object("v1", "ConfigMap", f"cm-{i:06d}", {"data": {"index": "changed"}})
            await asyncio.gather(*(drain(r) for r in streams))
            fan = time.perf_counter() - started
            print(
                f"{writes} writes fanned out to {watches} watches ({writes * watches} events): "
                f"{fan * 1000:.0f} ms"
            )
            for r in streams:
                r.close()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"max RSS of this process (server + client): {rss:.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--watches", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.objects, args.watches))
