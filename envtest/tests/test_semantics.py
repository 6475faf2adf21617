"""API semantics of envtest checked over HTTP: the rules a controller relies on."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from flokoa_envtest import APIServer
from flokoa_envtest.testing import RawClient

CRD = "modelproviders.agent.flokoa.ai"
CRD_DIR = Path(__file__).resolve().parents[2] / "config" / "crd"
MP = "/apis/agent.flokoa.ai/v1alpha1/namespaces/default/modelproviders"
CM = "/api/v1/namespaces/default/configmaps"
MERGE = "application/merge-patch+json"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def provider(name: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "agent.flokoa.ai/v1alpha1",
        "kind": "ModelProvider",
        "metadata": {"name": name},
        "spec": {"apiKeySecretRef": {"name": "creds"}, "openai": {}},
    }
    body.update(extra)
    return body


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


@pytest.fixture
async def api() -> AsyncIterator[APIServer]:
    async with APIServer(crds=[CRD_DIR], bookmark_interval=0.05) as server:
        await server.wait_established(CRD)
        yield server


@pytest.fixture
async def http(api: APIServer) -> AsyncIterator[RawClient]:
    async with RawClient(api.url) as c:
        yield c


# --- metadata, generation, status -----------------------------------------------------------


async def test_generation_moves_only_with_the_spec(http: RawClient) -> None:
    created = (await http.request("POST", MP, provider("p"))).body
    assert created["metadata"]["generation"] == 1
    assert created["metadata"]["uid"]
    assert created["metadata"]["creationTimestamp"]

    async def patch(path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = await http.request("PATCH", path, body, content_type=MERGE)
        assert reply.status == 200, reply.body
        result: dict[str, Any] = reply.body
        return result

    labelled = await patch(f"{MP}/p", {"metadata": {"labels": {"a": "b"}}})
    assert labelled["metadata"]["generation"] == 1
    status = await patch(f"{MP}/p/status", {"status": {"ready": True}})
    assert status["metadata"]["generation"] == 1
    spec = await patch(f"{MP}/p", {"spec": {"openai": {"timeoutSeconds": 5}}})
    assert spec["metadata"]["generation"] == 2
    assert int(spec["metadata"]["resourceVersion"]) > int(status["metadata"]["resourceVersion"])
    # finalizer, then delete: deletionTimestamp set and generation bumped once
    await patch(f"{MP}/p", {"metadata": {"finalizers": ["agent.flokoa.ai/x"]}})
    deleting = (await http.request("DELETE", f"{MP}/p")).body
    assert deleting["metadata"]["deletionTimestamp"]
    assert deleting["metadata"]["generation"] == 3


async def test_status_subresource_isolation(http: RawClient) -> None:
    created = (await http.request("POST", MP, provider("p", status={"ready": True}))).body
    assert "status" not in created  # create ignores status
    with_status = (
        await http.request(
            "PATCH", f"{MP}/p/status", {"status": {"ready": False}}, content_type=MERGE
        )
    ).body
    # a main-resource write cannot change status
    body = dict(with_status, status={"ready": True})
    body["spec"] = dict(with_status["spec"], openai={"timeoutSeconds": 7})
    updated = (await http.request("PUT", f"{MP}/p", body)).body
    assert updated["status"] == {"ready": False}
    assert updated["spec"]["openai"]["timeoutSeconds"] == 7
    # a status write cannot change spec or metadata
    body = dict(updated, status={"ready": True, "provider": "openai"})
    body["spec"] = dict(updated["spec"], openai={"timeoutSeconds": 99})
    body["metadata"] = dict(updated["metadata"], labels={"sneaky": "yes"})
    status_put = (await http.request("PUT", f"{MP}/p/status", body)).body
    assert status_put["status"] == {"ready": True, "provider": "openai"}
    assert status_put["spec"]["openai"]["timeoutSeconds"] == 7
    assert "labels" not in status_put["metadata"]
    assert status_put["metadata"]["generation"] == 2


async def test_stale_update_conflicts_and_noop_writes_store_nothing(http: RawClient) -> None:
    first = (await http.request("POST", CM, configmap("c", a="1"))).body
    second = (await http.request("PUT", f"{CM}/c", dict(first, data={"a": "2"}))).body
    stale = await http.request("PUT", f"{CM}/c", dict(first, data={"a": "3"}))
    assert stale.status == 409
    assert stale.body["reason"] == "Conflict"
    assert stale.body["details"] == {"name": "c", "kind": "configmaps"}
    same = await http.request("PUT", f"{CM}/c", second)
    assert same.status == 200
    assert same.body["metadata"]["resourceVersion"] == second["metadata"]["resourceVersion"]
    # custom resources require a resourceVersion on update
    made = (await http.request("POST", MP, provider("p"))).body
    del made["metadata"]["resourceVersion"]
    missing = await http.request("PUT", f"{MP}/p", made)
    assert missing.status == 422
    assert "metadata.resourceVersion: Invalid value: 0" in missing.body["message"]


async def test_error_statuses(api: APIServer, http: RawClient) -> None:
    nf = await http.get(f"{CM}/nope")
    assert (nf.status, nf.body["reason"], nf.body["message"]) == (
        404, "NotFound", 'configmaps "nope" not found'
    )  # fmt: skip
    assert nf.body["kind"] == "Status"
    assert nf.body["details"]["kind"] == "configmaps"
    await http.request("POST", CM, configmap("dup"))
    dup = await http.request("POST", CM, configmap("dup"))
    assert (dup.status, dup.body["reason"]) == (409, "AlreadyExists")
    assert (await http.request("POST", f"{CM}/dup", configmap("x"))).status == 405
    smp = await http.request(
        "PATCH", f"{MP}/x", {"spec": {}}, content_type="application/strategic-merge-patch+json"
    )
    assert (smp.status, smp.body["reason"]) == (415, "UnsupportedMediaType")
    bad_type = await http.request("POST", CM, b"x", content_type="text/plain")
    assert bad_type.status == 415
    invalid = await http.request("POST", CM, configmap("Bad_Name"))
    assert (invalid.status, invalid.body["reason"]) == (422, "Invalid")
    assert invalid.body["details"]["causes"][0]["field"] == "metadata.name"
    no_ns = await http.request("POST", "/api/v1/namespaces/ghost/configmaps", configmap("c"))
    assert (no_ns.status, no_ns.body["message"]) == (404, 'namespaces "ghost" not found')
    mismatch = await http.request("PUT", f"{CM}/dup", configmap("other"))
    assert mismatch.status == 400
    unknown = await http.get("/apis/nope.io/v1/things")
    assert unknown.status == 404
    with_rv = configmap("rv")
    with_rv["metadata"]["resourceVersion"] = "5"
    assert (await http.request("POST", CM, with_rv)).status == 500
    bad_b64 = await http.request(
        "POST", "/api/v1/namespaces/default/secrets",
        {"metadata": {"name": "s"}, "data": {"k": "***"}},
    )  # fmt: skip
    assert bad_b64.status == 400
    assert api.audit.filter(resource="configmaps", code=409)


# --- lists -------------------------------------------------------------------------------------


async def test_selectors_filter_lists(api: APIServer, http: RawClient) -> None:
    for name, labels in (("a", {"tier": "web", "env": "prod"}), ("b", {"tier": "db"}), ("c", {})):
        api.create_object(configmap(name, labels))

    async def names(**params: str) -> list[str]:
        reply = await http.get(CM, **params)
        assert reply.status == 200, reply.body
        return [i["metadata"]["name"] for i in reply.body["items"]]

    assert await names(labelSelector="tier=web") == ["a"]
    assert await names(labelSelector="tier==db") == ["b"]
    assert await names(labelSelector="tier!=web") == ["b", "c"]
    assert await names(labelSelector="tier in (web,db)") == ["a", "b"]
    assert await names(labelSelector="tier notin (web)") == ["b", "c"]
    assert await names(labelSelector="env") == ["a"]
    assert await names(labelSelector="!env") == ["b", "c"]
    assert await names(labelSelector="tier,!env") == ["b"]
    assert await names(fieldSelector="metadata.name=b") == ["b"]
    assert await names(fieldSelector="metadata.name!=b") == ["a", "c"]
    assert (await http.get(CM, labelSelector="a b c")).status == 400
    assert (await http.get(CM, fieldSelector="spec.x=1")).status == 400


async def test_pages_are_consistent_snapshots(api: APIServer, http: RawClient) -> None:
    for i in range(5):
        api.create_object(configmap(f"c{i}", v="0"))
    first = (await http.get(CM, limit="2")).body
    assert [i["metadata"]["name"] for i in first["items"]] == ["c0", "c1"]
    assert first["metadata"]["remainingItemCount"] == 3
    token = first["metadata"]["continue"]
    api.patch_object("v1", "ConfigMap", "c3", {"data": {"v": "1"}})
    api.delete_object("v1", "ConfigMap", "c4")
    api.create_object(configmap("c5"))
    rest = (await http.get(CM, limit="10", **{"continue": token})).body
    assert [i["metadata"]["name"] for i in rest["items"]] == ["c2", "c3", "c4"]
    assert rest["items"][1]["data"] == {"v": "0"}  # as of the first page
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert "continue" not in rest["metadata"]
    exact = (
        await http.get(
            CM,
            resourceVersion=first["metadata"]["resourceVersion"],
            resourceVersionMatch="Exact",
        )
    ).body
    assert [i["metadata"]["name"] for i in exact["items"]] == [f"c{i}" for i in range(5)]
    api.compact()
    expired = await http.get(CM, limit="10", **{"continue": token})
    assert (expired.status, expired.body["reason"]) == (410, "Expired")
    future = await http.get(CM, resourceVersion=str(api.storage.rv + 100))
    assert future.status == 504


async def test_table_and_partial_metadata(api: APIServer, http: RawClient) -> None:
    api.create_object(provider("p"))
    table = await http.request("GET", MP, headers={"Accept": TABLE})
    assert table.body["kind"] == "Table"
    assert [c["name"] for c in table.body["columnDefinitions"]] == [
        "Name", "Provider", "Ready", "Reason", "Age"
    ]  # fmt: skip
    assert table.body["rows"][0]["cells"][0] == "p"
    assert table.body["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    one = await http.request("GET", f"{MP}/p", headers={"Accept": TABLE})
    assert one.body["kind"] == "Table"
    assert len(one.body["rows"]) == 1
    partial = await http.request(
        "GET",
        MP,
        headers={"Accept": "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"},
    )
    assert partial.body["kind"] == "PartialObjectMetadataList"
    assert "spec" not in partial.body["items"][0]


# --- watches ----------------------------------------------------------------------------------


async def test_watch_replays_from_a_resource_version_and_expires(
    api: APIServer, http: RawClient
) -> None:
    rv = (await http.get(CM)).body["metadata"]["resourceVersion"]
    api.create_object(configmap("a"))
    api.patch_object("v1", "ConfigMap", "a", {"data": {"k": "v"}})
    api.delete_object("v1", "ConfigMap", "a")
    w = await http.watch(CM, resourceVersion=rv)
    events = [await w.next() for _ in range(3)]
    assert [e["type"] for e in events if e] == ["ADDED", "MODIFIED", "DELETED"]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events if e]
    assert rvs == sorted(rvs)
    assert len(set(rvs)) == 3
    api.compact()
    old = await http.watch(CM, resourceVersion=rv)
    error = await old.next()
    assert error is not None
    assert error["type"] == "ERROR"
    assert error["object"]["code"] == 410
    assert error["object"]["reason"] == "Expired"
    assert await old.next() is None


async def test_watch_without_resource_version_starts_with_the_current_state(
    api: APIServer, http: RawClient
) -> None:
    api.create_object(configmap("x"))
    w = await http.watch(CM)
    first = await w.next()
    assert first is not None
    assert (first["type"], first["object"]["metadata"]["name"]) == (
        "ADDED",
        "x",
    )
    api.create_object(configmap("y"))
    second = await w.next()
    assert second is not None
    assert second["object"]["metadata"]["name"] == "y"
    single = await http.watch(f"{CM}", fieldSelector="metadata.name=y")
    only = await single.next()
    assert only is not None
    assert only["object"]["metadata"]["name"] == "y"


async def test_bookmarks_carry_the_current_resource_version(
    api: APIServer, http: RawClient
) -> None:
    w = await http.watch(CM, allowWatchBookmarks="true", resourceVersion=str(api.storage.rv))
    api.create_object(configmap("b"))
    events = await w.until(lambda e: e["type"] == "BOOKMARK")
    bookmark = events[-1]["object"]
    assert bookmark["kind"] == "ConfigMap"
    assert bookmark["apiVersion"] == "v1"
    assert int(bookmark["metadata"]["resourceVersion"]) >= int(
        events[0]["object"]["metadata"]["resourceVersion"]
    )
    assert int(bookmark["metadata"]["resourceVersion"]) == api.storage.rv


async def test_selectors_on_watches_turn_leaving_objects_into_deletes(
    api: APIServer, http: RawClient
) -> None:
    w = await http.watch(CM, labelSelector="app=web", resourceVersion=str(api.storage.rv))
    api.create_object(configmap("other"))
    api.create_object(configmap("c", {"app": "db"}))
    api.patch_object("v1", "ConfigMap", "c", {"metadata": {"labels": {"app": "web"}}})
    api.patch_object("v1", "ConfigMap", "c", {"data": {"x": "1"}})
    api.patch_object("v1", "ConfigMap", "c", {"metadata": {"labels": {"app": "db"}}})
    events = [await w.next() for _ in range(3)]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events if e] == [
        ("ADDED", "c"),
        ("MODIFIED", "c"),
        ("DELETED", "c"),
    ]
    last = events[2]
    assert last is not None
    assert last["object"]["metadata"]["labels"] == {"app": "web"}  # the state before leaving
    assert int(last["object"]["metadata"]["resourceVersion"]) == api.storage.rv
    fw = await http.watch(
        "/api/v1/namespaces/default/events",
        fieldSelector="involvedObject.name=target",
        resourceVersion=str(api.storage.rv),
    )
    for target in ("else", "target"):
        api.create_object(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"ev-{target}"},
                "involvedObject": {"kind": "ConfigMap", "name": target, "namespace": "default"},
                "reason": "Test",
            }
        )
    got = await fw.next()
    assert got is not None
    assert got["object"]["metadata"]["name"] == "ev-target"


async def test_streaming_list_ends_with_the_initial_events_bookmark(
    api: APIServer, http: RawClient
) -> None:
    for name in ("a", "b"):
        api.create_object(configmap(name))
    w = await http.watch(
        CM,
        sendInitialEvents="true",
        resourceVersionMatch="NotOlderThan",
        allowWatchBookmarks="true",
        resourceVersion="",
    )
    events = await w.until(lambda e: e["type"] == "BOOKMARK")
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events[:-1]] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
    ]
    end = events[-1]["object"]["metadata"]
    assert end["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(end["resourceVersion"]) == api.storage.rv
    api.create_object(configmap("c"))
    after = await w.until(lambda e: e["type"] == "ADDED")
    assert after[-1]["object"]["metadata"]["name"] == "c"
    refused = await http.get(CM, watch="1", sendInitialEvents="true")
    assert refused.status == 422


async def test_timeout_seconds_ends_the_watch(http: RawClient) -> None:
    w = await http.watch(CM, timeoutSeconds="1", resourceVersion="1")
    assert await w.next(within=10) is None


# --- writes --------------------------------------------------------------------------------


async def test_finalizers_hold_deletion(api: APIServer, http: RawClient) -> None:
    body = configmap("held")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await http.request("POST", CM, body)
    deleting = await http.request("DELETE", f"{CM}/held")
    assert deleting.status == 200
    assert deleting.body["metadata"]["deletionTimestamp"]
    again = await http.request("DELETE", f"{CM}/held")
    assert again.body["metadata"]["resourceVersion"] == deleting.body["metadata"]["resourceVersion"]
    two = {"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}}
    more = await http.request("PATCH", f"{CM}/held", two, content_type=MERGE)
    assert more.status == 422
    assert "no new finalizers" in more.body["message"]
    done = await http.request(
        "PATCH", f"{CM}/held", {"metadata": {"finalizers": None}}, content_type=MERGE
    )
    assert done.status == 200
    assert (await http.get(f"{CM}/held")).status == 404
    plain = await http.request("POST", CM, configmap("plain"))
    gone = await http.request("DELETE", f"{CM}/plain")
    assert gone.body["kind"] == "Status"
    assert gone.body["status"] == "Success"
    assert gone.body["details"]["uid"] == plain.body["metadata"]["uid"]
    pre = await http.request("POST", CM, configmap("pre"))
    wrong = await http.request("DELETE", f"{CM}/pre", {"preconditions": {"uid": "not-it"}})
    assert wrong.status == 409
    assert "the UID in the precondition (not-it) does not match" in wrong.body["message"]
    assert wrong.body["details"]["kind"] == "ConfigMap"  # kube names the kind here
    assert pre.status == 201


async def test_dry_run_and_field_validation(api: APIServer, http: RawClient) -> None:
    dry = await http.request("POST", CM, configmap("dry"), params={"dryRun": "All"})
    assert dry.status == 201
    assert dry.body["metadata"]["uid"]
    assert (await http.get(f"{CM}/dry")).status == 404
    body = configmap("strict")
    body["bogus"] = 1
    strict = await http.request("POST", CM, body, params={"fieldValidation": "Strict"})
    assert strict.status == 400
    assert 'strict decoding error: unknown field "bogus"' in strict.body["message"]
    warned = await http.request("POST", CM, body, params={"fieldValidation": "Warn"})
    assert warned.status == 201
    assert "bogus" not in warned.body
    assert warned.warnings == ['299 - "unknown field \\"bogus\\""']
    cr = provider("s")
    cr["spec"]["extra"] = True
    refused = await http.request("POST", MP, cr, params={"fieldValidation": "Strict"})
    assert refused.status == 400
    assert 'unknown field "spec.extra"' in refused.body["message"]
    pruned = await http.request("POST", MP, cr, params={"fieldValidation": "Ignore"})
    assert pruned.status == 201
    assert "extra" not in pruned.body["spec"]
    assert not pruned.warnings


async def test_patch_flavours(api: APIServer, http: RawClient) -> None:
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u1"}
    body = configmap("p", a="1")
    body["metadata"]["ownerReferences"] = [owner]
    body["metadata"]["finalizers"] = ["example.com/a"]
    await http.request("POST", CM, body)
    smp = await http.request(
        "PATCH",
        f"{CM}/p",
        {
            "metadata": {
                "ownerReferences": [{**owner, "uid": "u2", "name": "o2"}],
                "finalizers": ["example.com/b"],
            },
            "data": {"b": "2"},
        },
        content_type="application/strategic-merge-patch+json",
    )
    assert [o["uid"] for o in smp.body["metadata"]["ownerReferences"]] == ["u1", "u2"]
    assert smp.body["metadata"]["finalizers"] == ["example.com/a", "example.com/b"]
    assert smp.body["data"] == {"a": "1", "b": "2"}
    delete_owner = await http.request(
        "PATCH",
        f"{CM}/p",
        {"metadata": {"ownerReferences": [{"uid": "u1", "$patch": "delete"}],
                      "$deleteFromPrimitiveList/finalizers": ["example.com/a"]}},
        content_type="application/strategic-merge-patch+json",
    )  # fmt: skip
    assert [o["uid"] for o in delete_owner.body["metadata"]["ownerReferences"]] == ["u2"]
    assert delete_owner.body["metadata"]["finalizers"] == ["example.com/b"]
    rv = delete_owner.body["metadata"]["resourceVersion"]
    jp = await http.request(
        "PATCH",
        f"{CM}/p",
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "replace", "path": "/data/a", "value": "9"},
            {"op": "remove", "path": "/metadata/finalizers"},
        ],
        content_type="application/json-patch+json",
    )
    assert jp.status == 200
    assert jp.body["data"]["a"] == "9"
    failed = await http.request(
        "PATCH",
        f"{CM}/p",
        [{"op": "test", "path": "/metadata/resourceVersion", "value": rv}],
        content_type="application/json-patch+json",
    )
    assert failed.status == 422


async def test_secrets_fold_string_data(http: RawClient) -> None:
    made = await http.request(
        "POST",
        "/api/v1/namespaces/default/secrets",
        {"metadata": {"name": "s"}, "data": {"a": "eA=="}, "stringData": {"b": "y"}},
    )
    assert made.body["data"] == {"a": "eA==", "b": base64.b64encode(b"y").decode()}
    assert made.body["type"] == "Opaque"
    assert "stringData" not in made.body
    retyped = dict(made.body, type="kubernetes.io/tls")
    assert (
        await http.request("PUT", "/api/v1/namespaces/default/secrets/s", retyped)
    ).status == 422


async def test_namespace_deletion_removes_its_content(api: APIServer, http: RawClient) -> None:
    await http.request("POST", "/api/v1/namespaces", {"metadata": {"name": "tmp"}})
    api.create_object(configmap("c"), namespace="tmp")
    held = provider("p")
    held["metadata"]["finalizers"] = ["agent.flokoa.ai/x"]
    api.create_object(held, namespace="tmp")
    deleting = await http.request("DELETE", "/api/v1/namespaces/tmp")
    assert deleting.body["status"]["phase"] == "Terminating"
    assert (await http.get("/api/v1/namespaces/tmp/configmaps/c")).status == 404
    refused = await http.request("POST", "/api/v1/namespaces/tmp/configmaps", configmap("n"))
    assert refused.status == 403
    api.patch_object(
        "agent.flokoa.ai/v1alpha1", "ModelProvider", "p", {"metadata": {"finalizers": None}},
        namespace="tmp",
    )  # fmt: skip
    assert (await http.get("/api/v1/namespaces/tmp")).status == 404
    assert (await http.request("DELETE", "/api/v1/namespaces/default")).status == 403


async def test_crd_lifecycle_updates_discovery(api: APIServer, http: RawClient) -> None:
    aggregated = (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    )
    disc = await http.request("GET", "/apis", headers={"Accept": aggregated})
    assert disc.headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
    groups = {g["metadata"]["name"]: g for g in disc.body["items"]}
    resources = {r["resource"]: r for r in groups["agent.flokoa.ai"]["versions"][0]["resources"]}
    assert resources["modelproviders"]["shortNames"] == ["mp"]
    assert resources["modelproviders"]["categories"] == ["flokoa"]
    assert resources["modelproviders"]["subresources"][0]["subresource"] == "status"
    core = await http.request("GET", "/api", headers={"Accept": aggregated})
    assert core.body["items"][0]["versions"][0]["version"] == "v1"
    index = (await http.get("/openapi/v3")).body["paths"]
    doc = (
        await http.get(index["apis/agent.flokoa.ai/v1alpha1"]["serverRelativeURL"].split("?")[0])
    ).body
    patch_op = doc["paths"][
        "/apis/agent.flokoa.ai/v1alpha1/namespaces/{namespace}/modelproviders/{name}"
    ]["patch"]
    assert patch_op["x-kubernetes-group-version-kind"]["kind"] == "ModelProvider"
    assert "fieldValidation" in [p["name"] for p in patch_op["parameters"]]

    api.create_object(provider("p"))
    deleted = await http.request(
        "DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD}"
    )
    assert deleted.status == 200
    assert (await http.get(MP)).status == 404
    legacy = (await http.get("/apis/agent.flokoa.ai/v1alpha1")).body
    assert [r["name"] for r in legacy["resources"]] == ["models", "models/status"]
    api.install_crds([CRD_DIR])
    await api.wait_established(CRD)
    assert (await http.get(MP)).body["items"] == []


async def test_events_share_storage_across_both_apis(api: APIServer, http: RawClient) -> None:
    core = {
        "metadata": {"name": "e1"},
        "involvedObject": {
            "kind": "ModelProvider",
            "name": "p",
            "namespace": "default",
            "uid": "u",
        },
        "reason": "Probed",
        "message": "hello",
        "type": "Normal",
    }
    await http.request("POST", "/api/v1/namespaces/default/events", core)
    v1 = (await http.get("/apis/events.k8s.io/v1/namespaces/default/events/e1")).body
    assert v1["apiVersion"] == "events.k8s.io/v1"
    assert v1["regarding"]["name"] == "p"
    assert v1["note"] == "hello"
    by_regarding = await http.get(
        "/apis/events.k8s.io/v1/namespaces/default/events", fieldSelector="regarding.uid=u"
    )
    assert [e["metadata"]["name"] for e in by_regarding.body["items"]] == ["e1"]
    new_style = {
        "metadata": {"name": "e2"},
        "regarding": {"kind": "ModelProvider", "name": "p", "namespace": "default"},
        "reason": "Probed",
        "note": "via events.k8s.io",
        "type": "Normal",
        "action": "Probe",
        "reportingController": "flokoa.ai/controller",
        "reportingInstance": "pod-1",
        "eventTime": "2025-01-01T00:00:00.5Z",
    }
    made = await http.request("POST", "/apis/events.k8s.io/v1/namespaces/default/events", new_style)
    assert made.status == 201, made.body
    assert made.body["eventTime"] == "2025-01-01T00:00:00.500000Z"
    legacy = (await http.get("/api/v1/namespaces/default/events/e2")).body
    assert legacy["message"] == "via events.k8s.io"
    assert legacy["reportingComponent"] == "flokoa.ai/controller"
    incomplete = dict(new_style, metadata={"name": "e3"})
    del incomplete["action"]
    assert (
        await http.request("POST", "/apis/events.k8s.io/v1/namespaces/default/events", incomplete)
    ).status == 422


async def test_delete_collection_and_generate_name(api: APIServer, http: RawClient) -> None:
    for name in ("a", "b"):
        api.create_object(configmap(name, {"sweep": "yes"}))
    api.create_object(configmap("keep"))
    swept = await http.request("DELETE", CM, params={"labelSelector": "sweep=yes"})
    assert sorted(i["metadata"]["name"] for i in swept.body["items"]) == ["a", "b"]
    left = (await http.get(CM)).body["items"]
    assert [i["metadata"]["name"] for i in left] == ["keep"]
    gen = await http.request("POST", CM, {"metadata": {"generateName": "auto-"}})
    assert gen.status == 201
    assert gen.body["metadata"]["name"].startswith("auto-")
    assert len(gen.body["metadata"]["name"]) == len("auto-") + 5
