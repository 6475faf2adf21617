"""Each fault knob does what it says, observed from the client side."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from flokoa_envtest import APIServer
from flokoa_envtest.testing import RawClient
from kubernetes import client, config
from kubernetes.client.rest import ApiException

CM = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
async def api() -> AsyncIterator[APIServer]:
    async with APIServer(seed=7, bookmark_interval=0.05) as server:
        yield server


@pytest.fixture
async def http(api: APIServer) -> AsyncIterator[RawClient]:
    async with RawClient(api.url) as c:
        yield c


async def test_failures_with_codes_and_retry_after(api: APIServer, http: RawClient) -> None:
    api.faults.fail_next(2, code=429, retry_after=3)
    first = await http.get(CM)
    assert (first.status, first.body["reason"], first.headers["Retry-After"]) == (
        429, "TooManyRequests", "3"
    )  # fmt: skip
    assert (await http.get(CM)).status == 429
    assert (await http.get(CM)).status == 200
    api.faults.error_rate, api.faults.error_code, api.faults.retry_after = 1.0, 503, None
    down = await http.get(CM)
    assert (down.status, down.body["reason"]) == (503, "ServiceUnavailable")
    assert "Retry-After" not in down.headers
    assert (await http.get("/healthz")).status == 200  # health is never failed
    api.faults.error_rate, api.faults.error_code = 0.5, 500
    codes = [(await http.get(CM)).status for _ in range(40)]
    assert {200, 500} == set(codes)
    api.faults.error_verbs = frozenset({"create"})
    api.faults.error_rate = 1.0
    assert (await http.get(CM)).status == 200
    made = await http.request("POST", CM, {"metadata": {"name": "x"}})
    assert made.status == 500
    assert [e.code for e in api.audit.writes()] == [500]


async def test_failures_seen_by_the_kubernetes_client(api: APIServer) -> None:
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(api.kubeconfig_path)))
    api.faults.fail_next(1, code=503, retry_after=None)
    with pytest.raises(ApiException) as exc:
        await asyncio.to_thread(core.list_namespaced_config_map, "default")
    assert exc.value.status == 503
    # with Retry-After, urllib3 (under the kubernetes client) waits and retries by itself
    api.audit.clear()
    api.faults.fail_next(1, code=429, retry_after=0)
    listed = await asyncio.to_thread(core.list_namespaced_config_map, "default")
    assert listed.items == []
    assert [e.code for e in api.audit.filter(verb="list")] == [429, 200]


async def test_latency_delays_every_request(api: APIServer, http: RawClient) -> None:
    loop = asyncio.get_running_loop()
    api.faults.latency = 0.2
    started = loop.time()
    assert (await http.get(CM)).status == 200
    assert loop.time() - started >= 0.2


async def test_drop_watches_resets_open_connections(api: APIServer, http: RawClient) -> None:
    w = await http.watch(CM, resourceVersion=str(api.storage.rv))
    api.create_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    assert (await w.next()) is not None
    assert api.faults.drop_watches() == 1

    async def drain() -> None:
        while await w.next() is not None:
            pass
        raise AssertionError("the watch ended cleanly; a dropped one must end in an error")

    with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        await drain()
    assert api.handler.watches == set()


async def test_watch_max_seconds_ends_every_watch(api: APIServer, http: RawClient) -> None:
    api.faults.watch_max_seconds = 0.3
    w = await http.watch(CM, resourceVersion=str(api.storage.rv))
    assert await w.next(within=10) is None  # ended cleanly, no timeoutSeconds asked


async def test_expire_watch_resumes(api: APIServer, http: RawClient) -> None:
    api.faults.expire_watch_resumes = 1
    rv = str(api.storage.rv)
    w = await http.watch(CM, resourceVersion=rv)
    error = await w.next()
    assert error is not None
    assert error["type"] == "ERROR"
    assert error["object"]["code"] == 410
    again = await http.watch(CM, resourceVersion=rv)
    api.create_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}})
    event = await again.next()
    assert event is not None
    assert event["type"] == "ADDED"


async def test_refused_streaming_list_answers_as_kube_apiserver(
    api: APIServer, http: RawClient
) -> None:
    """As kube-apiserver v1.32.6 over etcd 3.4 answered (recorded): 200, one ERROR event
    whose 500 Status carries the bare message and no details, then the end of the stream."""
    api.faults.refuse_streaming_list = True
    w = await http.watch(
        CM,
        sendInitialEvents="true",
        resourceVersionMatch="NotOlderThan",
        allowWatchBookmarks="true",
    )
    assert w.status == 200
    assert await w.next() == {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "a watch stream was requested by the client but the required storage "
            "feature RequestWatchProgress is disabled",
            "reason": "InternalError",
            "code": 500,
        },
    }
    assert await w.next() is None
    # kube 1.32 makes a watch from "" or "0" that allows bookmarks a streaming list: refused
    for rv in ("", "0"):
        legacy = await http.watch(CM, resourceVersion=rv, allowWatchBookmarks="true")
        error = await legacy.next()
        assert error is not None
        assert (error["type"], error["object"]["code"]) == ("ERROR", 500)
    # without bookmarks, or from a listed resourceVersion, it stays a plain watch
    plain = await http.watch(CM, resourceVersion="0")
    from_listed = await http.watch(
        CM, resourceVersion=str(api.storage.rv), allowWatchBookmarks="true"
    )
    api.create_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n"}})
    for stream in (plain, from_listed):
        event = await stream.next()
        assert event is not None
        assert event["type"] == "ADDED"


async def test_write_reply_delay_lets_watchers_hear_the_write_first(
    api: APIServer, http: RawClient
) -> None:
    api.faults.write_reply_delay = 0.5
    w = await http.watch(CM, resourceVersion=str(api.storage.rv))
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "first"}}
    reply = asyncio.create_task(http.request("POST", CM, body))
    event = await w.next()
    assert event is not None
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "first")
    assert not reply.done()  # the watcher heard of the write before its author
    assert (await reply).status == 201


async def test_zombie_watches_stay_silent(api: APIServer, http: RawClient) -> None:
    api.faults.zombie_watches = True
    w = await http.watch(CM, resourceVersion=str(api.storage.rv), allowWatchBookmarks="true")
    api.create_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "z"}})
    with pytest.raises(TimeoutError):
        await w.next(within=0.5)  # neither the event nor a bookmark (every 0.05 s) arrives
    api.faults.zombie_watches = False
    healthy = await http.watch(CM, resourceVersion=str(api.storage.rv), allowWatchBookmarks="true")
    bookmark = await healthy.next()
    assert bookmark is not None
    assert bookmark["type"] == "BOOKMARK"
    assert api.faults.drop_watches() == 2


async def test_outage_refuses_connections_then_recovers(api: APIServer) -> None:
    port = api.port
    async with RawClient(api.url) as http:
        assert (await http.get(CM)).status == 200
        outage = api.faults.start_outage(0.5)
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(CM)
        await outage
        assert api.port == port
        assert (await http.get(CM)).status == 200
    assert api.faults.outages == 1


async def test_control_endpoints_switch_knobs_at_run_time(api: APIServer, http: RawClient) -> None:
    reply = await http.request("POST", "/envtest/faults", {"error_rate": 1.0, "error_code": 500})
    assert reply.body["error_rate"] == 1.0
    assert (await http.get(CM)).status == 500
    await http.request("POST", "/envtest/faults", {"error_rate": 0})
    assert (await http.get(CM)).status == 200
    bad = await http.request("POST", "/envtest/faults", {"nope": 1})
    assert bad.status == 400
    assert (await http.request("POST", "/envtest/compact")).status == 200
