"""API discovery documents, aggregated (apidiscovery.k8s.io/v2, v2beta1) and legacy.

Built from the live :class:`~flokoa_envtest.resources.Registry`, so they follow CRDs
as they are established and deleted.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flokoa_envtest.resources import Registry, ResourceInfo

JSON = dict[str, Any]

SUBRESOURCE_VERBS: dict[str, tuple[str, ...]] = {
    "status": ("get", "patch", "update"),
    "finalize": ("update",),
    "token": ("create",),
}

SUBRESOURCE_KINDS: dict[str, tuple[str, str, str]] = {
    "token": ("authentication.k8s.io", "v1", "TokenRequest"),
}
"""Subresources answering another kind than their resource: (group, version, kind)."""


def _subresource_kind(info: ResourceInfo, sub: str) -> JSON:
    group, version, kind = SUBRESOURCE_KINDS.get(sub, (info.group, info.version, info.kind))
    return {"group": group, "version": version, "kind": kind}


def _storage_version_hash(info: ResourceInfo) -> str:
    digest = hashlib.sha256(f"{info.group}/{info.version}/{info.kind}".encode()).digest()
    import base64

    return base64.b64encode(digest[:8]).decode()


def _aggregated_resource(info: ResourceInfo) -> JSON:
    kind = {"group": info.group, "version": info.version, "kind": info.kind}
    entry: JSON = {
        "resource": info.plural,
        "responseKind": kind,
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "singularResource": info.singular,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    if info.subresources:
        entry["subresources"] = [
            {
                "subresource": sub,
                "responseKind": _subresource_kind(info, sub),
                "verbs": list(SUBRESOURCE_VERBS.get(sub, ("get",))),
            }
            for sub in info.subresources
        ]
    return entry


def aggregated(registry: Registry, *, core: bool, api_version: str) -> JSON:
    """``APIGroupDiscoveryList`` for ``/api`` (``core``) or ``/apis``."""
    items: list[JSON] = []
    for group in registry.groups():
        if (group == "") != core:
            continue
        versions = []
        for version in registry.versions(group):
            resources = sorted(registry.resources(group, version), key=lambda i: i.plural)
            versions.append(
                {
                    "version": version,
                    "resources": [_aggregated_resource(i) for i in resources],
                    "freshness": "Current",
                }
            )
        meta: JSON = {"creationTimestamp": None}
        if group:
            meta = {"name": group, "creationTimestamp": None}
        items.append({"metadata": meta, "versions": versions})
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": api_version,
        "metadata": {},
        "items": items,
    }


def api_versions(server_address: str) -> JSON:
    """Legacy ``/api``: ``APIVersions``."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(registry: Registry, group: str) -> JSON:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in registry.versions(group)]
    return {
        "name": group,
        "versions": versions,
        "preferredVersion": versions[0] if versions else {},
    }


def api_group_list(registry: Registry) -> JSON:
    """Legacy ``/apis``: ``APIGroupList``."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(registry, g) for g in registry.groups() if g],
    }


def api_group(registry: Registry, group: str) -> JSON | None:
    """Legacy ``/apis/G``: ``APIGroup`` (None when the group is not served)."""
    if group not in registry.groups() or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(registry, group)}


def api_resource_list(registry: Registry, group: str, version: str) -> JSON | None:
    """Legacy ``/api/v1`` or ``/apis/G/V``: ``APIResourceList`` (None when not served)."""
    if version not in registry.versions(group):
        return None
    resources: list[JSON] = []
    for info in sorted(registry.resources(group, version), key=lambda i: i.plural):
        entry: JSON = {
            "name": info.plural,
            "singularName": info.singular,
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": list(info.verbs),
        }
        if info.short_names:
            entry["shortNames"] = list(info.short_names)
        if info.categories:
            entry["categories"] = list(info.categories)
        entry["storageVersionHash"] = _storage_version_hash(info)
        resources.append(entry)
        for sub in info.subresources:
            sub_entry: JSON = {
                "name": f"{info.plural}/{sub}",
                "singularName": "",
                "namespaced": info.namespaced,
                "kind": info.kind,
                "verbs": list(SUBRESOURCE_VERBS.get(sub, ("get",))),
            }
            if sub in SUBRESOURCE_KINDS:
                group_, version_, kind_ = SUBRESOURCE_KINDS[sub]
                sub_entry.update(group=group_, version=version_, kind=kind_)
            resources.append(sub_entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
