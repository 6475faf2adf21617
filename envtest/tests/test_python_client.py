"""The `kubernetes` Python client (which nobody here wrote) against envtest, unchanged.

Its calls block, so they run in a worker thread while the server serves on the test's loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from flokoa_envtest import APIServer
from flokoa_envtest.testing import Cluster
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

T = TypeVar("T")
GROUP, VERSION = "agent.flokoa.ai", "v1alpha1"


def api_client(kubeconfig: Path) -> Any:
    return config.new_client_from_config(config_file=str(kubeconfig))


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


def provider(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelProvider",
        "metadata": {"name": name, "labels": {"team": "a"}},
        "spec": {"apiKeySecretRef": {"name": "creds"}, "openai": {}},
    }


async def test_crud_on_built_ins(envtest: APIServer) -> None:
    core = client.CoreV1Api(api_client(envtest.kubeconfig_path))
    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="settings", labels={"app": "x"}), data={"a": "1"}
    )
    created = await call(core.create_namespaced_config_map, "default", body)
    assert created.metadata.uid
    assert created.metadata.resource_version
    got = await call(core.read_namespaced_config_map, "settings", "default")
    got.data["b"] = "2"
    replaced = await call(core.replace_namespaced_config_map, "settings", "default", got)
    assert replaced.data == {"a": "1", "b": "2"}
    patched = await call(
        core.patch_namespaced_config_map, "settings", "default", {"data": {"a": None}}
    )
    assert patched.data == {"b": "2"}
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="creds"), string_data={"k": "v"})
    made = await call(core.create_namespaced_secret, "default", secret)
    assert made.data == {"k": "dg=="}
    assert made.type == "Opaque"
    assert made.string_data is None
    listed = await call(core.list_namespaced_config_map, "default", label_selector="app=x")
    assert [i.metadata.name for i in listed.items] == ["settings"]
    with pytest.raises(ApiException) as exc:
        await call(core.create_namespaced_config_map, "default", body)
    assert exc.value.status == 409
    assert json.loads(exc.value.body)["reason"] == "AlreadyExists"
    await call(core.delete_namespaced_config_map, "settings", "default")
    with pytest.raises(ApiException) as exc:
        await call(core.read_namespaced_config_map, "settings", "default")
    assert exc.value.status == 404


async def test_crud_on_custom_objects(cluster: Cluster) -> None:
    custom = client.CustomObjectsApi(api_client(cluster.kubeconfig_path))
    args = (GROUP, VERSION, "default", "modelproviders")
    created = await call(custom.create_namespaced_custom_object, *args, provider("one"))
    assert created["metadata"]["generation"] == 1
    assert created["spec"]["apiKeySecretRef"]["key"] == "api-key"  # schema default
    patched = await call(
        custom.patch_namespaced_custom_object,
        *args,
        "one",
        {"spec": {"openai": {"timeoutSeconds": 9}}},
    )
    assert patched["metadata"]["generation"] == 2
    status = await call(
        custom.patch_namespaced_custom_object_status, *args, "one", {"status": {"ready": True}}
    )
    assert status["status"] == {"ready": True}
    assert status["metadata"]["generation"] == 2
    listed = await call(custom.list_namespaced_custom_object, *args, label_selector="team=a")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["one"]
    await call(custom.delete_namespaced_custom_object, *args, "one")
    with pytest.raises(ApiException) as exc:
        await call(custom.get_namespaced_custom_object, *args, "one")
    assert exc.value.status == 404


def _collect(
    stream_fn: Callable[..., Any], count: int, **kwargs: Any
) -> list[tuple[str, str, str]]:
    w = watch.Watch()
    seen: list[tuple[str, str, str]] = []
    for event in w.stream(stream_fn, **kwargs):
        obj = event["object"]
        seen.append((event["type"], obj.metadata.name, obj.metadata.resource_version))
        if len(seen) >= count:
            w.stop()
    return seen


async def test_list_then_watch_from_the_list_resource_version(envtest: APIServer) -> None:
    core = client.CoreV1Api(api_client(envtest.kubeconfig_path))
    await call(
        core.create_namespaced_config_map,
        "default",
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="before")),
    )
    listed = await call(core.list_namespaced_config_map, "default")
    rv = listed.metadata.resource_version
    for name in ("a", "b"):
        await call(
            core.create_namespaced_config_map,
            "default",
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name)),
        )
    await call(core.patch_namespaced_config_map, "a", "default", {"data": {"x": "1"}})
    events = await call(
        _collect,
        core.list_namespaced_config_map,
        3,
        namespace="default",
        resource_version=rv,
        timeout_seconds=10,
    )
    assert [(t, n) for t, n, _ in events] == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a")]
    rvs = [int(r) for _, _, r in events]
    assert rvs == sorted(rvs)
    assert rvs[0] > int(rv)


async def test_watch_from_an_expired_resource_version_raises_410() -> None:
    async with APIServer(watch_history=3) as api:
        core = client.CoreV1Api(api_client(api.kubeconfig_path))
        rv = (await call(core.list_namespaced_config_map, "default")).metadata.resource_version
        for i in range(6):
            api.create_object(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}}
            )
        with pytest.raises(ApiException) as exc:
            await call(
                _collect,
                core.list_namespaced_config_map,
                1,
                namespace="default",
                resource_version=rv,
                timeout_seconds=5,
            )
        assert exc.value.status == 410
        assert "too old resource version" in str(exc.value.reason)


async def test_lease_create_and_conflicting_update(envtest: APIServer) -> None:
    coord = client.CoordinationV1Api(api_client(envtest.kubeconfig_path))
    lease = client.V1Lease(
        metadata=client.V1ObjectMeta(name="leader"),
        spec=client.V1LeaseSpec(
            holder_identity="a", lease_duration_seconds=15, lease_transitions=0
        ),
    )
    created = await call(coord.create_namespaced_lease, "kube-system", lease)
    stale = created.metadata.resource_version
    created.spec.holder_identity = "b"
    renewed = await call(coord.replace_namespaced_lease, "leader", "kube-system", created)
    assert renewed.spec.holder_identity == "b"
    assert int(renewed.metadata.resource_version) > int(stale)
    created.metadata.resource_version = stale
    created.spec.holder_identity = "c"
    with pytest.raises(ApiException) as exc:
        await call(coord.replace_namespaced_lease, "leader", "kube-system", created)
    assert exc.value.status == 409
    body = json.loads(exc.value.body)
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on leases.coordination.k8s.io "leader": the object has '
        "been modified; please apply your changes to the latest version and try again"
    )


async def test_service_account_token_request(envtest: APIServer) -> None:
    core = client.CoreV1Api(api_client(envtest.kubeconfig_path))
    account = client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="agent"))
    await call(core.create_namespaced_service_account, "default", account)
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=["sts.amazonaws.com"], expiration_seconds=600)
    )
    answer = await call(core.create_namespaced_service_account_token, "agent", "default", request)
    assert answer.status.token.count(".") == 2
    assert answer.status.expiration_timestamp is not None
    assert answer.spec.audiences == ["sts.amazonaws.com"]
    short = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=60)
    )
    with pytest.raises(ApiException) as invalid:
        await call(core.create_namespaced_service_account_token, "agent", "default", short)
    assert invalid.value.status == 422
    with pytest.raises(ApiException) as missing:
        await call(core.create_namespaced_service_account_token, "nobody", "default", request)
    assert missing.value.status == 404
