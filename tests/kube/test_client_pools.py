"""Watches and Leases do not take connections from the pool of other requests.

Each open watch holds one connection for minutes. With a single pool, ``pool_limit`` open
watches left nothing for GETs, writes and Lease renewals: they waited for a connection
until their timeout (issue 12). Watches now have a pool of their own, Leases another.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime

from flokoa_envtest.testing import Cluster

from flokoa_controller.kube.client import ClientOptions, KubeClient
from flokoa_controller.kube.config import load_kubeconfig
from flokoa_controller.kube.errors import NotFound
from flokoa_controller.kube.resources import CONFIGMAPS, LEASES, NAMESPACES


async def test_open_watches_leave_the_main_and_lease_pools_free(cluster: Cluster) -> None:
    config = load_kubeconfig(str(cluster.kubeconfig_path))
    ns = f"pools-{uuid.uuid4().hex[:6]}"
    options = ClientOptions(pool_limit=2, lease_pool_limit=1, request_timeout=10)
    async with KubeClient(config, options) as client:
        await client.create(
            NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        )
        # from a listed resourceVersion, as a reflector: kube-apiserver v1.32 (WatchList on)
        # turns a watch without one into a streaming list, which fails over etcd 3.4
        listed = (await client.list(CONFIGMAPS, ns))["metadata"]["resourceVersion"]
        watches = [
            client.watch(CONFIGMAPS, ns, resource_version=listed, timeout_seconds=60)
            for _ in range(5)
        ]
        opened = [asyncio.ensure_future(w.__anext__()) for w in watches]
        try:
            watch_pool = client.watch_session.connector
            assert watch_pool is not None

            async def all_open() -> None:
                while len(watch_pool._acquired) < 5:  # type: ignore[attr-defined]  # noqa: ASYNC110
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(all_open(), 10)
            # more watches than the main pool has connections, yet GETs and writes pass
            await client.create(
                CONFIGMAPS,
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
                ns,
            )
            assert (await client.get(CONFIGMAPS, "c", ns))["metadata"]["name"] == "c"
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": "l", "namespace": ns},
                "spec": {"holderIdentity": "me", "renewTime": now, "leaseDurationSeconds": 15},
            }
            await client.create(LEASES, lease, ns)
            main_pool = client.session.connector
            lease_pool = client.lease_session.connector
            assert main_pool is not None
            assert lease_pool is not None
            # the Lease request went through the Lease pool, not the main one
            assert len(lease_pool._conns) == 1  # type: ignore[attr-defined]
            assert len(watch_pool._acquired) == 5  # type: ignore[attr-defined]
        finally:
            for fut in opened:
                fut.cancel()
            for w in watches:
                with contextlib.suppress(Exception):
                    await w.aclose()
            # leave a real cluster clean (objects first: no namespace controller is assumed)
            for rt, name in ((CONFIGMAPS, "c"), (LEASES, "l")):
                with contextlib.suppress(NotFound):
                    await client.delete(rt, name, ns)
            await client.delete(NAMESPACES, ns)
