"""An approximation of ``metadata.managedFields`` (server-side field tracking).

kube-apiserver records, per field manager and operation, the set of fields it wrote
(``FieldsV1``). Controllers mostly strip this; tests only need it present and plausible. Here a
manager owns every field it set on create and the fields it changed on later writes; ownership
is not taken away from other managers and there is no conflict detection (see the README's list
of differences).
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

_SYSTEM_META = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
        "generateName",
    }
)


def _fields(value: Any, old: Any, *, root: bool = False, meta: bool = False) -> JSON | None:
    """FieldsV1 for ``value`` restricted to what differs from ``old`` (None: nothing)."""
    if isinstance(value, dict):
        out: JSON = {}
        old_map = old if isinstance(old, dict) else {}
        for key, child in value.items():
            if root and key in ("apiVersion", "kind"):
                continue
            if meta and key in _SYSTEM_META:
                continue
            sub = _fields(child, old_map.get(key, _MISSING), meta=root and key == "metadata")
            if sub is not None:
                out[f"f:{key}"] = sub
        if not out:
            return None if old is not _MISSING else ({} if not root and not meta else None)
        if not root and not meta and old is _MISSING:
            out = {".": {}, **out}
        return out
    if old is not _MISSING and old == value:
        return None
    return {}


class _Missing:
    pass


_MISSING: Any = _Missing()


def _merge(a: JSON, b: JSON) -> JSON:
    out = dict(a)
    for key, value in b.items():
        if key in out and isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def record(
    obj: JSON,
    old: JSON | None,
    *,
    manager: str,
    operation: str,
    api_version: str,
    time: str,
    subresource: str = "",
    status_separate: bool = False,
) -> None:
    """Update ``obj['metadata']['managedFields']`` for a write by ``manager``."""
    meta = obj.setdefault("metadata", {})
    entries: list[JSON] = [
        dict(e)
        for e in ((old or {}).get("metadata", {}).get("managedFields") or [])
        if isinstance(e, dict)
    ]
    if subresource == "status":
        scope = {"status": obj["status"]} if "status" in obj else {}
        old_scope: Any = {"status": old["status"]} if old and "status" in old else {}
    else:
        scope = {k: v for k, v in obj.items() if not (status_separate and k == "status")}
        old_scope = _MISSING
        if old is not None:
            old_scope = {k: v for k, v in old.items() if not (status_separate and k == "status")}
    fields = _fields(scope, old_scope, root=True)
    if fields:
        for entry in entries:
            if (
                entry.get("manager") == manager
                and entry.get("operation") == operation
                and entry.get("subresource", "") == subresource
            ):
                entry["fieldsV1"] = _merge(entry.get("fieldsV1") or {}, fields)
                entry["time"] = time
                entry["apiVersion"] = api_version
                break
        else:
            entry = {
                "manager": manager,
                "operation": operation,
                "apiVersion": api_version,
                "time": time,
                "fieldsType": "FieldsV1",
                "fieldsV1": fields,
            }
            if subresource:
                entry["subresource"] = subresource
            entries.append(entry)
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)


def manager_from_user_agent(user_agent: str) -> str:
    """kube's default field manager: the user agent up to the first ``/`` (128 chars max)."""
    return (user_agent.split("/")[0] or "unknown")[:128]
