"""Probe and metrics endpoints: status codes, check reporting, shared or separate addresses."""

from __future__ import annotations

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from flokoa_controller.runtime.health import HealthServer


async def fetch(session: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    async with session.get(url) as resp:
        return resp.status, await resp.text(), resp.headers.get("Content-Type", "")


async def test_probes_and_metrics_on_separate_ports() -> None:
    registry = CollectorRegistry()
    Counter("demo_things", "Demo.", registry=registry).inc(3)
    server = HealthServer(("127.0.0.1", 0), ("127.0.0.1", 0), registry=registry)
    state = {"ready": False}
    server.readyz_checks["informer-sync"] = lambda: None if state["ready"] else "caches not synced"
    await server.start()
    try:
        health, metrics = server.url("health"), server.url("metrics")
        assert health is not None
        assert metrics is not None
        assert health != metrics
        async with aiohttp.ClientSession() as session:
            assert (await fetch(session, health + "/healthz"))[:2] == (200, "ok")
            assert (await fetch(session, health + "/livez"))[:2] == (200, "ok")
            status, body, _ = await fetch(session, health + "/readyz")
            assert status == 500
            assert "[-]informer-sync failed: caches not synced" in body
            state["ready"] = True
            assert (await fetch(session, health + "/readyz"))[:2] == (200, "ok")
            status, body, _ = await fetch(session, health + "/readyz?verbose")
            assert status == 200
            assert "[+]informer-sync ok" in body
            status, body, ctype = await fetch(session, metrics + "/metrics")
            assert status == 200
            assert "demo_things_total 3.0" in body
            assert ctype.startswith("text/plain")
            assert (await fetch(session, metrics + "/healthz"))[0] == 404
    finally:
        await server.stop()
    assert server.url("health") is None


async def test_metrics_disabled_and_a_raising_check_fails_the_probe() -> None:
    server = HealthServer(("127.0.0.1", 0), None)
    server.healthz_checks["broken"] = lambda: 1 / 0  # type: ignore[return-value,func-returns-value]
    await server.start()
    try:
        url = server.url("health")
        assert url is not None
        assert server.url("metrics") is None
        async with aiohttp.ClientSession() as session:
            status, body, _ = await fetch(session, url + "/healthz")
            assert status == 500
            assert "[-]broken failed: check raised ZeroDivisionError" in body
            assert (await fetch(session, url + "/metrics"))[0] == 404
    finally:
        await server.stop()
