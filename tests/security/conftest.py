"""Fixtures of the security tests: a steerable resolver and a small operator harness.

* ``HostsResolver`` — an aiohttp resolver answering from a hosts-file-like mapping that a
  test can change between lookups (DNS rebinding); names it does not know fail like NXDOMAIN.
  It stands in for DNS only: the destination policy under test checks whatever it answers.
* ``operator`` — ``async with operator(settings) as op:``: the controllers against an
  envtest API server (the root ``cluster`` fixture), with a namespace of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from flokoa_envtest.testing import Cluster, poll_until, secret_manifest

from flokoa_controller.controllers.resources import MODELPROVIDERS, MODELS
from flokoa_controller.controllers.setup import Controllers, ControllerSettings, setup_controllers
from flokoa_controller.kube.client import KubeClient
from flokoa_controller.kube.config import load_kubeconfig
from flokoa_controller.kube.errors import NotFound
from flokoa_controller.kube.resources import EVENTS, NAMESPACES, SECRETS
from flokoa_controller.runtime.manager import Manager
from flokoa_controller.runtime.options import ManagerOptions


@pytest.fixture(autouse=True)
def _hermetic(hermetic_env: None) -> None:
    """Every test here runs with the root conftest's hermetic environment."""


class HostsResolver(AbstractResolver):
    """Answers `hosts[name]` (a list of addresses, read at each lookup); records lookups."""

    def __init__(self, hosts: dict[str, list[str]] | None = None) -> None:
        self.hosts: dict[str, list[str]] = dict(hosts or {})
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The mapped addresses of `host` (OSError when unmapped)."""
        self.lookups.append(host)
        addresses = self.hosts.get(host.rstrip(".").lower())
        if not addresses:
            raise OSError(socket.EAI_NONAME, f"{host} is not in the hosts mapping")
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def hosts() -> HostsResolver:
    """An empty `HostsResolver`."""
    return HostsResolver()


@dataclass
class Operator:
    """The running controllers and the test's API client."""

    client: KubeClient
    namespace: str
    controllers: Controllers

    async def put_secret(self, name: str, data: Mapping[str, str]) -> None:
        """Create the Secret `name`."""
        await self.client.create(
            SECRETS, secret_manifest(name, self.namespace, data), self.namespace
        )

    async def put_provider(self, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Create the ModelProvider `name`."""
        body = {
            "apiVersion": "agent.flokoa.ai/v1alpha1",
            "kind": "ModelProvider",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": dict(spec),
        }
        return await self.client.create(MODELPROVIDERS, body, self.namespace)

    def condition(self, name: str, type_: str) -> Mapping[str, Any] | None:
        """Condition `type_` of the cached ModelProvider `name`."""
        obj = self.controllers.providers.store.get_by(name, self.namespace)
        for entry in ((obj or {}).get("status") or {}).get("conditions") or []:
            if entry.get("type") == type_:
                return entry  # type: ignore[no-any-return]
        return None

    async def wait_ready_reason(self, name: str, reason: str) -> Mapping[str, Any]:
        """Wait until Ready of `name` has `reason`; its Ready condition."""

        def check() -> Mapping[str, Any] | None:
            ready = self.condition(name, "Ready")
            return ready if ready is not None and ready.get("reason") == reason else None

        found: Mapping[str, Any] = await poll_until(
            check, within=20, what=f"{name} Ready {reason}", interval=0.02
        )
        return found

    async def events(self, name: str) -> list[dict[str, Any]]:
        """Every event about `name` (the recorder flushed first)."""
        await self.controllers.recorder.flush()
        items = (await self.client.list(EVENTS, self.namespace))["items"]
        return [e for e in items if e["involvedObject"]["name"] == name]


MakeOperator = Callable[[ControllerSettings], contextlib.AbstractAsyncContextManager[Operator]]


@pytest.fixture
def operator(cluster: Cluster) -> MakeOperator:
    """`async with operator(settings) as op:` — the controllers with `settings`."""

    @contextlib.asynccontextmanager
    async def start(settings: ControllerSettings) -> AsyncIterator[Operator]:
        config = load_kubeconfig(str(cluster.kubeconfig_path))
        namespace = f"sec-{uuid.uuid4().hex[:8]}"
        async with (
            KubeClient(dataclasses.replace(config, user_agent="security-test")) as client,
            KubeClient(config) as operator_client,
        ):
            await client.create(
                NAMESPACES,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            )
            options = ManagerOptions(
                namespaces=(namespace,),
                metrics_bind_address="0",
                health_probe_bind_address="0",
                install_signal_handlers=False,
                graceful_shutdown_timeout=5.0,
            )
            manager = Manager(operator_client, options)
            controllers = setup_controllers(manager, options, settings=settings)
            task = asyncio.create_task(manager.run())
            try:
                await poll_until(lambda: manager.ready or task.done(), within=30, what="caches")
                if task.done():
                    task.result()
                yield Operator(client, namespace, controllers)
            finally:
                manager.stop()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, 15)
                if cluster.api is None:  # a real cluster: leave nothing to reconcile behind
                    await _delete_namespace(client, namespace)

    return start


async def _delete_namespace(client: KubeClient, namespace: str) -> None:
    """Delete the test's objects, then its namespace, without waiting: nothing counts on
    the namespace controller (a bare kube-apiserver has none; namespaces stay Terminating,
    and an operator watching every namespace would keep reconciling what they hold)."""
    for rt in (MODELS, MODELPROVIDERS, SECRETS):
        with contextlib.suppress(NotFound):
            for item in (await client.list(rt, namespace))["items"]:
                with contextlib.suppress(NotFound):
                    await client.delete(rt, item["metadata"]["name"], namespace)
    with contextlib.suppress(NotFound):
        await client.delete(NAMESPACES, namespace)
