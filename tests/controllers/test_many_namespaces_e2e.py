"""End to end: ``--namespace`` given 100 times (300 watches: three informers per namespace).

Each open watch holds one HTTP/1.1 connection for minutes. With one shared pool of 100
connections, from about 34 namespaces the watches took every connection and Lease renewals,
lists and status writes waited for one forever (lost leadership, CacheSyncTimeout). Watches
and Leases now have pools of their own (``kube/client.py``): the caches sync, the Lease
renews and status writes go through.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from flokoa_envtest.fakes import FakeProviders
from flokoa_envtest.testing import Cluster, poll_until, secret_manifest

from flokoa_controller.controllers.resources import MODELPROVIDERS
from flokoa_controller.controllers.setup import ControllerSettings, setup_controllers
from flokoa_controller.kube.client import KubeClient
from flokoa_controller.kube.config import load_kubeconfig
from flokoa_controller.kube.errors import NotFound
from flokoa_controller.kube.resources import LEASES, NAMESPACES, SECRETS
from flokoa_controller.runtime.manager import Manager
from flokoa_controller.runtime.options import ManagerOptions

NAMESPACES_WATCHED = 100
LEASE = "flokoa-many-namespaces"


async def test_a_hundred_namespaces_sync_renew_and_write(cluster: Cluster) -> None:
    config = load_kubeconfig(str(cluster.kubeconfig_path))
    prefix = f"many-{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}-{i:03d}" for i in range(NAMESPACES_WATCHED)]
    async with FakeProviders() as fakes, KubeClient(config) as client:
        for ns in names:
            await client.create(
                NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            )
        options = ManagerOptions(
            namespaces=tuple(names),
            leader_elect=True,
            leader_election_id=LEASE,
            leader_election_namespace=names[0],
            lease_duration=3.0,
            renew_deadline=2.0,
            retry_period=0.2,
            metrics_bind_address="0",
            health_probe_bind_address="0",
            install_signal_handlers=False,
            graceful_shutdown_timeout=5.0,
            cache_sync_timeout=60.0,
        )
        async with KubeClient(config) as operator_client:
            manager = Manager(operator_client, options)
            setup_controllers(
                manager, options, settings=ControllerSettings(allow_destinations=("127.0.0.0/8",))
            )
            task = asyncio.create_task(manager.run())
            try:
                await poll_until(
                    lambda: manager.ready or task.done(), within=60, what="caches synced"
                )
                if task.done():
                    task.result()
                await poll_until(
                    lambda: manager.is_leader or task.done(), within=30, what="leadership"
                )
                # every watch is open and holds a connection of the watch pool
                watch_pool = operator_client.watch_session.connector
                assert watch_pool is not None
                await poll_until(
                    lambda: len(watch_pool._acquired) >= 3 * NAMESPACES_WATCHED,  # type: ignore[attr-defined]
                    within=30,
                    what="300 watches open",
                )

                # the Lease keeps being renewed
                first = (await client.get(LEASES, LEASE, names[0]))["spec"]["renewTime"]

                async def renewed() -> bool:
                    lease = await client.get(LEASES, LEASE, names[0])
                    return bool(lease["spec"]["renewTime"] != first)

                await poll_until(renewed, within=20, what="a Lease renewal")

                # status writes work in namespaces at both ends of the list
                for ns in (names[0], names[50], names[-1]):
                    await client.create(
                        SECRETS, secret_manifest("key", ns, {"api-key": fakes.openai.api_key}), ns
                    )
                    await client.create(
                        MODELPROVIDERS,
                        {
                            "apiVersion": "agent.flokoa.ai/v1alpha1",
                            "kind": "ModelProvider",
                            "metadata": {"name": "p", "namespace": ns},
                            "spec": {
                                "apiKeySecretRef": {"name": "key"},
                                "openai": {"baseURL": fakes.openai.base_url},
                            },
                        },
                        ns,
                    )
                for ns in (names[0], names[50], names[-1]):

                    async def ready(ns: str = ns) -> bool:
                        obj = await client.get(MODELPROVIDERS, "p", ns)
                        return (obj.get("status") or {}).get("ready") is True

                    await poll_until(ready, within=30, what=f"provider in {ns} ready")
                assert manager.is_leader
                assert not task.done()
            finally:
                manager.stop()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, 20)
                if cluster.api is None:
                    # what the test made goes first: nothing counts on the namespace
                    # controller (a bare kube-apiserver has none; namespaces stay Terminating)
                    for ns in (names[0], names[50], names[-1]):
                        for rt, name in ((MODELPROVIDERS, "p"), (SECRETS, "key")):
                            with contextlib.suppress(NotFound):
                                await client.delete(rt, name, ns)
                    for ns in names:
                        await client.delete(NAMESPACES, ns)
