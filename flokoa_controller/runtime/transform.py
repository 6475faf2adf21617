"""Transforms applied to every object before the informer stores it or hands it to handlers.

- :func:`strip_managed_fields` drops ``metadata.managedFields`` (often the largest part of an
  object, and useless to a controller).
- :func:`secret_to_digest` turns a core/v1 Secret into a payload-free summary: its metadata
  (without managedFields and without kubectl's last-applied-configuration annotation, which
  holds a copy of the data when a Secret was created with ``kubectl apply``), its ``type``,
  ``immutable``, and ``digests``: the SHA-256 of each value plus an overall digest. A
  controller sees *that* a Secret changed and which keys it has, never what the values are.
- :func:`intern_strings` makes equal strings of cached objects one string object: the
  conditions of 10,000 objects repeat the same reasons, messages, timestamps, apiVersion and
  namespace, and sharing them saves about 1.7 KiB per ModelProvider (17 MiB at 10,000).
- :func:`chain` composes transforms; :func:`default_transform` is what every informer applies.

Transforms return a new dictionary (shallow copies where they change something), so an
object still referenced elsewhere is never changed behind its owner's back; the one
exception, :func:`intern_strings`, replaces strings by equal strings, which nobody can
observe.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "DIGEST_FIELD",
    "INTERNING_FREES",
    "INTERN_MAX_LENGTH",
    "LAST_APPLIED_ANNOTATION",
    "OVERALL_DIGEST_KEY",
    "Transform",
    "chain",
    "data_digests",
    "default_transform",
    "intern_strings",
    "is_secret",
    "secret_data",
    "secret_to_digest",
    "strip_managed_fields",
]

Transform = Callable[[dict[str, Any]], dict[str, Any]]
"""A function from an object as the API server sent it to the object the cache keeps."""

LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
"""kubectl's client-side apply annotation: a full copy of the applied object, data included."""

DIGEST_FIELD = "digests"
"""Top-level field of a digested Secret: ``{key: sha256 hex}`` for each data key."""

OVERALL_DIGEST_KEY = "digest"
"""Top-level field of a digested Secret: one SHA-256 over every key and value digest."""

_SECRET_DROPPED_FIELDS = frozenset({"data", "stringData"})


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


def _value_bytes(value: object) -> bytes:
    """The bytes of one ``data`` value (base64 as sent); undecodable text is hashed as is."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return value.encode()
    return repr(value).encode()


def secret_data(obj: Mapping[str, Any]) -> dict[str, object]:
    """A Secret's ``data`` with ``stringData`` folded in, as the API server does on write.

    ``stringData`` values override ``data`` keys of the same name (base64-encoded here, like
    ``data``). Malformed fields (not objects) count as empty, so a hand-made object cannot
    break a reader.
    """
    data = obj.get("data")
    values: dict[str, object] = (
        {str(k): v for k, v in data.items()} if isinstance(data, Mapping) else {}
    )
    string_data = obj.get("stringData")
    if isinstance(string_data, Mapping):
        for key, text in string_data.items():
            values[str(key)] = base64.b64encode(str(text).encode()).decode()
    return values


def data_digests(data: Mapping[str, object]) -> dict[str, str]:
    """Return ``{key: sha256 hex of the decoded value}`` for a Secret's ``data``."""
    return {key: hashlib.sha256(_value_bytes(value)).hexdigest() for key, value in data.items()}


def _overall_digest(digests: Mapping[str, str]) -> str:
    h = hashlib.sha256()
    for key in sorted(digests):
        h.update(key.encode())
        h.update(b"\0")
        h.update(digests[key].encode())
        h.update(b"\n")
    return h.hexdigest()


def secret_to_digest(obj: dict[str, Any]) -> dict[str, Any]:
    """Return a payload-free summary of a Secret (see the module docstring).

    ``stringData`` (only ever present in write requests) is folded in the way the API server
    does: it overrides ``data`` keys of the same name. Nothing of the values survives except
    their SHA-256 digests. An object that is already a digest is returned unchanged.
    """
    if DIGEST_FIELD in obj and "data" not in obj and "stringData" not in obj:
        return obj
    values = secret_data(obj)
    out = {k: v for k, v in obj.items() if k not in _SECRET_DROPPED_FIELDS}
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        meta = {k: v for k, v in metadata.items() if k != "managedFields"}
        annotations = meta.get("annotations")
        if isinstance(annotations, dict) and LAST_APPLIED_ANNOTATION in annotations:
            meta["annotations"] = {
                k: v for k, v in annotations.items() if k != LAST_APPLIED_ANNOTATION
            }
        out["metadata"] = meta
    digests = data_digests(values)
    out[DIGEST_FIELD] = digests
    out[OVERALL_DIGEST_KEY] = _overall_digest(digests)
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
    """What every informer applies last: strip managedFields and intern strings; digest
    Secrets (their digests are unique: nothing to share).

    Secrets are recognised by their ``apiVersion``/``kind``, so no caller can forget the
    digest: the cache never holds a Secret payload, whichever transform a user adds.
    """
    if is_secret(obj):
        return secret_to_digest(obj)
    return intern_strings(strip_managed_fields(obj))
