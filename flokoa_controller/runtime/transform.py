"""Transforms applied to every object before the informer stores it or hands it to handlers.

- :func:`strip_managed_fields` drops ``metadata.managedFields`` (often the largest part of an
  object, and useless to a controller).
- :func:`strip_secret_payload` is the floor under every Secret the cache holds: no ``data``,
  no ``stringData``, no managedFields and no kubectl last-applied-configuration annotation
  (which holds a copy of the data when a Secret was created with ``kubectl apply``). What a
  controller keeps of a Secret instead (the controllers here keep SHA-256 digests, see
  ``controllers/secret_digest.py``) is its own transform, handed to the informer; this floor
  runs after it, so no transform can bring a payload into the cache.
- :func:`intern_strings` makes equal strings of cached objects one string object: the
  conditions of 10,000 objects repeat the same reasons, messages, timestamps, apiVersion and
  namespace, and sharing them saves about 1.7 KiB per ModelProvider (17 MiB at 10,000).
- :func:`chain` composes transforms; :func:`default_transform` is what every informer applies
  last.

Transforms return a new dictionary (shallow copies where they change something), so an
object still referenced elsewhere is never changed behind its owner's back; the one
exception, :func:`intern_strings`, replaces strings by equal strings, which nobody can
observe.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "INTERNING_FREES",
    "INTERN_MAX_LENGTH",
    "LAST_APPLIED_ANNOTATION",
    "SECRET_PAYLOAD_FIELDS",
    "Transform",
    "chain",
    "default_transform",
    "intern_strings",
    "is_secret",
    "strip_managed_fields",
    "strip_secret_payload",
]

Transform = Callable[[dict[str, Any]], dict[str, Any]]
"""A function from an object as the API server sent it to the object the cache keeps."""

LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
"""kubectl's client-side apply annotation: a full copy of the applied object, data included."""

SECRET_PAYLOAD_FIELDS = frozenset({"data", "stringData"})
"""The top-level fields of a Secret that hold its values."""


INTERN_MAX_LENGTH = 256
"""Longer strings are left alone (rarely shared, and costly to hash)."""

INTERNING_FREES = not ((3, 12) <= sys.version_info[:3] < (3, 12, 6))
"""Whether interned strings are freed with their last user. Python 3.12.0 to 3.12.5 made them
immortal (cpython gh-113993, fixed in 3.12.6 and 3.13): there every resourceVersion and
timestamp interned would stay forever, so :func:`intern_strings` does nothing."""


def intern_strings(obj: dict[str, Any]) -> dict[str, Any]:
    """Replace every string value of ``obj`` (nested too) of at most
    :data:`INTERN_MAX_LENGTH` characters by the interned equal string; return ``obj``.

    In place, but unobservable: each value is replaced by an equal one. Interned strings
    are freed with their last user, so unique values (names, UIDs) cost only their entry
    in the interpreter's table while cached. Keys need nothing: the JSON decoder already
    shares them.
    """
    if not INTERNING_FREES:
        return obj
    intern = sys.intern
    stack: list[Any] = [obj]
    while stack:
        node = stack.pop()
        pairs = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in pairs:
            if type(value) is str:
                if len(value) <= INTERN_MAX_LENGTH:
                    node[key] = intern(value)
            elif isinstance(value, dict | list):
                stack.append(value)
    return obj


def strip_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """Return ``obj`` without ``metadata.managedFields`` (``obj`` itself if it has none)."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or "managedFields" not in metadata:
        return obj
    out = dict(obj)
    out["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return out


def is_secret(obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` is a core/v1 Secret (by ``apiVersion`` and ``kind``)."""
    return obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def strip_secret_payload(obj: dict[str, Any]) -> dict[str, Any]:
    """A Secret without its values: no ``data``, ``stringData``, managedFields or kubectl's
    last-applied-configuration annotation; everything else (and whatever a controller's
    transform put in their place) as it was. A copy when anything goes (``obj`` is not
    changed); ``obj`` itself when nothing does (a Secret already stripped, as the informer
    sees it again after the controllers' transform)."""
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if (
        not obj.keys() & SECRET_PAYLOAD_FIELDS
        and not (isinstance(metadata, dict) and "managedFields" in metadata)
        and not (isinstance(annotations, dict) and LAST_APPLIED_ANNOTATION in annotations)
    ):
        return obj
    out = {k: v for k, v in obj.items() if k not in SECRET_PAYLOAD_FIELDS}
    if isinstance(metadata, dict):
        meta = {k: v for k, v in metadata.items() if k != "managedFields"}
        if isinstance(annotations, dict) and LAST_APPLIED_ANNOTATION in annotations:
            meta["annotations"] = {
                k: v for k, v in annotations.items() if k != LAST_APPLIED_ANNOTATION
            }
        out["metadata"] = meta
    return out


def chain(*transforms: Transform | None) -> Transform:
    """Compose transforms left to right (``None`` entries are skipped)."""
    steps = [t for t in transforms if t is not None]

    def composed(obj: dict[str, Any]) -> dict[str, Any]:
        for step in steps:
            obj = step(obj)
        return obj

    return composed


def default_transform(obj: dict[str, Any]) -> dict[str, Any]:
    """What every informer applies last: strip managedFields and intern strings; strip the
    payload of Secrets (what is left of them is unique: nothing to share).

    Secrets are recognised by their ``apiVersion``/``kind``, so no caller can forget it: the
    cache never holds a Secret payload, whichever transform a user adds.
    """
    if is_secret(obj):
        return strip_secret_payload(obj)
    return intern_strings(strip_managed_fields(obj))
