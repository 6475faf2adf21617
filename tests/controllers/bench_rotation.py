"""Benchmark: Secret rotation → status latency, and provider probes per second.

Runs envtest, one fake OpenAI-compatible endpoint and the operator (Manager +
``setup_controllers``) in one process, then:

1. creates ``--providers`` ModelProviders, each with its own Secret, and times until all are
   Ready (first probes);
2. rotates one Secret at a time (``--rotations`` times, round robin) and measures, for each,
   the time from the Secret update to the watch event carrying the provider's new
   ``secretHash`` (p50/p90/p99/max);
3. rotates every Secret at once and measures how long until every provider shows its new
   hash, i.e. probes per second under a burst (with the per-host probe bound).

Usage:
    .venv/bin/python tests/controllers/bench_rotation.py [--providers 200] [--rotations 200]
        [--probe-concurrency-per-host 8] [--workers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from typing import Any

from flokoa_envtest import APIServer
from flokoa_envtest.dev import DEV_ALLOWED_DESTINATIONS
from flokoa_envtest.fakes import FakeOpenAI
from flokoa_envtest.testing import secret_manifest

from flokoa_controller.api.crdgen import crd
from flokoa_controller.api.meta import MODEL, MODEL_PROVIDER
from flokoa_controller.api.model import Model
from flokoa_controller.api.modelprovider import ModelProvider
from flokoa_controller.controllers.resources import MODELPROVIDERS
from flokoa_controller.controllers.setup import ControllerSettings, setup_controllers
from flokoa_controller.kube.client import KubeClient
from flokoa_controller.kube.config import load_kubeconfig
from flokoa_controller.kube.resources import NAMESPACES, SECRETS
from flokoa_controller.runtime.manager import Manager
from flokoa_controller.runtime.options import ManagerOptions

NS = "bench"


def _secret(name: str, key: str, rv: str | None = None) -> dict[str, Any]:
    return secret_manifest(
        name, NS, {"api-key": key}, metadata={"resourceVersion": rv} if rv else None
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class HashWatch:
    """Watches ModelProviders; records when each one's secretHash last changed."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.hashes: dict[str, str] = {}
        self.changed: dict[str, float] = {}
        self.event = asyncio.Event()

    async def run(self) -> None:
        listing = await self.client.list(MODELPROVIDERS, NS)
        rv = listing["metadata"]["resourceVersion"]
        while True:
            async for ev in self.client.watch(MODELPROVIDERS, NS, resource_version=rv):
                obj = ev.object
                rv = obj.get("metadata", {}).get("resourceVersion", rv)
                name = obj.get("metadata", {}).get("name")
                new = (obj.get("status") or {}).get("secretHash")
                ready = (obj.get("status") or {}).get("ready")
                if name and new and ready and self.hashes.get(name) != new:
                    self.hashes[name] = new
                    self.changed[name] = time.perf_counter()
                    self.event.set()

    async def wait_changed(self, name: str, since: float, within: float = 30.0) -> float:
        deadline = time.perf_counter() + within
        while self.changed.get(name, 0.0) < since:
            if time.perf_counter() > deadline:
                raise TimeoutError(name)
            self.event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event.wait(), 1.0)
        return self.changed[name] - since


async def main(args: argparse.Namespace) -> None:
    crds = [crd(MODEL_PROVIDER, ModelProvider), crd(MODEL, Model)]
    async with APIServer(crds=crds) as api, FakeOpenAI() as fake:
        for c in crds:
            await api.wait_established(c["metadata"]["name"])
        config = load_kubeconfig(str(api.kubeconfig_path))
        async with KubeClient(config) as client, KubeClient(config) as operator_client:
            await client.create(
                NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
            )
            options = ManagerOptions(
                namespaces=(NS,),
                metrics_bind_address="0",
                health_probe_bind_address="0",
                install_signal_handlers=False,
                max_concurrent_reconciles=args.workers,
            )
            manager = Manager(operator_client, options)
            setup_controllers(
                manager,
                options,
                settings=ControllerSettings(
                    probe_concurrency_per_host=args.probe_concurrency_per_host,
                    allow_destinations=DEV_ALLOWED_DESTINATIONS,  # the fakes are on loopback
                ),
            )
            task = asyncio.create_task(manager.run())
            watch = HashWatch(client)
            watcher = asyncio.create_task(watch.run())
            names = [f"p{i:04d}" for i in range(args.providers)]

            start = time.perf_counter()
            for name in names:
                await client.create(SECRETS, _secret(name, fake.api_key), NS)
                await client.create(
                    MODELPROVIDERS,
                    {
                        "apiVersion": MODEL_PROVIDER.api_version,
                        "kind": MODEL_PROVIDER.kind,
                        "metadata": {"name": name, "namespace": NS},
                        "spec": {
                            "apiKeySecretRef": {"name": name},
                            "openai": {"baseURL": fake.base_url},
                        },
                    },
                    NS,
                )
            for name in names:
                await watch.wait_changed(name, start, within=120)
            created = time.perf_counter() - start
            print(f"{len(names)} providers created and Ready in {created:.2f}s")

            # sequential rotations: update → status with the new hash
            latencies = []
            for i in range(args.rotations):
                name = names[i % len(names)]
                key = fake.keys.new()
                current = await client.get(SECRETS, name, NS)
                body = _secret(name, key, current["metadata"]["resourceVersion"])
                t0 = time.perf_counter()
                await client.update(SECRETS, body, NS)
                latencies.append(await watch.wait_changed(name, t0))
            ms = [x * 1000 for x in latencies]
            print(
                f"rotation → status latency over {len(ms)} rotations (ms): "
                f"p50={_pct(ms, 0.5):.1f} p90={_pct(ms, 0.9):.1f} p99={_pct(ms, 0.99):.1f} "
                f"max={max(ms):.1f} mean={statistics.mean(ms):.1f}"
            )

            # burst: rotate everything at once
            requests_before = len(fake.requests)
            bodies = []
            for name in names:
                current = await client.get(SECRETS, name, NS)
                bodies.append(
                    _secret(name, fake.keys.new(), current["metadata"]["resourceVersion"])
                )
            t0 = time.perf_counter()
            await asyncio.gather(*(client.update(SECRETS, b, NS) for b in bodies))
            burst = [await watch.wait_changed(name, t0, within=300) for name in names]
            elapsed = max(burst)
            probes = len(fake.requests) - requests_before
            bms = [x * 1000 for x in burst]
            print(
                f"burst of {len(names)} rotations: all statuses updated in {elapsed:.2f}s, "
                f"{probes} probes → {probes / elapsed:.0f} probes/s; "
                f"latency p50={_pct(bms, 0.5):.0f}ms p99={_pct(bms, 0.99):.0f}ms"
            )
            watcher.cancel()
            manager.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await task


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--providers", type=int, default=200)
    parser.add_argument("--rotations", type=int, default=200)
    parser.add_argument("--probe-concurrency-per-host", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    asyncio.run(main(parser.parse_args()))
