"""KubeClient against tiny local servers: retries, Retry-After, 401 token re-read, watch
stream framing, metrics, TLS, and exception texts without secrets."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import traceback
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import trustme
from aiohttp import web
from prometheus_client import REGISTRY

from flokoa_controller.kube.client import KubeClient
from flokoa_controller.kube.config import ClusterConfig
from flokoa_controller.kube.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
)
from flokoa_controller.kube.resources import SECRETS, ResourceType
from flokoa_controller.kube.retry import RetryPolicy
from flokoa_controller.kube.tokens import FileTokenSource
from flokoa_controller.kube.watch import WatchEvent

CANARY = "c2VjcmV0LWNhbmFyeS12YWx1ZQ=="  # a Secret value that must never surface
TOKEN_CANARY = "bearer-canary-42"
WIDGETS = ResourceType("example.com", "v1", "widgets", "Widget", namespaced=True)

MakeClient = Callable[..., KubeClient]


def status(code: int, reason: str, message: str = "nope", **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }
    if details:
        body["details"] = details
    return body


def reply(code: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=code, body=orjson.dumps(body), headers=headers, content_type="application/json"
    )


def secret(name: str = "s") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "ns"},
        "data": {"key": CANARY},
    }


def sample(name: str, labels: dict[str, str]) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return value or 0.0


# -- basics ---------------------------------------------------------------------------------


async def test_get_headers_and_metrics(serve: Any, make_client: MakeClient) -> None:
    async def handler(request: web.Request) -> web.Response:
        return reply(200, {"kind": "Secret", "metadata": {"name": "s"}})

    server = await serve(handler)
    labels = {"code": "200", "method": "GET", "host": server.host}
    before = sample("rest_client_requests_total", labels)
    hist = {"verb": "GET", "host": server.host}
    before_count = sample("rest_client_request_duration_seconds_count", hist)
    async with make_client(server.url, token=TOKEN_CANARY) as client:
        obj = await client.get(SECRETS, "s", "ns")
    assert obj["metadata"]["name"] == "s"
    (request,) = server.requests
    assert request.path == "/api/v1/namespaces/ns/secrets/s"
    assert request.headers["Authorization"] == f"Bearer {TOKEN_CANARY}"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("flokoa-controller/")
    assert sample("rest_client_requests_total", labels) == before + 1
    assert sample("rest_client_request_duration_seconds_count", hist) == before_count + 1
    # client-go's bucket bounds
    assert (
        REGISTRY.get_sample_value(
            "rest_client_request_duration_seconds_bucket", {**hist, "le": "0.005"}
        )
        is not None
    )
    assert (
        REGISTRY.get_sample_value(
            "rest_client_request_duration_seconds_bucket", {**hist, "le": "60.0"}
        )
        is not None
    )


async def test_server_path_prefix(serve: Any, make_client: MakeClient) -> None:
    async def handler(request: web.Request) -> web.Response:
        return reply(200, {"items": []})

    server = await serve(handler)
    async with make_client(server.url + "/k8s/clusters/c-1/") as client:
        await client.list(SECRETS)
    assert server.requests[0].path == "/k8s/clusters/c-1/api/v1/secrets"


async def test_query_parameters_and_content_types(serve: Any, make_client: MakeClient) -> None:
    seen: list[tuple[str, str, dict[str, str], Any]] = []

    async def handler(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read()) if request.can_read_body else None
        seen.append(
            (request.method, request.headers.get("Content-Type", ""), dict(request.query), body)
        )
        return reply(200, {"kind": "Widget"})

    server = await serve(handler)
    async with make_client(server.url) as client:
        await client.list(
            WIDGETS,
            "ns",
            label_selector="a=b,c in (d,e)",
            field_selector="metadata.name=x",
            limit=10,
            continue_token="tok",
            resource_version="5",
        )
        await client.create(
            WIDGETS,
            {"metadata": {"name": "w", "namespace": "ns"}},
            dry_run=True,
            field_validation="Strict",
        )
        await client.update(
            WIDGETS,
            {"metadata": {"name": "w", "namespace": "ns"}},
            subresource="status",
            field_manager="other",
        )
        for patch_type in ("merge", "strategic", "apply"):
            await client.patch(WIDGETS, "w", {"spec": {}}, "ns", patch_type=patch_type, force=True)
        await client.patch(WIDGETS, "w", [{"op": "remove", "path": "/x"}], "ns", patch_type="json")
        await client.delete(
            WIDGETS, "w", "ns", propagation_policy="Foreground", preconditions={"uid": "u-1"}
        )
        with pytest.raises(ValueError, match="patch type"):
            await client.patch(WIDGETS, "w", {}, "ns", patch_type="bogus")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="namespace"):
            await client.create(WIDGETS, {"metadata": {"name": "w"}})
    lst, create, update, merge, strategic, apply, jsonp, delete = seen
    assert lst[2] == {
        "labelSelector": "a=b,c in (d,e)",
        "fieldSelector": "metadata.name=x",
        "limit": "10",
        "continue": "tok",
        "resourceVersion": "5",
    }
    assert create[0] == "POST"
    assert create[1] == "application/json"
    assert create[2] == {
        "dryRun": "All",
        "fieldManager": "flokoa-controller",
        "fieldValidation": "Strict",
    }
    assert update[0] == "PUT"
    assert update[2] == {"fieldManager": "other"}
    assert merge[1] == "application/merge-patch+json"
    assert "force" not in merge[2]
    assert strategic[1] == "application/strategic-merge-patch+json"
    assert apply[1] == "application/apply-patch+yaml"
    assert apply[2]["force"] == "true"
    assert jsonp[1] == "application/json-patch+json"
    assert jsonp[3] == [{"op": "remove", "path": "/x"}]
    assert delete[0] == "DELETE"
    assert delete[2] == {"propagationPolicy": "Foreground"}
    assert delete[3]["preconditions"] == {"uid": "u-1"}


# -- error mapping and retries --------------------------------------------------------------


def scripted(*responses: Callable[[], web.StreamResponse]) -> Any:
    """A handler answering with the given responses in order (the last one repeats)."""
    queue = list(responses)

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        make = queue.pop(0) if len(queue) > 1 else queue[0]
        return make()

    return handler


def respond(
    code: int, reason: str = "", headers: dict[str, str] | None = None, **details: Any
) -> Callable[[], web.Response]:
    if code < 400:
        return lambda: reply(code, {"kind": "Widget", "metadata": {"name": "w"}})
    return lambda: reply(code, status(code, reason, **details), headers)


def call(client: KubeClient, verb: str) -> Any:
    obj = {"metadata": {"name": "w", "namespace": "ns"}}
    return {
        "GET": lambda: client.get(WIDGETS, "w", "ns"),
        "LIST": lambda: client.list(WIDGETS, "ns"),
        "POST": lambda: client.create(WIDGETS, obj),
        "PUT": lambda: client.update(WIDGETS, obj),
        "PATCH": lambda: client.patch(WIDGETS, "w", {"a": 1}, "ns"),
        "DELETE": lambda: client.delete(WIDGETS, "w", "ns"),
    }[verb]()


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (400, "BadRequest", BadRequest),
        (403, "Forbidden", Forbidden),
        (404, "NotFound", NotFound),
        (409, "Conflict", Conflict),
        (409, "AlreadyExists", AlreadyExists),
        (410, "Expired", Gone),
        (422, "Invalid", Invalid),
        (401, "Unauthorized", Unauthorized),
    ],
)
@pytest.mark.parametrize("verb", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_4xx_never_retried(
    serve: Any,
    make_client: MakeClient,
    sleeps: Any,
    verb: str,
    code: int,
    reason: str,
    cls: type[ApiError],
) -> None:
    server = await serve(scripted(respond(code, reason), respond(200)))
    async with make_client(server.url) as client:
        with pytest.raises(cls) as info:
            await call(client, verb)
    assert info.value.code == code
    assert len(server.requests) == 1
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("verb", "retried"),
    [
        ("GET", True),
        ("LIST", True),
        ("PUT", True),
        ("DELETE", True),
        ("POST", False),
        ("PATCH", False),
    ],
)
@pytest.mark.parametrize("code", [500, 503, 504])
async def test_5xx_retried_on_idempotent_verbs_only(
    serve: Any, make_client: MakeClient, sleeps: Any, verb: str, retried: bool, code: int
) -> None:
    server = await serve(scripted(respond(code, "InternalError"), respond(code, ""), respond(200)))
    async with make_client(server.url) as client:
        if retried:
            assert (await call(client, verb))["kind"] == "Widget"
            assert len(server.requests) == 3
            assert len(sleeps.delays) == 2
            assert all(0 <= d <= 10 for d in sleeps.delays)
        else:
            with pytest.raises(ServerError):
                await call(client, verb)
            assert len(server.requests) == 1


@pytest.mark.parametrize("verb", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_429_retried_on_every_verb_after_retry_after(
    serve: Any, make_client: MakeClient, sleeps: Any, verb: str
) -> None:
    server = await serve(
        scripted(
            respond(429, "TooManyRequests", {"Retry-After": "3"}),
            respond(429, "TooManyRequests", retryAfterSeconds=2),
            respond(200),
        )
    )
    async with make_client(server.url) as client:
        await call(client, verb)
    assert len(server.requests) == 3
    assert sleeps.delays == [3.0, 2.0]


async def test_server_retry_after_applies_to_5xx_and_is_capped(
    serve: Any, make_client: MakeClient, sleeps: Any
) -> None:
    server = await serve(
        scripted(
            respond(503, "ServiceUnavailable", {"Retry-After": "5"}),
            respond(429, "TooManyRequests", {"Retry-After": "3600"}),
            respond(200),
        )
    )
    async with make_client(
        server.url, retry=RetryPolicy(sleep=sleeps, max_retry_after=20)
    ) as client:
        await client.get(WIDGETS, "w", "ns")
    assert sleeps.delays == [5.0, 20.0]


async def test_attempts_are_bounded(serve: Any, make_client: MakeClient, sleeps: Any) -> None:
    server = await serve(scripted(respond(500, "InternalError")))
    async with make_client(
        server.url,
        retry=RetryPolicy(sleep=sleeps, max_attempts=4, initial_backoff=0.5, max_backoff=1.0),
    ) as client:
        with pytest.raises(ServerError):
            await client.get(WIDGETS, "w", "ns")
    assert len(server.requests) == 4
    assert len(sleeps.delays) == 3
    assert all(0 <= d <= 1.0 for d in sleeps.delays)


async def test_total_retry_time_is_bounded(
    serve: Any, make_client: MakeClient, sleeps: Any
) -> None:
    server = await serve(scripted(respond(429, "TooManyRequests", {"Retry-After": "30"})))
    policy = RetryPolicy(sleep=sleeps, max_attempts=10, max_elapsed=45)
    async with make_client(server.url, retry=policy) as client:
        with pytest.raises(TooManyRequests) as info:
            await client.get(WIDGETS, "w", "ns")
    # the second wait of 30 s would end past 45 s (the waits are not really slept here,
    # but the budget counts the planned waits): one retry only
    assert info.value.retry_after == 30.0
    assert len(server.requests) == 2


async def test_connection_refused_is_retried_for_every_verb(
    refused_url: str, make_client: MakeClient, sleeps: Any
) -> None:
    labels = {"code": "<error>", "method": "POST", "host": refused_url.removeprefix("http://")}
    before = sample("rest_client_requests_total", labels)
    async with make_client(refused_url, retry=RetryPolicy(sleep=sleeps, max_attempts=3)) as client:
        with pytest.raises(ConnectionFailed) as info:
            await call(client, "POST")
    assert info.value.request_sent is False
    assert len(sleeps.delays) == 2  # 3 attempts
    assert sample("rest_client_requests_total", labels) == before + 3


def disconnect() -> web.StreamResponse:
    raise _Disconnect


class _Disconnect(Exception):
    pass


def dropping(*then: Callable[[], web.StreamResponse]) -> Any:
    """A handler that drops the connection without an answer, then answers `then`."""
    queue = [disconnect, *then]

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        make = queue.pop(0) if len(queue) > 1 else queue[0]
        try:
            return make()
        except _Disconnect:
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError from None

    return handler


@pytest.mark.parametrize(
    ("verb", "retried"),
    [("GET", True), ("PUT", True), ("DELETE", True), ("POST", False), ("PATCH", False)],
)
async def test_disconnect_after_sending(
    serve: Any, make_client: MakeClient, sleeps: Any, verb: str, retried: bool
) -> None:
    server = await serve(dropping(respond(200)))
    async with make_client(server.url) as client:
        if retried:
            await call(client, verb)
            assert len(server.requests) == 2
        else:
            with pytest.raises(ConnectionFailed) as info:
                await call(client, verb)
            assert info.value.request_sent is True
            assert len(server.requests) == 1


async def test_request_timeout_is_a_connection_failure(
    serve: Any, make_client: MakeClient, sleeps: Any
) -> None:
    never = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await never.wait()
        return reply(200, {})

    server = await serve(handler)
    async with make_client(
        server.url, request_timeout=0.2, retry=RetryPolicy(sleep=sleeps, max_attempts=2)
    ) as client:
        with pytest.raises(ConnectionFailed, match="timed out"):
            await client.get(WIDGETS, "w", "ns")
    assert len(server.requests) == 2


# -- 401: token re-read once ----------------------------------------------------------------


def token_checking(valid: set[str]) -> Any:
    async def handler(request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "").removeprefix("Bearer ") in valid:
            return reply(200, {"kind": "Widget"})
        return reply(401, status(401, "Unauthorized", "Unauthorized"))

    return handler


async def test_401_rereads_rotated_token_file_once(
    serve: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("old")
    valid = {"old"}
    server = await serve(token_checking(valid))
    config = ClusterConfig(
        server=server.url, token_source=FileTokenSource(token_file, refresh_interval=3600)
    )
    async with make_client(server.url, config=config) as client:
        await client.get(WIDGETS, "w", "ns")
        token_file.write_text("new")  # rotated; the cached token is now stale
        valid.clear()
        valid.add("new")
        await client.get(WIDGETS, "w", "ns")
        auths = [r.headers["Authorization"] for r in server.requests]
        assert auths == ["Bearer old", "Bearer old", "Bearer new"]
        # a token the server rejects and that does not change: one request, Unauthorized
        valid.clear()
        with pytest.raises(Unauthorized):
            await client.get(WIDGETS, "w", "ns")
        assert len(server.requests) == 4


async def test_401_then_new_token_still_rejected(
    serve: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("a")
    server = await serve(token_checking(set()))
    source = FileTokenSource(token_file, refresh_interval=3600)
    config = ClusterConfig(server=server.url, token_source=source)
    async with make_client(server.url, config=config) as client:
        await source.token()
        token_file.write_text("b")
        with pytest.raises(Unauthorized):
            await client.get(WIDGETS, "w", "ns")
    assert [r.headers["Authorization"] for r in server.requests] == ["Bearer a", "Bearer b"]


# -- secrets never in exception text ---------------------------------------------------------


def all_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


async def test_exception_text_has_no_body_nor_token(
    serve: Any, make_client: MakeClient, refused_url: str
) -> None:
    server = await serve(scripted(respond(422, "Invalid"), respond(500, "InternalError")))
    async with make_client(server.url, token=TOKEN_CANARY) as client:
        with pytest.raises(Invalid) as invalid:
            await client.create(SECRETS, secret())
        with pytest.raises(ServerError) as server_error:  # PATCH: not retried
            await client.patch(SECRETS, "s", {"data": {"key": CANARY}}, "ns")
    for exc in (invalid.value, server_error.value):
        text = all_text(exc)
        assert CANARY not in text
        assert TOKEN_CANARY not in text
        assert "/api/v1/namespaces/ns/secrets" in text

    dropper = await serve(dropping())
    async with make_client(dropper.url, token=TOKEN_CANARY) as client:
        with pytest.raises(ConnectionFailed) as dropped:
            await client.create(SECRETS, secret())
    async with make_client(
        refused_url, token=TOKEN_CANARY, retry=RetryPolicy(max_attempts=1)
    ) as client:
        with pytest.raises(ConnectionFailed) as refused:
            await client.create(SECRETS, secret())
    for exc in (dropped.value, refused.value):
        text = all_text(exc)
        assert CANARY not in text
        assert TOKEN_CANARY not in text
        assert text.startswith("Traceback") or "POST" in text


# -- watch ------------------------------------------------------------------------------------


def event(kind: str, name: str, size: int = 0) -> bytes:
    obj: dict[str, Any] = {"kind": "Widget", "metadata": {"name": name, "resourceVersion": "1"}}
    if size:
        obj["spec"] = {"blob": "x" * size}
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


async def test_watch_reassembles_cut_and_huge_lines(serve: Any, make_client: MakeClient) -> None:
    stream = (
        event("ADDED", "a")
        + event("MODIFIED", "big", size=3 * 1024 * 1024)  # far beyond aiohttp's line limit
        + b"\n"  # blank lines are ignored
        + orjson.dumps({"type": "ERROR", "object": status(410, "Expired", "too old")})
        + b"\n"
        + event("DELETED", "z")
        + b'{"type": "ADDED", "object": {"kind": "Wid'  # cut short at the end: dropped
    )
    seen_query: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen_query.append(dict(request.query))
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        for start in range(0, len(stream), 7919):  # chunks cutting lines anywhere
            await resp.write(stream[start : start + 7919])
        await resp.write_eof()
        return resp

    server = await serve(handler)
    async with make_client(server.url) as client:
        events = [
            e
            async for e in client.watch(
                WIDGETS, "ns", resource_version="7", timeout_seconds=300, label_selector="a=b"
            )
        ]
    assert [(e.type, e.object.get("metadata", {}).get("name")) for e in events] == [
        ("ADDED", "a"),
        ("MODIFIED", "big"),
        ("ERROR", None),
        ("DELETED", "z"),
    ]
    assert len(events[1].object["spec"]["blob"]) == 3 * 1024 * 1024
    assert events[2].object["code"] == 410
    assert seen_query == [
        {
            "watch": "1",
            "resourceVersion": "7",
            "timeoutSeconds": "300",
            "allowWatchBookmarks": "true",
            "labelSelector": "a=b",
        }
    ]


async def test_watch_streaming_list_parameters(serve: Any, make_client: MakeClient) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=b"", content_type="application/json")

    server = await serve(handler)
    async with make_client(server.url) as client:
        assert [
            e async for e in client.watch(WIDGETS, send_initial_events=True, allow_bookmarks=False)
        ] == []
    assert dict(server.requests[0].query) == {
        "watch": "1",
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
    }
    assert server.requests[0].path == "/apis/example.com/v1/widgets"


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (410, "Expired", Gone),
        (403, "Forbidden", Forbidden),
        (429, "TooManyRequests", TooManyRequests),
        (500, "InternalError", ServerError),
    ],
)
async def test_watch_http_error_raises_typed_and_is_not_retried(
    serve: Any, make_client: MakeClient, code: int, reason: str, cls: type[ApiError]
) -> None:
    server = await serve(scripted(respond(code, reason, {"Retry-After": "1"})))
    async with make_client(server.url) as client:
        with pytest.raises(cls) as info:
            async for _ in client.watch(WIDGETS, "ns"):
                pass
    assert info.value.retry_after == 1.0
    assert len(server.requests) == 1


async def test_watch_closes_connection_when_consumer_stops(
    serve: Any, make_client: MakeClient
) -> None:
    closed = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(event("ADDED", "a"))
        try:
            await asyncio.Event().wait()  # an endless, silent watch
        finally:
            closed.set()  # cancelled by aiohttp when the client hangs up
        return resp

    server = await serve(handler)
    async with make_client(server.url) as client:
        async with contextlib.aclosing(client.watch(WIDGETS, "ns")) as stream:
            async for first in stream:
                assert first.type == "ADDED"
                break
        await asyncio.wait_for(closed.wait(), timeout=10)


async def collect(stream: AsyncIterator[WatchEvent], into: list[str]) -> None:
    async for e in stream:
        into.append(e.type)


async def test_watch_inactivity_timeout(serve: Any, make_client: MakeClient) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(event("ADDED", "a"))
        await asyncio.Event().wait()
        return resp

    server = await serve(handler)
    got: list[str] = []
    async with make_client(server.url) as client:
        with pytest.raises(ConnectionFailed) as info:
            await collect(client.watch(WIDGETS, "ns", inactivity_timeout=0.3), got)
    assert got == ["ADDED"]
    assert info.value.reason == "InactivityTimeout"


async def test_watch_broken_stream(serve: Any, make_client: MakeClient) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(event("ADDED", "a") + b"not json\n")
        await resp.write_eof()
        return resp

    server = await serve(handler)
    async with make_client(server.url) as client:
        with pytest.raises(ConnectionFailed) as info:
            async for _ in client.watch(WIDGETS, "ns"):
                pass
    assert info.value.reason == "InvalidWatchStream"


async def test_watch_401_rereads_token(serve: Any, make_client: MakeClient, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("old")
    source = FileTokenSource(token_file, refresh_interval=3600)
    await source.token()
    token_file.write_text("new")

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers["Authorization"] != "Bearer new":
            return reply(401, status(401, "Unauthorized"))
        return web.Response(body=event("ADDED", "a"), content_type="application/json")

    server = await serve(handler)
    config = ClusterConfig(server=server.url, token_source=source)
    async with make_client(server.url, config=config) as client:
        assert [e.type async for e in client.watch(WIDGETS, "ns")] == ["ADDED"]
    assert len(server.requests) == 2


# -- list_all ---------------------------------------------------------------------------------


async def test_list_all_pages_and_falls_back_when_continue_expires(
    serve: Any, make_client: MakeClient
) -> None:
    expire = {"on": False}

    async def handler(request: web.Request) -> web.Response:
        q = request.query
        if "limit" not in q:  # the full-list fallback
            return reply(
                200,
                {
                    "kind": "WidgetList",
                    "metadata": {"resourceVersion": "9"},
                    "items": [{"n": i} for i in range(5)],
                },
            )
        start = int(q.get("continue", "0"))
        if start and expire["on"]:
            return reply(410, status(410, "Expired", "continue token expired"))
        end = min(start + int(q["limit"]), 5)
        meta: dict[str, Any] = {"resourceVersion": "7"}
        if end < 5:
            meta["continue"] = str(end)
            meta["remainingItemCount"] = 5 - end
        return reply(
            200,
            {
                "kind": "WidgetList",
                "metadata": meta,
                "items": [{"n": i} for i in range(start, end)],
            },
        )

    server = await serve(handler)
    async with make_client(server.url) as client:
        full = await client.list_all(WIDGETS, page_size=2, resource_version="0")
        assert [i["n"] for i in full["items"]] == [0, 1, 2, 3, 4]
        assert full["metadata"] == {"resourceVersion": "7"}
        assert len(server.requests) == 3
        assert server.requests[0].query.get("resourceVersion") == "0"
        assert "resourceVersion" not in server.requests[1].query
        expire["on"] = True
        fallback = await client.list_all(WIDGETS, page_size=2)
        assert [i["n"] for i in fallback["items"]] == [0, 1, 2, 3, 4]
        assert fallback["metadata"]["resourceVersion"] == "9"


# -- TLS ---------------------------------------------------------------------------------------


def server_tls(ca: trustme.CA, *names: str, client_auth: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(ctx)
    if client_auth:
        ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def test_mutual_tls(serve: Any, make_client: MakeClient, ca: trustme.CA) -> None:
    async def handler(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        return reply(200, {"subject": str(peer)})

    server = await serve(handler, ssl_context=server_tls(ca, "127.0.0.1", client_auth=True))
    leaf = ca.issue_cert("client@example")
    config = ClusterConfig(
        server=server.url,
        ca_data=ca.cert_pem.bytes().decode(),
        client_cert_data=leaf.cert_chain_pems[0].bytes().decode(),
        client_key_data=leaf.private_key_pem.bytes().decode(),
    )
    async with make_client(server.url, config=config) as client:
        got = await client.request("GET", "/version")
    assert "client@example" in got["subject"]


async def test_tls_server_name_and_untrusted_server(
    serve: Any, make_client: MakeClient, sleeps: Any, ca: trustme.CA
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return reply(200, {"ok": True})

    server = await serve(handler, ssl_context=server_tls(ca, "kubernetes.default.svc"))
    pem = ca.cert_pem.bytes().decode()
    named = ClusterConfig(server=server.url, ca_data=pem, tls_server_name="kubernetes.default.svc")
    async with make_client(server.url, config=named) as client:
        assert await client.request("GET", "/version") == {"ok": True}
    # without the server name the certificate does not match: a permanent failure
    unnamed = ClusterConfig(server=server.url, ca_data=pem)
    async with make_client(server.url, config=unnamed) as client:
        with pytest.raises(ConnectionFailed) as info:
            await client.request("GET", "/version")
    assert info.value.permanent
    assert sleeps.delays == []
    # and a CA that did not sign it: the same
    other = ClusterConfig(
        server=server.url,
        ca_data=trustme.CA().cert_pem.bytes().decode(),
        tls_server_name="kubernetes.default.svc",
    )
    async with make_client(server.url, config=other) as client:
        with pytest.raises(ConnectionFailed):
            await client.request("GET", "/version")
    assert sleeps.delays == []
