"""KubeClient against envtest: CRUD, patches, paging, watch, error mapping, and retries
under envtest's injected faults (checked from its audit log)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from flokoa_envtest import APIServer

from flokoa_controller.kube.client import ClientOptions, KubeClient
from flokoa_controller.kube.config import load_kubeconfig
from flokoa_controller.kube.errors import (
    AlreadyExists,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServerError,
    Unauthorized,
    error_from_response,
)
from flokoa_controller.kube.resources import CONFIGMAPS, NAMESPACES
from flokoa_controller.kube.retry import RetryPolicy
from flokoa_controller.kube.tokens import StaticTokenSource
from flokoa_controller.kube.watch import WatchEvent

NS = "kube-tests"

FAST_RETRIES = RetryPolicy(max_attempts=5, initial_backoff=0.01, max_backoff=0.05)


@pytest.fixture
async def api() -> AsyncIterator[Any]:
    async with APIServer() as server:
        yield server


@pytest.fixture
async def client(api: Any) -> AsyncIterator[KubeClient]:
    config = load_kubeconfig(api.kubeconfig_path)
    async with KubeClient(config, ClientOptions(retry=FAST_RETRIES)) as c:
        with contextlib.suppress(AlreadyExists):
            await c.create(NAMESPACES, {"metadata": {"name": NS}})
        yield c


def cm(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS},
        "data": dict(data),
    }


async def test_crud_patches_and_errors(api: Any, client: KubeClient) -> None:
    created = await client.create(CONFIGMAPS, cm("a", k="1"))
    assert created["metadata"]["resourceVersion"]
    with pytest.raises(AlreadyExists):
        await client.create(CONFIGMAPS, cm("a"))
    got = await client.get(CONFIGMAPS, "a", NS)
    assert got["data"] == {"k": "1"}

    got["data"]["k"] = "2"
    updated = await client.update(CONFIGMAPS, got)
    stale = dict(got, data={"k": "3"})  # still carries the old resourceVersion
    with pytest.raises(Conflict):
        await client.update(CONFIGMAPS, stale)

    merged = await client.patch(CONFIGMAPS, "a", {"data": {"m": "x"}}, NS)
    assert merged["data"] == {"k": "2", "m": "x"}
    jsonp = await client.patch(
        CONFIGMAPS, "a", [{"op": "remove", "path": "/data/m"}], NS, patch_type="json"
    )
    assert jsonp["data"] == {"k": "2"}
    smp = await client.patch(CONFIGMAPS, "a", {"data": {"s": "y"}}, NS, patch_type="strategic")
    assert smp["data"] == {"k": "2", "s": "y"}
    assert int(smp["metadata"]["resourceVersion"]) > int(updated["metadata"]["resourceVersion"])

    dry = await client.patch(CONFIGMAPS, "a", {"data": {"d": "1"}}, NS, dry_run=True)
    assert dry["data"]["d"] == "1"
    assert "d" not in (await client.get(CONFIGMAPS, "a", NS))["data"]

    with pytest.raises(Invalid):
        await client.create(CONFIGMAPS, cm("Not_A_Valid_Name"))
    await client.delete(CONFIGMAPS, "a", NS)
    with pytest.raises(NotFound):
        await client.get(CONFIGMAPS, "a", NS)
    with pytest.raises(NotFound):
        await client.delete(CONFIGMAPS, "a", NS)

    patches = api.audit.filter(verb="patch", resource="configmaps")
    assert [e.content_type for e in patches][:3] == [
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
    ]
    writes = api.audit.writes(resource="configmaps")
    assert all(
        e.query.get("fieldManager") == "flokoa-controller" for e in writes if e.verb != "delete"
    )
    assert all(e.user_agent.startswith("flokoa-controller/") for e in writes)


async def test_list_all_pages(api: Any, client: KubeClient) -> None:
    for i in range(25):
        await client.create(CONFIGMAPS, cm(f"p-{i:02d}"))
    api.audit.clear()
    full = await client.list_all(CONFIGMAPS, NS, page_size=10)
    assert [o["metadata"]["name"] for o in full["items"]] == [f"p-{i:02d}" for i in range(25)]
    assert full["metadata"]["resourceVersion"]
    assert "continue" not in full["metadata"]
    lists = api.audit.filter(verb="list", resource="configmaps")
    assert [e.query.get("limit") for e in lists] == ["10", "10", "10"]
    assert [bool(e.query.get("continue")) for e in lists] == [False, True, True]
    one = await client.list(CONFIGMAPS, NS, limit=10)
    assert len(one["items"]) == 10
    assert one["metadata"]["continue"]
    assert one["metadata"]["remainingItemCount"] == 15


async def test_watch_events_and_clean_end(client: KubeClient) -> None:
    listed = await client.list(CONFIGMAPS, NS)
    rv = listed["metadata"]["resourceVersion"]
    events: list[WatchEvent] = []

    async def consume() -> None:
        async for event in client.watch(CONFIGMAPS, NS, resource_version=rv, timeout_seconds=30):
            if event.type != "BOOKMARK":
                events.append(event)
            if event.type == "DELETED":
                return

    task = asyncio.create_task(consume())
    await client.create(CONFIGMAPS, cm("w", k="1"))
    await client.patch(CONFIGMAPS, "w", {"data": {"k": "2"}}, NS)
    await client.delete(CONFIGMAPS, "w", NS)
    await asyncio.wait_for(task, timeout=10)
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
        ("ADDED", "w"),
        ("MODIFIED", "w"),
        ("DELETED", "w"),
    ]
    assert events[1].object["data"] == {"k": "2"}


async def test_watch_expired_resume_is_an_error_event(api: Any, client: KubeClient) -> None:
    rv = (await client.list(CONFIGMAPS, NS))["metadata"]["resourceVersion"]
    api.faults.expire_watch_resumes = 1
    async with contextlib.aclosing(client.watch(CONFIGMAPS, NS, resource_version=rv)) as s:
        first = await asyncio.wait_for(anext(s), timeout=10)
    assert first.type == "ERROR"
    assert isinstance(error_from_response(0, first.object), Gone)


async def test_injected_5xx_retried_for_get_not_for_create(api: Any, client: KubeClient) -> None:
    await client.create(CONFIGMAPS, cm("r"))
    api.audit.clear()
    api.faults.fail_next(2, code=503, retry_after=None)
    assert (await client.get(CONFIGMAPS, "r", NS))["metadata"]["name"] == "r"
    assert [e.code for e in api.audit.filter(verb="get", resource="configmaps")] == [503, 503, 200]

    api.faults.fail_next(1, code=500, retry_after=None)
    with pytest.raises(ServerError):
        await client.create(CONFIGMAPS, cm("r2"))
    assert [e.code for e in api.audit.filter(verb="create", resource="configmaps")] == [500]

    api.faults.fail_next(1, code=429, retry_after=0)
    await client.create(CONFIGMAPS, cm("r3"))
    assert [e.code for e in api.audit.filter(verb="create", resource="configmaps")] == [
        500,
        429,
        201,
    ]


async def test_outage_is_ridden_out_by_retries(api: Any) -> None:
    config = load_kubeconfig(api.kubeconfig_path)
    patient = RetryPolicy(max_attempts=200, max_elapsed=30, initial_backoff=0.02, max_backoff=0.05)
    async with KubeClient(config, ClientOptions(retry=patient)) as c:
        await c.create(NAMESPACES, {"metadata": {"name": "outage"}})
        outage = api.faults.start_outage(0.5)
        try:
            got = await c.get(NAMESPACES, "outage")  # refused, retried until back
        finally:
            await outage
        assert got["metadata"]["name"] == "outage"
    async with KubeClient(config, ClientOptions(retry=RetryPolicy(max_attempts=1))) as c:
        outage = api.faults.start_outage(0.5)
        try:
            with pytest.raises(ConnectionFailed):
                await c.get(NAMESPACES, "outage")
        finally:
            await outage


class WritesBetweenPages(KubeClient):
    """A client whose first list page is followed by writes, so that the continue token
    falls out of a short watch history (as when etcd compacts during a slow list)."""

    async def list(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        page = await super().list(*args, **kwargs)
        if kwargs.get("limit") and not kwargs.get("continue_token"):
            for i in range(10):
                await self.create(CONFIGMAPS, cm(f"late-{i}"))
        return page


async def test_list_all_falls_back_to_a_full_list_when_continue_expires() -> None:
    async with APIServer(watch_history=4) as api:
        config = load_kubeconfig(api.kubeconfig_path)
        async with WritesBetweenPages(config, ClientOptions(retry=FAST_RETRIES)) as c:
            await c.create(NAMESPACES, {"metadata": {"name": NS}})
            for i in range(25):
                await c.create(CONFIGMAPS, cm(f"p-{i:02d}"))
            api.audit.clear()
            full = await c.list_all(CONFIGMAPS, NS, page_size=10)
        lists = api.audit.filter(verb="list", resource="configmaps")
        assert [(e.code, e.query.get("limit"), bool(e.query.get("continue"))) for e in lists] == [
            (200, "10", False),
            (410, "10", True),
            (200, None, False),
        ]
        assert len(full["items"]) == 35


async def test_tls_and_bearer_token_from_envtest_kubeconfig() -> None:
    async with APIServer(tls=True) as api:
        config = load_kubeconfig(api.kubeconfig_path)
        assert config.server.startswith("https://")
        async with KubeClient(config) as c:
            assert (await c.get(NAMESPACES, "default"))["metadata"]["name"] == "default"
        wrong = dataclasses.replace(config, token_source=StaticTokenSource("wrong"))
        async with KubeClient(wrong) as c:
            with pytest.raises(Unauthorized):
                await c.get(NAMESPACES, "default")
        anonymous = dataclasses.replace(config, token_source=None)
        async with KubeClient(anonymous) as c:
            with pytest.raises((Unauthorized, Forbidden)):
                await c.get(NAMESPACES, "default")
