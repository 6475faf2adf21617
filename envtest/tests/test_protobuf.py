"""Protobuf request bodies: hand-built envelopes, malformed input, what kubectl really sends."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from flokoa_envtest.protobuf import MAGIC, decode_object, iter_fields
from flokoa_envtest.testing import Kubectl

MakeKubectl = Callable[[Path], Kubectl]

# --- a tiny protobuf encoder (the test's own, independent of the decoder) -------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_bytes(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def field_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def entry(number: int, key: str, value: bytes | str) -> bytes:
    return field_bytes(number, field_bytes(1, key) + field_bytes(2, value))


def envelope(api_version: str, kind: str, raw: bytes, encoding: str = "") -> bytes:
    type_meta = field_bytes(1, api_version) + field_bytes(2, kind)
    body = (
        field_bytes(1, type_meta)
        + field_bytes(2, raw)
        + field_bytes(3, encoding)
        + field_bytes(4, "")
    )
    return MAGIC + body


def object_meta() -> bytes:
    created = field_varint(1, 1_767_225_600)  # 2026-01-01T00:00:00Z
    owner = (
        field_bytes(1, "ModelProvider")
        + field_bytes(3, "p")
        + field_bytes(4, "uid-1")
        + field_bytes(5, "agent.flokoa.ai/v1alpha1")
        + field_varint(6, 1)
    )
    return (
        field_bytes(1, "creds")
        + field_bytes(2, "")
        + field_bytes(3, "team-a")
        + field_bytes(4, "")
        + field_bytes(5, "")
        + field_bytes(6, "")
        + field_varint(7, 0)
        + field_bytes(8, created)
        + field_bytes(9, b"")
        + field_varint(10, (1 << 64) - 5)  # int64 -5, two's complement
        + entry(11, "app", "flokoa")
        + entry(11, "tier", "llm")
        + entry(12, "note", "ünïcode")
        + field_bytes(13, owner)
        + field_bytes(14, "example.com/finalizer")
    )


def test_a_secret_with_every_field() -> None:
    raw = (
        field_bytes(1, object_meta())
        + entry(2, "api-key", b"sk-\x00\xff")
        + entry(2, "empty", b"")
        + field_bytes(3, "kubernetes.io/basic-auth")
        + entry(4, "username", "admin")
        + field_varint(5, 1)
    )
    assert decode_object(envelope("v1", "Secret", raw)) == {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {
            "name": "creds",
            "namespace": "team-a",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "deletionGracePeriodSeconds": -5,
            "labels": {"app": "flokoa", "tier": "llm"},
            "annotations": {"note": "ünïcode"},
            "ownerReferences": [
                {
                    "kind": "ModelProvider",
                    "name": "p",
                    "uid": "uid-1",
                    "apiVersion": "agent.flokoa.ai/v1alpha1",
                    "controller": True,
                }
            ],
            "finalizers": ["example.com/finalizer"],
        },
        "data": {"api-key": base64.b64encode(b"sk-\x00\xff").decode(), "empty": ""},
        "type": "kubernetes.io/basic-auth",
        "stringData": {"username": "admin"},
        "immutable": True,
    }


def test_configmap_namespace_and_serviceaccount() -> None:
    meta = field_bytes(1, field_bytes(1, "x"))
    configmap = meta + entry(2, "a", "b") + entry(3, "bin", b"\x01") + field_varint(4, 0)
    assert decode_object(envelope("v1", "ConfigMap", configmap)) == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "x"},
        "data": {"a": "b"},
        "binaryData": {"bin": "AQ=="},
        "immutable": False,
    }
    namespace = (
        meta
        + field_bytes(2, field_bytes(1, "kubernetes"))
        + field_bytes(3, field_bytes(1, "Active"))
    )
    assert decode_object(envelope("v1", "Namespace", namespace))["spec"] == {
        "finalizers": ["kubernetes"]
    }
    account = (
        meta
        + field_bytes(2, field_bytes(3, "token"))
        + field_bytes(3, field_bytes(1, "pull"))
        + field_varint(4, 1)
    )
    assert decode_object(envelope("v1", "ServiceAccount", account)) == {
        "kind": "ServiceAccount",
        "apiVersion": "v1",
        "metadata": {"name": "x"},
        "secrets": [{"name": "token"}],
        "imagePullSecrets": [{"name": "pull"}],
        "automountServiceAccountToken": True,
    }


def test_token_request() -> None:
    """What ``kubectl create token --audience a --audience b --duration 10m`` encodes."""
    bound = (
        field_bytes(1, "Secret") + field_bytes(2, "v1") + field_bytes(3, "s") + field_bytes(4, "u")
    )
    spec = field_bytes(1, "a") + field_bytes(1, "b") + field_bytes(3, bound) + field_varint(4, 600)
    raw = field_bytes(1, b"") + field_bytes(2, spec) + field_bytes(3, field_bytes(1, ""))
    assert decode_object(envelope("authentication.k8s.io/v1", "TokenRequest", raw)) == {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {},
        "spec": {
            "audiences": ["a", "b"],
            "boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": "s", "uid": "u"},
            "expirationSeconds": 600,
        },
    }


def test_unknown_fields_and_wire_types_are_skipped() -> None:
    raw = (
        field_bytes(1, field_bytes(1, "x") + field_varint(99, 7))
        + varint(50 << 3 | 5)
        + b"\x00" * 4
    )
    raw += varint(51 << 3 | 1) + b"\x00" * 8
    assert decode_object(envelope("v1", "Secret", raw))["metadata"] == {"name": "x"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"kind": "Secret"}', "(missing the k8s\\x00 prefix)"),
        (
            envelope("apps/v1", "Deployment", b""),
            "Deployment (apps/v1) from protobuf is not supported",
        ),
        (
            envelope("v1", "Secret", b"", encoding="gzip"),
            "content encoding 'gzip' is not supported",
        ),
        (MAGIC + field_bytes(2, b"abc")[:-1], "truncated"),
        (MAGIC + b"\x80", "truncated"),
        (envelope("v1", "Secret", varint(1 << 3 | 3)), "unsupported protobuf wire type 3"),
    ],
)
def test_malformed_bodies(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        decode_object(body)


def test_iter_fields_reads_every_wire_type() -> None:
    data = (
        field_varint(1, 300) + field_bytes(2, "hi") + varint(3 << 3 | 5) + (7).to_bytes(4, "little")
    )
    assert list(iter_fields(data)) == [(1, 0, 300), (2, 2, b"hi"), (3, 5, 7)]


# --- the real kubectl -----------------------------------------------------------------------


def resource(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "singularName": kind.lower(), "namespaced": True, "kind": kind,
            "verbs": ["create", "get"]}  # fmt: skip


RESOURCES = [resource("secrets", "Secret"), resource("configmaps", "ConfigMap")]


async def capture_posts(tmp_path: Path) -> tuple[web.AppRunner, int, list[tuple[str, str, bytes]]]:
    posts: list[tuple[str, str, bytes]] = []

    async def version(_: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "32", "gitVersion": "v1.32.0"})

    async def api(_: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"]})

    async def apis(_: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})

    async def api_v1(_: web.Request) -> web.Response:
        return web.json_response(
            {"kind": "APIResourceList", "groupVersion": "v1", "resources": RESOURCES}
        )

    async def create(request: web.Request) -> web.Response:
        body = await request.read()
        posts.append((request.path_qs, request.content_type, body))
        created: dict[str, Any] = decode_object(body)
        created["metadata"].setdefault("namespace", request.match_info["ns"])
        return web.json_response(created, status=201)

    app = web.Application()
    app.router.add_get("/version", version)
    app.router.add_get("/api", api)
    app.router.add_get("/apis", apis)
    app.router.add_get("/api/v1", api_v1)
    app.router.add_post("/api/v1/namespaces/{ns}/{resource}", create)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return runner, port, posts


def write_kubeconfig(tmp_path: Path, port: int) -> Path:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u, namespace: default}}]\n"
        "current-context: x\n"
    )
    return kubeconfig


async def test_kubectl_create_secret_generic_posts_a_decodable_secret(
    tmp_path: Path, make_kubectl: MakeKubectl
) -> None:
    runner, port, posts = await capture_posts(tmp_path)
    try:
        kubectl = make_kubectl(write_kubeconfig(tmp_path, port))
        out = await kubectl(
            "create", "secret", "generic", "openai-credentials",
            "--from-literal=api-key=sk-proj-xxx", "--from-literal=b=y",
            within=120,
        )  # fmt: skip
        assert "secret/openai-credentials created" in out.stdout
        out = await kubectl("create", "configmap", "settings", "--from-literal=a=b", within=120)
        assert "configmap/settings created" in out.stdout
    finally:
        await runner.cleanup()
    (secret_path, secret_type, secret_body), (cm_path, _, cm_body) = posts
    assert (
        secret_path
        == "/api/v1/namespaces/default/secrets?fieldManager=kubectl-create&fieldValidation=Strict"
    )
    assert secret_type == "application/vnd.kubernetes.protobuf"
    assert decode_object(secret_body) == {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": "openai-credentials"},
        "data": {"api-key": base64.b64encode(b"sk-proj-xxx").decode(), "b": "eQ=="},
    }
    assert cm_path.startswith("/api/v1/namespaces/default/configmaps?")
    assert decode_object(cm_body) == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "settings"},
        "data": {"a": "b"},
    }
