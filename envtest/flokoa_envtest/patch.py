"""The three PATCH flavours kube-apiserver accepts: JSON merge patch, JSON patch, strategic merge.

* ``application/merge-patch+json`` — RFC 7386: maps merge recursively, ``null`` deletes, lists
  and scalars replace.
* ``application/json-patch+json`` — RFC 6902 operations (add, remove, replace, move, copy, test).
* ``application/strategic-merge-patch+json`` — kube's flavour for built-in types: like a merge
  patch, except lists that the Go types tag with a patch strategy merge (by key for object
  lists such as ``metadata.ownerReferences``, by value for ``metadata.finalizers``), and the
  ``$patch``, ``$deleteFromPrimitiveList/…``, ``$setElementOrder/…`` and ``$retainKeys``
  directives are honoured.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from flokoa_envtest.errors import StatusError, bad_request, status_body

JSON = dict[str, Any]

MERGE_BY_VALUE = ""
"""Marker merge key of a list of primitives merged as a set (``patchStrategy: merge``)."""

ListStrategies = Mapping[str, str]
"""Dotted field path (list items not counted) → merge key (:data:`MERGE_BY_VALUE` for sets)."""


UNPROCESSABLE_MESSAGE = "the server rejected our request due to an error in our request"
"""What kube-apiserver says for every JSON patch that decodes but cannot be applied."""


def unprocessable(detail: str) -> StatusError:
    """422 for a patch that is well formed but cannot be applied.

    kube answers these with a generic ``Invalid`` Status (empty details, no cause) whatever
    went wrong (a failed ``test``, a missing path, an unknown op); ``detail`` says what did,
    for the exception's ``repr`` only.
    """
    error = StatusError(status_body(422, "Invalid", UNPROCESSABLE_MESSAGE, {}))
    error.add_note(detail)
    return error


# --- RFC 7386 ------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply a JSON merge patch to ``target`` (not modified) and return the result."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: JSON = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = merge_patch(result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    return result


# --- RFC 6902 ------------------------------------------------------------------------------


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise unprocessable(f"invalid JSON patch path {path!r}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise unprocessable(f'JSON pointer must be empty or start with a "/": {path!r}')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for p in parts:
        if isinstance(cur, dict):
            if p not in cur:
                raise unprocessable(f"doc is missing path: {path!r}: missing value")
            cur = cur[p]
        elif isinstance(cur, list):
            idx = _index(p, len(cur), path, allow_end=False)
            cur = cur[idx]
        else:
            raise unprocessable(f"doc is missing path: {path!r}: missing value")
    return cur


def _index(token: str, length: int, path: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise unprocessable(f"invalid array index {token!r} in {path!r}")
    idx = int(token)
    limit = length if allow_end else length - 1
    if idx > limit:
        raise unprocessable(f"array index out of bounds: {idx} in {path!r}")
    return idx


def _add(doc: Any, parts: list[str], value: Any, path: str) -> Any:
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), path, allow_end=True), value)
    else:
        raise unprocessable(f"add operation does not apply: doc is missing path: {path!r}")
    return doc


def _remove(doc: Any, parts: list[str], path: str) -> tuple[Any, Any]:
    if not parts:
        raise unprocessable("remove operation does not apply to the document root")
    parent = _resolve(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise unprocessable(f"remove operation does not apply: doc is missing path: {path!r}")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(last, len(parent), path, allow_end=False))
    raise unprocessable(f"remove operation does not apply: doc is missing path: {path!r}")


def json_patch(target: Any, ops: Any) -> Any:
    """Apply RFC 6902 ``ops`` to a copy of ``target``.

    Follows the library kube-apiserver uses: a body that does not decode as a list of
    operation objects is a 400; any operation that cannot be applied (unknown op, missing
    path, failed ``test``) is kube's generic 422; a missing ``value`` means ``null``, and
    ``test`` of ``null`` passes on an absent member.
    """
    if not isinstance(ops, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    if not all(isinstance(op, dict) for op in ops):
        raise bad_request("json: cannot unmarshal into Go value of type jsonpatch.Operation")
    doc = copy.deepcopy(target)
    for op in ops:
        kind = op.get("op")
        path = op.get("path")
        value = copy.deepcopy(op.get("value"))
        if kind == "add":
            doc = _add(doc, _pointer(path), value, str(path))
        elif kind == "remove":
            doc, _ = _remove(doc, _pointer(path), str(path))
        elif kind == "replace":
            parts = _pointer(path)
            _resolve(doc, parts, str(path))  # must exist
            if parts:
                doc, _ = _remove(doc, parts, str(path))
            doc = _add(doc, parts, value, str(path))
        elif kind in ("move", "copy"):
            src = _pointer(op.get("from"))
            moved = copy.deepcopy(_resolve(doc, src, str(op.get("from"))))
            if kind == "move":
                doc, moved = _remove(doc, src, str(op.get("from")))
            doc = _add(doc, _pointer(path), moved, str(path))
        elif kind == "test":
            _test(doc, _pointer(path), value, str(path))
        else:
            raise unprocessable(f"Unexpected kind: {kind}")
    return doc


def _test(doc: Any, parts: list[str], expected: Any, path: str) -> None:
    if parts:
        parent = _resolve(doc, parts[:-1], path)
        if isinstance(parent, dict) and parts[-1] not in parent:
            if expected is None:
                return  # an absent member tests equal to null
            raise unprocessable(f"testing value {path} failed: test failed")
    actual = _resolve(doc, parts, path)
    if not _json_equal(actual, expected):
        raise unprocessable(f"testing value {path} failed: test failed")


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality (unlike Python's ``==``, ``true`` is not ``1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


# --- strategic merge patch -----------------------------------------------------------------

_DELETE_PREFIX = "$deleteFromPrimitiveList/"
_ORDER_PREFIX = "$setElementOrder/"


def strategic_merge_patch(target: Any, patch: Any, strategies: ListStrategies) -> Any:
    """Apply a strategic merge patch using the per-field list ``strategies`` of the kind."""
    return _smp(copy.deepcopy(target), patch, strategies, "")


def _smp(target: Any, patch: Any, strategies: ListStrategies, path: str) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    if directive not in (None, "merge"):
        raise bad_request(f"Unknown patch type: {directive}")
    result: JSON = target if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith(_DELETE_PREFIX):
            field = key[len(_DELETE_PREFIX) :]
            current = result.get(field)
            if isinstance(current, list) and isinstance(value, list):
                result[field] = [v for v in current if v not in value]
            continue
        if key.startswith(_ORDER_PREFIX):
            if isinstance(value, list):
                orders[key[len(_ORDER_PREFIX) :]] = value
            continue
        child = f"{path}.{key}" if path else key
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _smp(result.get(key), value, strategies, child)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and child in strategies:
            result[key] = _merge_list(result.get(key), value, strategies[child], strategies, child)
        else:
            result[key] = copy.deepcopy(value)
    for field, order in orders.items():
        current = result.get(field)
        child = f"{path}.{field}" if path else field
        if isinstance(current, list) and child in strategies:
            result[field] = _reorder(current, order, strategies[child])
    if isinstance(retain, list):
        keep = set(retain)
        for key in list(result):
            if key not in keep:
                del result[key]
    return result


def _merge_list(
    current: Any, patch: list[Any], merge_key: str, strategies: ListStrategies, path: str
) -> list[Any]:
    existing: list[Any] = list(current) if isinstance(current, list) else []
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    if merge_key == MERGE_BY_VALUE:
        for item in patch:
            if item not in existing:
                existing.append(copy.deepcopy(item))
        return existing
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise bad_request(f"map: {item!r} does not contain declared merge key: {merge_key}")
        key_value = item[merge_key]
        idx = next(
            (
                i
                for i, e in enumerate(existing)
                if isinstance(e, dict) and e.get(merge_key) == key_value
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if idx is not None:
                existing.pop(idx)
            continue
        if idx is None:
            existing.append({k: copy.deepcopy(v) for k, v in item.items() if k != "$patch"})
        else:
            existing[idx] = _smp(existing[idx], item, strategies, path)
    return existing


def _reorder(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    def key_of(item: Any) -> Any:
        if merge_key == MERGE_BY_VALUE or not isinstance(item, dict):
            return item
        return item.get(merge_key)

    wanted = [key_of(o) for o in order]
    rank = {repr(k): i for i, k in enumerate(wanted)}
    return sorted(items, key=lambda it: rank.get(repr(key_of(it)), len(rank)))


OBJECT_META_STRATEGIES: dict[str, str] = {
    "metadata.ownerReferences": "uid",
    "metadata.finalizers": MERGE_BY_VALUE,
}
"""List strategies of ``ObjectMeta`` shared by every built-in kind."""
