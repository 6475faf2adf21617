"""A controller fed by running informers against envtest: own kind and a related kind.

ConfigMaps stand in for the primary kind (each names a Secret in ``data.secret``), Secrets for
the related kind, mapped through an index, as a ModelProvider controller maps its Secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any

from flokoa_envtest import APIServer

from flokoa_controller.kube.client import KubeClient
from flokoa_controller.kube.config import load_kubeconfig
from flokoa_controller.kube.resources import CONFIGMAPS, SECRETS
from flokoa_controller.runtime.controller import Controller, Request, Result, request_for
from flokoa_controller.runtime.informer import Informer

NS = "default"


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Request] = []

    async def reconcile(self, request: Request) -> Result:
        self.seen.append(request)
        return Result()


async def eventually(predicate: Callable[[], bool], limit: float = 20) -> None:
    async with asyncio.timeout(limit):
        while not predicate():  # noqa: ASYNC110 (polling with a deadline)
            await asyncio.sleep(0.01)


def by_secret(obj: dict[str, Any]) -> list[str]:
    secret = (obj.get("data") or {}).get("secret")
    return [f"{obj['metadata']['namespace']}/{secret}"] if secret else []


async def test_secret_change_enqueues_every_referencing_object() -> None:
    async with APIServer() as api, KubeClient(load_kubeconfig(api.kubeconfig_path)) as client:
        for name, secret in (("p1", "key"), ("p2", "key"), ("p3", "other")):
            await client.create(
                CONFIGMAPS, {"metadata": {"name": name}, "data": {"secret": secret}}, NS
            )
        await client.create(SECRETS, {"metadata": {"name": "key"}, "stringData": {"k": "v1"}}, NS)
        primaries = Informer(client, CONFIGMAPS, indexers={"by-secret": by_secret})
        secrets = Informer(client, SECRETS)
        recorder = Recorder()
        ctl = Controller(f"cm-{uuid.uuid4().hex[:6]}", recorder, max_concurrent_reconciles=2)
        ctl.watch(primaries)
        ctl.watch(
            secrets,
            lambda s: [
                request_for(o)
                for o in primaries.store.by_index("by-secret", f"{NS}/{s['metadata']['name']}")
            ],
        )
        tasks = [asyncio.create_task(t) for t in (primaries.run(), secrets.run())]
        try:
            assert await primaries.wait_for_sync(10)
            assert await secrets.wait_for_sync(10)
            # Initial lists of both kinds: each primary queued once (adds coalesce).
            assert len(ctl.queue) == 3
            tasks.append(asyncio.create_task(ctl.run()))
            await eventually(lambda: len(recorder.seen) == 3)
            assert sorted(r.name for r in recorder.seen) == ["p1", "p2", "p3"]

            def names() -> set[str]:
                return {r.name for r in recorder.seen}

            recorder.seen.clear()
            await client.patch(SECRETS, "key", {"stringData": {"k": "v2"}}, NS)
            await eventually(lambda: {"p1", "p2"} <= names())
            assert "p3" not in names()  # it would have been queued in the same handler call

            recorder.seen.clear()
            await client.delete(SECRETS, "key", NS)
            await eventually(lambda: {"p1", "p2"} <= names())
            assert "p3" not in names()

            recorder.seen.clear()
            await client.delete(CONFIGMAPS, "p3", NS)
            await eventually(lambda: "p3" in names())
            assert names() == {"p3"}
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
