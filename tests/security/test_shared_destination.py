"""One namespace must not hold a destination that other namespaces probe too.

`ProbeHTTP` bounds requests in flight per namespace and destination (`scheme://host:port`,
`--probe-concurrency-per-host`, default 8). Were the bound per destination only, a tenant
whose 8 providers (the per-namespace probe cap) name a path of a shared gateway that never
answers (a long-poll route, an upstream that hangs) would hold every slot of that gateway
for its probe timeout, and each other namespace's probe of it would wait behind them.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from flokoa_envtest.testing import poll_until

from flokoa_controller.providers import ProbeHTTP, ProbeTarget, probe_provider
from flokoa_controller.providers.destinations import DestinationPolicy


async def test_slow_path_of_one_tenant_does_not_hold_a_shared_gateway() -> None:
    hang = asyncio.Event()
    hanging: list[web.Request] = []

    async def slow(request: web.Request) -> web.Response:
        hanging.append(request)
        await hang.wait()
        return web.json_response({"data": []})

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    app = web.Application()
    app.router.add_get("/hang/models", slow)
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    gateway = f"http://127.0.0.1:{port}"
    policy = DestinationPolicy.build(allow="127.0.0.0/8")
    try:
        async with ProbeHTTP(policy=policy, max_per_host=8) as http:
            hostile = [
                asyncio.create_task(
                    probe_provider(
                        ProbeTarget(
                            kind="openai",
                            base_url=f"{gateway}/hang",
                            api_key="sk-hostile-0123456789",
                            timeout=10,
                            namespace="hostile",
                        ),
                        http,
                    )
                )
                for _ in range(8)  # the per-namespace cap
            ]
            await poll_until(lambda: len(hanging) == 8 or None, within=10, what="8 hanging")
            victim = asyncio.create_task(
                probe_provider(
                    ProbeTarget(
                        kind="openai",
                        base_url=f"{gateway}/v1",
                        api_key="sk-victim-0123456789",
                        timeout=10,
                        namespace="victim",
                    ),
                    http,
                )
            )
            done, _ = await asyncio.wait([victim, *hostile], return_when=asyncio.FIRST_COMPLETED)
            first = victim in done
            hang.set()
            await asyncio.gather(victim, *hostile)
    finally:
        hang.set()
        await runner.cleanup()
    assert first, "the victim's probe waited for the hostile probes' timeouts"
    assert victim.result().reason == "ProbeSucceeded", victim.result().message
