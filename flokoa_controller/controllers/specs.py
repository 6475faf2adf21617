"""Specs as the reconcilers read them: `SpecCache` (parsed specs reused across reconciles of an
unchanged object), :func:`describe_validation_error`, :func:`provider_type_of`.

Validating a spec with pydantic on every reconcile is a visible share of the controller's
CPU: an object is reconciled again after each of its own status writes, and a Model
reconcile parses its provider's spec too. The cache keeps the parsed spec per object UID
together with the raw spec it came from; a hit needs the raw spec to be the same object or
equal to it, so a stale entry is never served (whatever the generation says). Bounded,
least recently used first out. Invalid specs are not cached (the error is raised each time).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from flokoa_controller.api.common import PROVIDER_TYPES

T = TypeVar("T")


class SpecCache(Generic[T]):
    """Parsed specs by object UID.

    - `parse`: raw spec → parsed spec; raises on an invalid spec (not cached).
    - `max_entries`: entries kept (least recently used evicted first).
    """

    def __init__(self, parse: Callable[[Mapping[str, Any]], T], max_entries: int = 4096) -> None:
        """Create an empty cache (see the class docstring)."""
        self._parse = parse
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[Mapping[str, Any], T]] = OrderedDict()

    def __len__(self) -> int:
        """Entries held."""
        return len(self._entries)

    def parse(self, uid: str, raw: Mapping[str, Any]) -> T:
        """The parsed `raw` spec of the object `uid` (not cached when `uid` is empty)."""
        if not uid:
            return self._parse(raw)
        entry = self._entries.get(uid)
        if entry is not None and entry[0] == raw:  # `==` is quick when it is the same dict
            self._entries.move_to_end(uid)
            return entry[1]
        parsed = self._parse(raw)
        self._entries[uid] = (raw, parsed)
        self._entries.move_to_end(uid)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return parsed


def describe_validation_error(exc: ValidationError) -> str:
    """One line per broken rule: ``spec.<path>: <message>`` (values are never quoted)."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(p) for p in ("spec", *error.get("loc", ())))
        lines.append(f"{path}: {error.get('msg', 'invalid')}")
    return "; ".join(lines) or "spec is invalid"


def provider_type_of(spec: object) -> str | None:
    """The provider block of a raw (possibly invalid) ModelProvider spec, when exactly one
    is set."""
    if not isinstance(spec, Mapping):
        return None
    present = [p for p in PROVIDER_TYPES if spec.get(p) is not None]
    return present[0] if len(present) == 1 else None
