"""Label and field selectors with kube's grammar and matching rules.

Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` and
``!k``, comma-separated (all must hold). ``!=`` and ``notin`` also match objects without the
label, as in kube. Field selectors: ``f=v``, ``f==v``, ``f!=v`` over the fields a resource
exposes (``metadata.name`` and ``metadata.namespace`` everywhere; more for events, secrets and
namespaces).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flokoa_controller.envtest.errors import StatusError, bad_request

JSON = dict[str, Any]

_KEY = re.compile(
    r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9](/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$"
)


@dataclass(frozen=True)
class Requirement:
    """One label requirement: ``key``, operator and values."""

    key: str
    op: str
    """``=``, ``!=``, ``in``, ``notin``, ``exists`` or ``!``."""
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy the requirement."""
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        # != and notin: absent labels match
        return not present or labels[self.key] not in self.values


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector; the empty selector matches everything."""

    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with ``labels`` is selected."""
        lab = labels or {}
        return all(r.matches(lab) for r in self.requirements)

    @property
    def empty(self) -> bool:
        """True for the selector that selects everything."""
        return not self.requirements


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


_SET_RE = re.compile(r"^\s*(\S+?)\s+(in|notin)\s*\((.*)\)\s*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _check_key(key: str, selector: str) -> None:
    if not key or len(key) > 317 or not _KEY.match(key):
        raise bad_request(
            f"unable to parse requirement: invalid label key {key!r} in selector {selector!r}"
        )


def _check_value(value: str, selector: str) -> None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise bad_request(
            f"unable to parse requirement: invalid label value {value!r} in selector {selector!r}"
        )


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a label selector string; raises a 400 :class:`StatusError` when malformed."""
    if not text or not text.strip():
        return LabelSelector(())
    reqs: list[Requirement] = []
    for raw in _split_top(text):
        part = raw.strip()
        if not part:
            raise bad_request(f"found '', expected: identifier in label selector {text!r}")
        m = _SET_RE.match(part)
        if m:
            key, op, inner = m.group(1), m.group(2), m.group(3)
            _check_key(key, text)
            values = [v.strip() for v in inner.split(",")] if inner.strip() else []
            if not values and op == "in":
                raise bad_request(
                    f"for 'in', 'notin' operators, values set can't be empty: {text!r}"
                )
            for v in values:
                _check_value(v, text)
            reqs.append(Requirement(key, op, frozenset(values)))
            continue
        for op_text, op in (("==", "="), ("!=", "!="), ("=", "=")):
            if op_text in part:
                key, value = part.split(op_text, 1)
                key, value = key.strip(), value.strip()
                _check_key(key, text)
                _check_value(value, text)
                reqs.append(Requirement(key, op, frozenset([value])))
                break
        else:
            if part.startswith("!"):
                key = part[1:].strip()
                _check_key(key, text)
                reqs.append(Requirement(key, "!", frozenset()))
            else:
                _check_key(part, text)
                reqs.append(Requirement(part, "exists", frozenset()))
    return LabelSelector(tuple(reqs))


# --- field selectors -----------------------------------------------------------------------

FieldGetter = Callable[[JSON], str]


def _path(*keys: str) -> FieldGetter:
    def get(obj: JSON) -> str:
        cur: Any = obj
        for k in keys:
            if not isinstance(cur, dict):
                return ""
            cur = cur.get(k)
        if cur is None:
            return ""
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return str(cur)

    return get


COMMON_FIELDS: dict[str, FieldGetter] = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
}

EVENT_FIELDS: dict[str, FieldGetter] = {
    **COMMON_FIELDS,
    "involvedObject.kind": _path("involvedObject", "kind"),
    "involvedObject.namespace": _path("involvedObject", "namespace"),
    "involvedObject.name": _path("involvedObject", "name"),
    "involvedObject.uid": _path("involvedObject", "uid"),
    "involvedObject.apiVersion": _path("involvedObject", "apiVersion"),
    "involvedObject.resourceVersion": _path("involvedObject", "resourceVersion"),
    "involvedObject.fieldPath": _path("involvedObject", "fieldPath"),
    "reason": _path("reason"),
    "reportingComponent": _path("reportingComponent"),
    "source": _path("source", "component"),
    "type": _path("type"),
}
"""Field selectors of core/v1 Events (the stored form)."""

EVENTS_V1_ALIASES: dict[str, str] = {
    "regarding.kind": "involvedObject.kind",
    "regarding.namespace": "involvedObject.namespace",
    "regarding.name": "involvedObject.name",
    "regarding.uid": "involvedObject.uid",
    "regarding.apiVersion": "involvedObject.apiVersion",
    "regarding.resourceVersion": "involvedObject.resourceVersion",
    "regarding.fieldPath": "involvedObject.fieldPath",
    "reportingController": "reportingComponent",
}
"""events.k8s.io/v1 field labels mapped onto the core/v1 ones (same storage)."""

SECRET_FIELDS: dict[str, FieldGetter] = {**COMMON_FIELDS, "type": _path("type")}
NAMESPACE_FIELDS: dict[str, FieldGetter] = {
    **COMMON_FIELDS,
    "status.phase": _path("status", "phase"),
}


@dataclass(frozen=True)
class FieldRequirement:
    """``field op value`` with op ``=`` or ``!=``."""

    field: str
    op: str
    value: str
    getter: FieldGetter


@dataclass(frozen=True)
class FieldSelector:
    """A parsed field selector; the empty selector matches everything."""

    requirements: tuple[FieldRequirement, ...]

    def matches(self, obj: JSON) -> bool:
        """Whether the object is selected."""
        for r in self.requirements:
            actual = r.getter(obj)
            if (actual == r.value) != (r.op == "="):
                return False
        return True

    @property
    def empty(self) -> bool:
        """True for the selector that selects everything."""
        return not self.requirements

    def single_name(self) -> str | None:
        """The name when the selector pins ``metadata.name=X`` (a watch on one object)."""
        for r in self.requirements:
            if r.field == "metadata.name" and r.op == "=":
                return r.value
        return None


def _split_escaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append(ch)
    return "".join(out)


def parse_field_selector(
    text: str | None,
    fields: Mapping[str, FieldGetter],
    *,
    aliases: Mapping[str, str] | None = None,
    custom_resource: bool = False,
) -> FieldSelector:
    """Parse ``text`` against the ``fields`` a resource supports; 400 on unknown fields."""
    if not text or not text.strip():
        return FieldSelector(())
    reqs: list[FieldRequirement] = []
    for raw in _split_escaped(text, ","):
        part = raw.strip()
        if not part:
            continue
        for op_text, op_name in (("!=", "!="), ("==", "="), ("=", "=")):
            idx = _find_unescaped(part, op_text)
            if idx >= 0:
                name = part[:idx].strip()
                value = _unescape(part[idx + len(op_text) :].strip())
                op = op_name
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        canonical = (aliases or {}).get(name, name)
        getter = fields.get(canonical)
        if getter is None:
            raise _unknown_field(name, custom_resource)
        reqs.append(FieldRequirement(canonical, op, value, getter))
    return FieldSelector(tuple(reqs))


def _find_unescaped(text: str, needle: str) -> int:
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith(needle, i):
            return i
        i += 1
    return -1


def _unknown_field(name: str, custom_resource: bool) -> StatusError:
    if custom_resource:
        return bad_request(
            f'"{name}" is not a known field selector: only "metadata.name", "metadata.namespace"'
        )
    return bad_request(f"field label not supported: {name}")
