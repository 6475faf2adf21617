"""kube-apiserver 1.32 behaviours a controller's tests could trip over, checked over HTTP.

Each test pins one rule where a naive in-memory server would differ: list resourceVersion
semantics and option validation, bookmarks, 410s, Table watches, JSON patch failures, the
status subresource, generation, deletion with finalizers and unconditional updates, content
negotiation, deletion answers and where a custom resource's watch history starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from flokoa_envtest import APIServer
from flokoa_envtest.testing import RawClient

CRD = "modelproviders.agent.flokoa.ai"
CRD_DIR = Path(__file__).resolve().parents[2] / "config" / "crd"
MP = "/apis/agent.flokoa.ai/v1alpha1/namespaces/default/modelproviders"
CM = "/api/v1/namespaces/default/configmaps"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def provider(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "agent.flokoa.ai/v1alpha1",
        "kind": "ModelProvider",
        "metadata": {"name": name},
        "spec": {"apiKeySecretRef": {"name": "creds"}, "openai": {}},
    }


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


@pytest.fixture
async def api() -> AsyncIterator[APIServer]:
    async with APIServer(crds=[CRD_DIR], bookmark_interval=60) as server:
        await server.wait_established(CRD)
        yield server


@pytest.fixture
async def http(api: APIServer) -> AsyncIterator[RawClient]:
    async with RawClient(api.url) as c:
        yield c


def names(body: dict[str, Any]) -> list[str]:
    return [i["metadata"]["name"] for i in body["items"]]


# --- lists -------------------------------------------------------------------------------------


async def test_list_resource_version_semantics(api: APIServer, http: RawClient) -> None:
    for n in "abc":
        api.create_object(configmap(n))
    then = str(api.storage.rv)
    api.create_object(configmap("d"))
    api.delete_object("v1", "ConfigMap", "a")
    now = str(api.storage.rv)

    # resourceVersion=0 is served whole from the watch cache: limit ignored, no continue
    zero = (await http.get(CM, resourceVersion="0", limit="1")).body
    assert names(zero) == ["b", "c", "d"]
    assert "continue" not in zero["metadata"]
    # a specific resourceVersion: NotOlderThan (the default) gives the latest state ...
    latest = (await http.get(CM, resourceVersion=then)).body
    assert (names(latest), latest["metadata"]["resourceVersion"]) == (["b", "c", "d"], now)
    # ... Exact, or the legacy form with a limit, the state at exactly that resourceVersion
    exact = (await http.get(CM, resourceVersion=then, resourceVersionMatch="Exact")).body
    assert (names(exact), exact["metadata"]["resourceVersion"]) == (["a", "b", "c"], then)
    legacy = (await http.get(CM, resourceVersion=then, limit="2")).body
    assert names(legacy) == ["a", "b"]
    rest = (await http.get(CM, limit="2", **{"continue": legacy["metadata"]["continue"]})).body
    assert names(rest) == ["c"]
    # once compacted, the past is gone: 410 Expired
    api.compact()
    gone = await http.get(CM, resourceVersion=then, resourceVersionMatch="Exact")
    assert (gone.status, gone.body["reason"]) == (410, "Expired")
    # a resourceVersion from the future: 504 with the cause clients look for
    future = await http.get(CM, resourceVersion=str(api.storage.rv + 100))
    assert (future.status, future.body["reason"]) == (504, "Timeout")
    assert future.body["message"].startswith("Timeout: Too large resource version: ")
    assert future.body["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
    assert future.headers["Retry-After"] == "1"


async def test_list_options_are_validated_like_kube(http: RawClient) -> None:
    async def invalid(**params: str) -> str:
        reply = await http.get(CM, **params)
        assert reply.status == 422, (params, reply.body)
        assert reply.body["details"]["kind"] == "ListOptions"
        message: str = reply.body["message"]
        return message

    assert 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"' in await invalid(
        resourceVersion="0", resourceVersionMatch="Exact"
    )
    assert "forbidden unless resourceVersion is provided" in await invalid(
        resourceVersionMatch="NotOlderThan"
    )
    assert 'Unsupported value: "Newest"' in await invalid(
        resourceVersion="1", resourceVersionMatch="Newest"
    )
    assert "sendInitialEvents is forbidden for list" in await invalid(sendInitialEvents="true")
    with_continue = await http.get(CM, resourceVersion="5", **{"continue": "abc"})
    assert (with_continue.status, with_continue.body["message"]) == (
        400,
        "specifying resource version is not allowed when using continue",
    )


# --- watches -----------------------------------------------------------------------------------


async def test_bookmark_before_the_deadline_carries_the_latest_version(
    api: APIServer, http: RawClient
) -> None:
    # Nothing matches the selector and the periodic interval is a minute: only kube's
    # bookmark 2 s before timeoutSeconds tells the client how far the server has got.
    w = await http.watch(
        CM,
        labelSelector="app=nothing",
        allowWatchBookmarks="true",
        timeoutSeconds="3",
        resourceVersion=str(api.storage.rv),
    )
    api.create_object(configmap("unrelated"))
    api.create_object({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "elsewhere"}})
    event = await w.next(within=5)
    assert event is not None
    assert event["type"] == "BOOKMARK"
    assert event["object"]["metadata"]["resourceVersion"] == str(api.storage.rv)
    assert await w.next(within=5) is None  # then the watch times out cleanly


async def test_no_pre_deadline_bookmark_without_bookmarks_or_time(http: RawClient) -> None:
    # without allowWatchBookmarks, or with a deadline under 2 s away, the watch just ends
    quiet = await http.watch(CM, timeoutSeconds="2", resourceVersion="1")
    short = await http.watch(
        CM, allowWatchBookmarks="true", timeoutSeconds="1", resourceVersion="1"
    )
    ends = await asyncio.gather(quiet.next(within=5), short.next(within=5))
    assert ends == [None, None]


async def test_watch_from_a_compacted_version_gets_an_error_event(
    api: APIServer, http: RawClient
) -> None:
    old = str(api.storage.rv)
    api.create_object(configmap("x"))
    api.compact()
    w = await http.watch(CM, resourceVersion=old)
    assert w.status == 200  # kube starts the stream, then sends the 410 as an ERROR event
    error = await w.next()
    assert error is not None
    assert (error["type"], error["object"]["code"], error["object"]["reason"]) == (
        "ERROR",
        410,
        "Expired",
    )
    stream = await http.watch(
        CM,
        sendInitialEvents="true",
        resourceVersionMatch="NotOlderThan",
        allowWatchBookmarks="true",
        resourceVersion=str(api.storage.rv + 50),
    )
    assert stream.status == 504


async def test_table_watch_sends_column_definitions_once(api: APIServer, http: RawClient) -> None:
    api.create_object(provider("a"))
    w = await http.watch(MP, headers={"Accept": TABLE})
    first = await w.next()
    api.patch_object(
        "agent.flokoa.ai/v1alpha1", "ModelProvider", "a", {"metadata": {"labels": {"x": "y"}}}
    )
    second = await w.next()
    assert first is not None
    assert second is not None
    assert [c["name"] for c in first["object"]["columnDefinitions"]][:1] == ["Name"]
    assert second["object"]["kind"] == "Table"
    assert second["object"]["columnDefinitions"] is None
    assert second["object"]["rows"][0]["cells"][0] == "a"


async def test_table_include_object(api: APIServer, http: RawClient) -> None:
    api.create_object(provider("a"))

    async def rows(include: str) -> list[dict[str, Any]]:
        reply = await http.request(
            "GET", MP, headers={"Accept": TABLE}, params={"includeObject": include}
        )
        assert reply.status == 200, reply.body
        result: list[dict[str, Any]] = reply.body["rows"]
        return result

    assert (await rows("Object"))[0]["object"]["spec"]["openai"]["timeoutSeconds"] == 60
    assert (await rows("Metadata"))[0]["object"]["kind"] == "PartialObjectMetadata"
    assert (await rows("None"))[0]["object"] is None
    bad = await http.request("GET", MP, headers={"Accept": TABLE}, params={"includeObject": "All"})
    assert bad.status == 400
    assert "must be 'Metadata', 'Object', 'None', or empty" in bad.body["message"]


# --- writes ------------------------------------------------------------------------------------


async def test_json_patch_failures(api: APIServer, http: RawClient) -> None:
    api.create_object(configmap("c", k="v"))

    async def patch(ops: Any) -> Any:
        return await http.request("PATCH", f"{CM}/c", ops, content_type=JSON_PATCH)

    for ops in (
        [{"op": "test", "path": "/metadata/resourceVersion", "value": "1"}],
        [{"op": "remove", "path": "/data/missing"}],
        [{"op": "frobnicate", "path": "/data"}],
        [{"op": "test", "path": "/data/k", "value": True}],
    ):
        reply = await patch(ops)
        assert (reply.status, reply.body["reason"]) == (422, "Invalid"), ops
        assert reply.body["message"] == (
            "the server rejected our request due to an error in our request"
        )
    assert (await patch({"op": "add"})).status == 400  # not a list: does not decode
    # a test of null passes on an absent member, and the patch applies
    ok = await patch(
        [
            {"op": "test", "path": "/metadata/labels", "value": None},
            {"op": "add", "path": "/data/k2", "value": "v2"},
        ]
    )
    assert ok.status == 200, ok.body
    assert ok.body["data"] == {"k": "v", "k2": "v2"}
    for content_type, body in ((MERGE, {"data": {}}), (JSON_PATCH, [])):
        missing = await http.request("PATCH", f"{CM}/nope", body, content_type=content_type)
        assert (missing.status, missing.body["reason"]) == (404, "NotFound")


async def test_updates_without_resource_version(api: APIServer, http: RawClient) -> None:
    # built-ins allow unconditional updates ...
    made = (await http.request("POST", CM, configmap("c", k="1"))).body
    unconditional = configmap("c", k="2")
    reply = await http.request("PUT", f"{CM}/c", unconditional)
    assert reply.status == 200
    assert int(reply.body["metadata"]["resourceVersion"]) > int(made["metadata"]["resourceVersion"])
    # ... custom resources (and CRDs) do not
    cr = (await http.request("POST", MP, provider("p"))).body
    del cr["metadata"]["resourceVersion"]
    for path in (f"{MP}/p", f"{MP}/p/status"):
        refused = await http.request("PUT", path, cr)
        assert refused.status == 422
        assert refused.body["message"] == (
            'modelproviders.agent.flokoa.ai "p" is invalid: metadata.resourceVersion: '
            "Invalid value: 0x0: must be specified for an update"
        )
        assert refused.body["details"]["kind"] == "modelproviders"


async def test_status_subresource_and_generation_rules(api: APIServer, http: RawClient) -> None:
    made = (await http.request("POST", MP, provider("p"))).body
    # metadata-only changes keep the generation
    labelled = await http.request(
        "PATCH", f"{MP}/p", {"metadata": {"labels": {"a": "b"}}}, content_type=MERGE
    )
    assert labelled.body["metadata"]["generation"] == made["metadata"]["generation"] == 1
    # a status write takes status only: spec and metadata changes in it are dropped
    status = await http.request(
        "PATCH",
        f"{MP}/p/status",
        {
            "metadata": {"labels": {"a": "changed"}, "annotations": {"n": "1"}},
            "spec": {"openai": {"timeoutSeconds": 5}},
            "status": {"ready": True},
        },
        content_type=MERGE,
    )
    assert status.status == 200
    assert status.body["metadata"]["labels"] == {"a": "b"}
    assert "annotations" not in status.body["metadata"]
    assert status.body["spec"]["openai"]["timeoutSeconds"] == 60
    assert status.body["status"] == {"ready": True}
    assert status.body["metadata"]["generation"] == 1
    # a main-resource write ignores status
    main = await http.request("PATCH", f"{MP}/p", {"status": {"ready": False}}, content_type=MERGE)
    assert main.body["status"] == {"ready": True}
    assert main.body["metadata"]["resourceVersion"] == status.body["metadata"]["resourceVersion"]


async def test_deletion_with_finalizers(api: APIServer, http: RawClient) -> None:
    body = provider("p")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await http.request("POST", MP, body)
    # an update cannot start a deletion by setting deletionTimestamp
    sneaky = await http.request(
        "PATCH",
        f"{MP}/p",
        {"metadata": {"deletionTimestamp": "2024-01-02T03:04:05Z"}},
        content_type=MERGE,
    )
    assert sneaky.status == 422
    assert sneaky.body["details"]["causes"][0] == {
        "reason": "FieldValueInvalid",
        "message": "Invalid value: 2024-01-02 03:04:05 +0000 UTC: field is immutable",
        "field": "metadata.deletionTimestamp",
    }
    rv = str(api.storage.rv)
    deleting = (await http.request("DELETE", f"{MP}/p")).body
    stamp = deleting["metadata"]["deletionTimestamp"]
    assert deleting["metadata"]["generation"] == 2
    # writes while deleting keep the deletionTimestamp (even when the body drops it)
    put = dict(deleting, spec={"apiKeySecretRef": {"name": "other"}, "openai": {}})
    put["metadata"] = {k: v for k, v in deleting["metadata"].items() if k != "deletionTimestamp"}
    updated = await http.request("PUT", f"{MP}/p", put)
    assert updated.status == 200, updated.body
    assert updated.body["metadata"]["deletionTimestamp"] == stamp
    assert updated.body["metadata"]["generation"] == 3
    # removing the last finalizer: the write is stored, then the object is deleted
    w = await http.watch(MP, resourceVersion=rv)
    done = await http.request(
        "PATCH",
        f"{MP}/p",
        [{"op": "remove", "path": "/metadata/finalizers"}],
        content_type=JSON_PATCH,
    )
    assert done.status == 200
    events = await w.until(lambda e: e["type"] == "DELETED")
    assert [e["type"] for e in events] == ["MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]
    assert "finalizers" not in events[-2]["object"]["metadata"]
    assert (await http.get(f"{MP}/p")).status == 404


# --- negotiation, deletion answers, history start (kube-apiserver v1.32.6 recordings) ----------


async def test_accept_yaml_and_unknown_media_types(http: RawClient) -> None:
    assert (await http.request("POST", MP, provider("y"))).status == 201
    one = await http.request("GET", f"{MP}/y", headers={"Accept": "application/yaml"})
    assert one.status == 200
    assert one.headers["Content-Type"] == "application/yaml"
    assert yaml.safe_load(one.body)["metadata"]["name"] == "y"
    listed = await http.request("GET", MP, headers={"Accept": "application/yaml"})
    assert [i["metadata"]["name"] for i in yaml.safe_load(listed.body)["items"]] == ["y"]
    missing = await http.request("GET", f"{MP}/nope", headers={"Accept": "application/yaml"})
    assert missing.status == 404
    assert yaml.safe_load(missing.body)["reason"] == "NotFound"
    # nothing acceptable: 406 before anything is done (the create is not made)
    refused = await http.request("POST", MP, provider("z"), headers={"Accept": "application/bogus"})
    assert refused.status == 406
    assert refused.body["message"] == (
        "only the following media types are accepted: application/json, application/yaml, "
        "application/vnd.kubernetes.protobuf"
    )
    assert "details" not in refused.body
    assert (await http.get(f"{MP}/z")).status == 404


async def test_unknown_resources_are_plain_404s(http: RawClient) -> None:
    for path in (
        "/apis/agent.flokoa.ai/v1alpha1/namespaces/default/nosuchthings",
        "/api/v1/namespaces/default/nosuchthings",
        "/apis/no.such.group/v1/things",
        "/nosuchpath",
    ):
        reply = await http.get(path)
        assert reply.status == 404, path
        assert reply.headers["Content-Type"].startswith("text/plain"), path
        assert reply.body == "404 page not found\n", path


async def test_custom_resource_delete_answers_a_success_status(http: RawClient) -> None:
    created = (await http.request("POST", MP, provider("d"))).body
    dry = await http.request("DELETE", f"{MP}/d", params={"dryRun": "All"})
    expected = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": "d",
            "group": "agent.flokoa.ai",
            "kind": "modelproviders",
            "uid": created["metadata"]["uid"],
        },
    }
    assert (dry.status, dry.body) == (200, expected)
    assert (await http.get(f"{MP}/d")).status == 200  # a dry run stores nothing
    gone = await http.request("DELETE", f"{MP}/d")
    assert (gone.status, gone.body) == (200, expected)
    assert (await http.get(f"{MP}/d")).status == 404
    # with a finalizer, a dry run answers the object as it would be marked
    held = provider("h")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    assert (await http.request("POST", MP, held)).status == 201
    marked = await http.request("DELETE", f"{MP}/h", params={"dryRun": "All"})
    assert marked.body["metadata"]["deletionTimestamp"]
    assert "deletionTimestamp" not in (await http.get(f"{MP}/h")).body["metadata"]


async def test_custom_resource_history_starts_when_served(http: RawClient) -> None:
    # kube's watch cache for a new CRD starts at its establishment: older versions are gone
    first = (await http.request("POST", MP, provider("w"))).body["metadata"]["resourceVersion"]
    w = await http.watch(MP, resourceVersion="1")
    event = await w.next()
    assert event is not None
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    assert event["object"]["message"].startswith("too old resource version: 1 (")
    w.close()
    # a version the server handed out after that replays as usual
    w = await http.watch(MP, resourceVersion=str(int(first) - 1))
    event = await w.next()
    assert event is not None
    assert event["type"] == "ADDED"
    w.close()
