"""Watch streams under load and faults: consistency, bounded chunks, stuck clients, outages."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from flokoa_envtest import APIServer
from flokoa_envtest.testing import RawClient
from flokoa_envtest.watch import CHUNK_EVENTS, Watch, WatchHandle, WatchSpec, raw_json

CM = "/api/v1/namespaces/default/configmaps"


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def lines(chunk: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in chunk.splitlines() if line]


def names(chunk: bytes) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"]["name"]) for e in lines(chunk)]


def watch_of(api: APIServer, **spec: Any) -> Watch:
    info = api.resource("v1", "ConfigMap")
    labels, fields = api.store.selectors(info, None, None)
    return Watch(
        api.storage, WatchSpec(info, "default", labels, fields, **spec), raw_json, WatchHandle()
    )


async def wait_for(predicate: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 (polling with a deadline)
            await asyncio.sleep(0.01)


async def test_initial_state_and_its_resource_version_are_read_together() -> None:
    # A write between the watch's set-up and its first read is sent once, in the state.
    api = APIServer()
    api.create_object(configmap("early"))
    watch = watch_of(api)
    cursor, initial = watch.start_rv()
    assert initial
    api.create_object(configmap("late"))
    stream = watch.stream(cursor, initial)
    try:
        assert names(await anext(stream)) == [("ADDED", "early"), ("ADDED", "late")]
        api.create_object(configmap("next"))
        assert names(await anext(stream)) == [("ADDED", "next")]  # "late" not sent again
    finally:
        await stream.aclose()


async def test_a_watch_far_behind_catches_up_in_bounded_chunks() -> None:
    api = APIServer()
    watch = watch_of(api)
    cursor, initial = watch_of(api, resource_version=str(api.storage.rv)).start_rv()
    assert not initial
    total = 2 * CHUNK_EVENTS + 200
    for i in range(total):
        api.create_object(configmap(f"c{i:05d}"))
    stream = watch.stream(cursor, initial)
    seen: list[tuple[str, str]] = []
    try:
        while len(seen) < total:
            chunk = names(await anext(stream))
            assert 0 < len(chunk) <= CHUNK_EVENTS
            seen += chunk
    finally:
        await stream.aclose()
    assert seen == [("ADDED", f"c{i:05d}") for i in range(total)]


async def test_initial_state_is_sent_in_bounded_chunks_then_the_bookmark() -> None:
    api = APIServer()
    total = CHUNK_EVENTS + 10
    for i in range(total):
        api.create_object(configmap(f"c{i:05d}"))
    watch = watch_of(api, send_initial_events=True, allow_bookmarks=True)
    cursor, initial = watch.start_rv()
    stream = watch.stream(cursor, initial)
    try:
        first, second, bookmark = [lines(await anext(stream)) for _ in range(3)]
    finally:
        await stream.aclose()
    assert (len(first), len(second)) == (CHUNK_EVENTS, 10)
    assert [e["type"] for e in bookmark] == ["BOOKMARK"]
    assert bookmark[0]["object"]["metadata"]["resourceVersion"] == str(api.storage.rv)


async def test_drop_watches_resets_a_watch_stuck_on_a_client_that_stopped_reading() -> None:
    async with APIServer() as api:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", api.port))
        _reader, writer = await asyncio.open_connection(sock=sock)
        try:
            writer.write(
                f"GET {CM}?watch=1&resourceVersion={api.storage.rv} HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\n\r\n".encode()
            )
            await writer.drain()
            await wait_for(lambda: len(api.handler.watches) == 1)
            assert api._web is not None
            connections = api._web.connections

            def stuck() -> bool:  # the transport is paused: the watch waits on the client
                return any(
                    c.transport is not None
                    and c.transport.get_write_buffer_size()
                    > c.transport.get_write_buffer_limits()[1]
                    for c in connections
                )

            payload = "x" * 60_000
            i = 0
            async with asyncio.timeout(30):
                while not stuck():  # write until the server cannot hand out more
                    api.create_object(configmap(f"big{i}", blob=payload))
                    i += 1
                    await asyncio.sleep(0)
            assert api.faults.drop_watches() == 1
            await wait_for(lambda: not api.handler.watches)
        finally:
            writer.close()


@pytest.fixture
async def api() -> AsyncIterator[APIServer]:
    async with APIServer() as server:
        yield server


async def refused(url: str) -> bool:
    async with RawClient(url) as http:
        try:
            await http.get(CM)
        except aiohttp.ClientConnectionError:
            return True
        return False


async def test_overlapping_outages_last_until_the_later_end(api: APIServer) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    long = api.faults.start_outage(0.8)
    short = api.faults.start_outage(0.1)
    assert await refused(api.url)
    await short  # the listener reopens once, when the longer outage is over
    assert loop.time() - began >= 0.8
    await long  # nothing left to reopen: no failing re-bind of a port already listening
    assert not await refused(api.url)
    assert api.faults.outages == 2


async def test_stop_during_an_outage_does_not_listen_again() -> None:
    api = APIServer()
    await api.start()
    outage = api.faults.start_outage(0.2)
    await api.stop()
    await asyncio.gather(outage, return_exceptions=True)  # cancelled, or ended without listening
    assert api._server is None
    assert await refused(api.url)


async def test_audit_log_can_be_bounded() -> None:
    async with APIServer(audit_limit=2) as api, RawClient(api.url) as http:
        for _ in range(3):
            assert (await http.get(CM)).status == 200
        assert len(api.audit) == 2
    async with APIServer(audit_limit=0) as api, RawClient(api.url) as http:
        assert (await http.get(CM)).status == 200
        assert len(api.audit) == 0
