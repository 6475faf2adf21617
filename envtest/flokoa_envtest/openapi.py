"""OpenAPI v3: the ``/openapi/v3`` index and one document per group-version.

kubectl needs, per kind it applies, a ``patch`` operation carrying
``x-kubernetes-group-version-kind`` and a ``fieldValidation`` parameter; it then leaves
validation to the server (``fieldValidation=Strict``). Custom resources get their CRD schema
as the component schema. Built-in kinds deliberately do not advertise a strategic-merge request
body, so ``kubectl apply`` computes strategic patches from its compiled-in types.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import orjson

from flokoa_envtest.resources import Registry, ResourceInfo

JSON = dict[str, Any]

_PATCH_REF = {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}
_STATUS_REF = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Status"


def gv_path(group: str, version: str) -> str:
    """The index key of a group-version (``api/v1``, ``apis/G/V``)."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _schema_name(info: ResourceInfo) -> str:
    reversed_group = ".".join(reversed(info.group.split("."))) if info.group else "io.k8s.api.core"
    return f"{reversed_group}.{info.version}.{info.kind}"


def _query(name: str, description: str) -> JSON:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": "string", "uniqueItems": True},
    }


_FIELD_VALIDATION = _query(
    "fieldValidation",
    "fieldValidation instructs the server on how to handle objects in the request "
    "(POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: Ignore, Warn, "
    "Strict.",
)
_DRY_RUN = _query("dryRun", "When present, indicates that modifications should not be persisted.")
_FIELD_MANAGER = _query(
    "fieldManager", "fieldManager is a name associated with the actor making these changes."
)


def _operations(info: ResourceInfo, ref: str) -> dict[str, JSON]:
    gvk = {"group": info.group, "version": info.version, "kind": info.kind}
    body_content = {"application/json": {"schema": {"$ref": ref}}}
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": ref}}}}}
    patch_types = [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
    ]
    base = f"{info.kind}"

    def op(action: str, description: str, **extra: Any) -> JSON:
        return {
            "description": description,
            "operationId": f"{action}{base}",
            "responses": ok,
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            **extra,
        }

    return {
        "get": op("get", f"read the specified {info.kind}"),
        "put": op(
            "put",
            f"replace the specified {info.kind}",
            parameters=[_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION],
            requestBody={"content": body_content, "required": True},
        ),
        "patch": op(
            "patch",
            f"partially update the specified {info.kind}",
            parameters=[
                _DRY_RUN,
                _FIELD_MANAGER,
                _FIELD_VALIDATION,
                _query("force", "Force is going to force Apply requests."),
            ],
            requestBody={
                "content": {t: {"schema": _PATCH_REF} for t in patch_types},
                "required": True,
            },
        ),
        "delete": op("delete", f"delete a {info.kind}", parameters=[_DRY_RUN]),
        "post": op(
            "post",
            f"create a {info.kind}",
            parameters=[_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION],
            requestBody={"content": body_content, "required": True},
        ),
        "list": op("list", f"list or watch objects of kind {info.kind}"),
    }


def group_version_document(registry: Registry, group: str, version: str) -> JSON | None:
    """The OpenAPI v3 document of one group-version (None when not served)."""
    resources = registry.resources(group, version)
    if not resources:
        return None
    paths: JSON = {}
    schemas: JSON = {
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch": {
            "description": "Patch is provided to give a concrete name and type to the "
            "Kubernetes PATCH request body.",
            "type": "object",
        },
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status": {"type": "object"},
    }
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    for info in sorted(resources, key=lambda i: i.plural):
        name = _schema_name(info)
        schema: JSON = copy.deepcopy(info.schema) if info.schema else {"type": "object"}
        schema["x-kubernetes-group-version-kind"] = [
            {"group": info.group, "version": info.version, "kind": info.kind}
        ]
        schemas[name] = schema
        ref = f"#/components/schemas/{name}"
        ops = _operations(info, ref)
        base = (
            f"{prefix}/namespaces/{{namespace}}/{info.plural}"
            if info.namespaced
            else f"{prefix}/{info.plural}"
        )
        paths[base] = {"get": ops["list"], "post": ops["post"]}
        item = {k: ops[k] for k in ("get", "put", "patch", "delete")}
        paths[f"{base}/{{name}}"] = item
        for sub in info.subresources:
            if sub == "status":
                paths[f"{base}/{{name}}/status"] = {k: ops[k] for k in ("get", "put", "patch")}
        if info.namespaced:
            paths[f"{prefix}/{info.plural}"] = {"get": ops["list"]}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


class OpenAPICache:
    """Documents and their hashes, rebuilt when the registry changes."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._generation = -1
        self._docs: dict[str, bytes] = {}

    def _refresh(self) -> None:
        if self._generation == self.registry.generation:
            return
        docs: dict[str, bytes] = {}
        for group in self.registry.groups():
            for version in self.registry.versions(group):
                doc = group_version_document(self.registry, group, version)
                if doc is not None:
                    docs[gv_path(group, version)] = orjson.dumps(doc)
        self._docs = docs
        self._generation = self.registry.generation

    def index(self) -> JSON:
        """The ``/openapi/v3`` discovery document."""
        self._refresh()
        paths = {
            key: {
                "serverRelativeURL": (
                    f"/openapi/v3/{key}?hash={hashlib.sha512(body).hexdigest().upper()}"
                )
            }
            for key, body in self._docs.items()
        }
        return {"paths": paths}

    def document(self, key: str) -> bytes | None:
        """The serialized document for ``api/v1`` or ``apis/G/V``."""
        self._refresh()
        return self._docs.get(key)
