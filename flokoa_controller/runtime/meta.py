"""Object metadata accessors (apimachinery's `meta.Accessor`) for decoded objects.

Every layer above reads ``metadata.uid`` and ``metadata.resourceVersion`` of a JSON object
through these, so a missing or malformed ``metadata`` means the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["metadata_of", "resource_version_of", "uid_of"]


def metadata_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``obj``'s ``metadata`` (empty when it is missing or not an object)."""
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def uid_of(obj: Mapping[str, Any]) -> str:
    """``obj``'s ``metadata.uid`` ("" when unset or not a string)."""
    uid = metadata_of(obj).get("uid")
    return uid if isinstance(uid, str) else ""


def resource_version_of(obj: Mapping[str, Any]) -> str:
    """``obj``'s ``metadata.resourceVersion`` ("" when unset)."""
    return str(metadata_of(obj).get("resourceVersion") or "")
