"""Scale smoke test: thousands of objects, hundreds of concurrent watches (no timing asserts).

Figures (list latency for 10,000 objects, fan-out, memory) come from bench_envtest.py.
"""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest
from flokoa_envtest import APIServer

CM = "/api/v1/namespaces/default/configmaps"


@pytest.mark.slow
async def test_many_objects_and_watches() -> None:
    async with APIServer() as api:
        for i in range(3000):
            api.create_object(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i:05d}"}}
            )
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(api.url, connector=connector) as session:
            names: list[str] = []
            token = ""
            while True:
                params = {"limit": "500", **({"continue": token} if token else {})}
                async with session.get(CM, params=params) as resp:
                    page = orjson.loads(await resp.read())
                names += [i["metadata"]["name"] for i in page["items"]]
                token = page["metadata"].get("continue", "")
                if not token:
                    break
            assert names == [f"c{i:05d}" for i in range(3000)]

            rv = str(api.storage.rv)
            watches = [
                await session.get(CM, params={"watch": "1", "resourceVersion": rv})
                for _ in range(200)
            ]
            for i in range(20):
                api.patch_object("v1", "ConfigMap", f"c{i:05d}", {"data": {"n": str(i)}})

            async def count(resp: aiohttp.ClientResponse) -> int:
                seen = 0
                async with asyncio.timeout(60):
                    while seen < 20:
                        line = await resp.content.readline()
                        assert orjson.loads(line)["type"] == "MODIFIED"
                        seen += 1
                return seen

            assert await asyncio.gather(*(count(w) for w in watches)) == [20] * 200
            assert len(api.handler.watches) == 200
            for w in watches:
                w.close()
