"""End to end: only the leader exports the readiness gauges, so ``sum`` across replicas counts
every object once (standbys hold the same caches, and used to report them too)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime

from flokoa_envtest.testing import Cluster, poll_until
from prometheus_client import REGISTRY

from flokoa_controller.controllers.setup import ControllerSettings, setup_controllers
from flokoa_controller.kube.client import KubeClient
from flokoa_controller.kube.config import load_kubeconfig
from flokoa_controller.kube.resources import LEASES, NAMESPACES
from flokoa_controller.runtime.manager import Manager
from flokoa_controller.runtime.options import ManagerOptions

LEASE = "flokoa-gauge-test"


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"provider": "openai", "ready": "false"})


async def test_readiness_gauges_come_from_the_leader_only(cluster: Cluster) -> None:
    config = load_kubeconfig(str(cluster.kubeconfig_path))
    ns = f"gauge-{uuid.uuid4().hex[:8]}"
    async with KubeClient(config) as client:
        await client.create(
            NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        )
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        await client.create(
            LEASES,
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": LEASE, "namespace": ns},
                "spec": {
                    "holderIdentity": "another-replica",
                    "leaseDurationSeconds": 3600,
                    "acquireTime": now,
                    "renewTime": now,
                },
            },
            ns,
        )
        options = ManagerOptions(
            namespaces=(ns,),
            leader_elect=True,
            leader_election_id=LEASE,
            leader_election_namespace=ns,
            lease_duration=2.0,
            renew_deadline=1.5,
            retry_period=0.1,
            metrics_bind_address="0",
            health_probe_bind_address="0",
            install_signal_handlers=False,
            graceful_shutdown_timeout=5.0,
        )
        manager = Manager(client, options)
        setup_controllers(manager, options, settings=ControllerSettings())
        task = asyncio.create_task(manager.run())
        try:
            # The gauges are registered before the first election attempt (same start-up).
            await poll_until(
                lambda: (
                    manager.elector is not None
                    and manager.elector.observed_holder == "another-replica"
                ),
                what="a standby that saw the other holder",
                interval=0.02,
            )
            assert not manager.is_leader
            assert gauge("flokoa_modelproviders") is None, "a standby exported the gauge"
            assert gauge("flokoa_models") is None

            await client.delete(LEASES, LEASE, ns)  # the other replica is gone
            await poll_until(lambda: manager.is_leader, what="leadership", interval=0.02)
            assert gauge("flokoa_modelproviders") == 0
            assert gauge("flokoa_models") == 0
        finally:
            manager.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 15)
            if cluster.api is None:
                await client.delete(NAMESPACES, ns)
        assert gauge("flokoa_modelproviders") is None  # unregistered at shutdown
