"""A canary Secret value never reaches the cache, the handlers, the logs or /metrics.

The Secrets informer is made as ``setup_controllers`` makes it: with the controllers' digest
(``controllers/secret_digest.py``) as its transform, under the runtime's payload floor.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest
from flokoa_envtest.server import APIServer

from flokoa_controller.controllers.secret_digest import secret_to_digest
from flokoa_controller.kube.client import KubeClient
from flokoa_controller.kube.config import load_kubeconfig
from flokoa_controller.kube.resources import SECRETS
from flokoa_controller.runtime.controller import Request, Result
from flokoa_controller.runtime.informer import DeletedFinalStateUnknown, EventHandler
from flokoa_controller.runtime.logging import configure_logging
from flokoa_controller.runtime.manager import Manager
from flokoa_controller.runtime.options import ManagerOptions
from flokoa_controller.runtime.transform import LAST_APPLIED_ANNOTATION

pytestmark = pytest.mark.timeout(60)


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging("json", "debug", stream=buffer)
    yield buffer
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def forms(value: str) -> list[str]:
    """Every spelling of a secret value that would betray it."""
    return [value, base64.b64encode(value.encode()).decode()]


class Chatty:
    """A reconciler that reads the cached Secret and logs what it may log."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        self.seen: list[str] = []

    async def reconcile(self, request: Request) -> Result:
        informer = self.manager.informer(SECRETS)
        obj = informer.store.get_by(request.name, request.namespace)
        digest = obj["digest"] if obj else "absent"
        logging.getLogger("test.chatty").debug("secret digest %s", digest, extra={"keys": obj})
        self.seen.append(digest)
        return Result()


async def test_canary_never_leaves_the_api_server(captured_logs: io.StringIO) -> None:
    canary = "sk-canary-" + secrets.token_hex(16)
    rotated = "sk-rotated-" + secrets.token_hex(16)
    applied = {"apiVersion": "v1", "kind": "Secret", "stringData": {"apiKey": canary}}
    async with (
        APIServer(bookmark_interval=0.2) as api,
        KubeClient(load_kubeconfig(api.kubeconfig_path)) as client,
    ):
        await client.create(
            SECRETS,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "provider-creds",
                    "namespace": "default",
                    "annotations": {LAST_APPLIED_ANNOTATION: json.dumps(applied)},
                },
                "stringData": {"apiKey": canary},
            },
            namespace="default",
        )
        raw = await client.get(SECRETS, "provider-creds", "default")
        assert raw["data"]["apiKey"] == forms(canary)[1]  # the server holds it, as it should

        handled: list[Any] = []
        manager = Manager(
            client,
            ManagerOptions(
                health_probe_bind_address="127.0.0.1:0",
                metrics_bind_address="127.0.0.1:0",
                install_signal_handlers=False,
            ),
        )
        informer = manager.informer(SECRETS, transform=secret_to_digest)
        informer.add_handler(
            EventHandler(
                on_add=lambda obj, _: handled.append(obj),
                on_update=lambda old, new: handled.extend([old, new]),
                on_delete=lambda obj: handled.append(
                    obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
                ),
            )
        )
        reconciler = Chatty(manager)
        manager.new_controller("chatty", reconciler).watch(informer)
        task = asyncio.create_task(manager.run())
        try:
            await eventually(lambda: manager.ready and len(reconciler.seen) >= 1)
            await client.patch(
                SECRETS,
                "provider-creds",
                {"data": {"apiKey": forms(rotated)[1]}},
                namespace="default",
            )
            rotated_digest = hashlib.sha256(rotated.encode()).hexdigest()
            await eventually(
                lambda: (
                    (informer.store.get("default/provider-creds") or {})
                    .get("digests", {})
                    .get("apiKey")
                    == rotated_digest
                )
            )
            cached_store = json.dumps(informer.store.list())
            metrics_url = manager.server.url("metrics")
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{metrics_url}/metrics") as resp,
            ):
                metrics_text = await resp.text()
            await client.delete(SECRETS, "provider-creds", "default")
            await eventually(lambda: "default/provider-creds" not in informer.store)
            await eventually(lambda: reconciler.seen[-1:] == ["absent"])
        finally:
            manager.stop()
            await asyncio.wait_for(task, 15)

    logs = captured_logs.getvalue()
    assert "secret digest" in logs  # the reconciler did log (about the cached object)
    assert len(handled) >= 4
    assert "managedFields" not in json.dumps(handled)
    for text, where in (
        (cached_store, "cache"),
        (json.dumps(handled), "handlers"),
        (logs, "logs"),
        (metrics_text, "metrics"),
    ):
        for secret in (canary, rotated):
            for spelling in forms(secret):
                assert spelling not in text, f"secret value leaked into the {where}"
