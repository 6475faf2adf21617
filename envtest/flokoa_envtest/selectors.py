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
from typing import Any, Final

from flokoa_envtest.errors import StatusError, bad_request
from flokoa_envtest.fielderrors import NIL_PATH, FieldError, aggregate_message, invalid
from flokoa_envtest.validation import label_value, qualified_name

JSON = dict[str, Any]


@dataclass(frozen=True)
class Requirement:
    """One label requirement: ``key``, operator and values."""

    key: str
    op: str
    """``=``, ``!=``, ``in``, ``notin``, ``exists``, ``!``, ``gt`` or ``lt``."""
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
        if self.op in ("gt", "lt"):
            if not present or not _INTEGER.match(labels[self.key]):
                return False
            actual, bound = int(labels[self.key]), int(next(iter(self.values)))
            return actual > bound if self.op == "gt" else actual < bound
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


# kube's labels lexer and parser (k8s.io/apimachinery/pkg/labels/selector.go), token by token,
# so a malformed selector gets kube's exact error text.
_END, _CLOSE, _COMMA, _NOT, _DEQ, _EQ, _GT, _ID, _IN, _LT, _NEQ, _NOTIN, _OPEN, _ERR = range(14)
_LITERALS: Final = {
    ")": _CLOSE,
    ",": _COMMA,
    "!": _NOT,
    "==": _DEQ,
    "=": _EQ,
    ">": _GT,
    "in": _IN,
    "<": _LT,
    "!=": _NEQ,
    "notin": _NOTIN,
    "(": _OPEN,
}
_SPACES: Final = frozenset(" \t\r\n")
_SPECIAL: Final = frozenset("=!(),><")
_BINARY_OPERATORS: Final = "in, notin, =, ==, !=, gt, lt"


def _lex(text: str) -> list[tuple[int, str]]:
    """Every token of ``text`` (the last one is the end of string)."""
    tokens: list[tuple[int, str]] = []
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos] in _SPACES:
            pos += 1
        if pos >= n:
            tokens.append((_END, ""))
            return tokens
        if text[pos] in _SPECIAL:
            buffer = ""
            last: tuple[int, str] | None = None
            while pos < n and text[pos] in _SPECIAL:
                buffer += text[pos]
                if buffer in _LITERALS:
                    last = (_LITERALS[buffer], buffer)
                elif last is not None:
                    break
                pos += 1
            if last is None:
                tokens.append((_ERR, f"error expected: keyword found '{buffer}'"))
            else:
                tokens.append(last)
            continue
        start = pos
        while pos < n and text[pos] not in _SPECIAL and text[pos] not in _SPACES:
            pos += 1
        word = text[start:pos]
        tokens.append((_LITERALS.get(word, _ID), word))


class _SelectorError(Exception):
    pass


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.position = 0

    def lookahead(self, values: bool = True) -> tuple[int, str]:
        tok, lit = self.items[self.position]
        if values and tok in (_IN, _NOTIN):
            tok = _ID
        return tok, lit

    def consume(self, values: bool = True) -> tuple[int, str]:
        item = self.lookahead(values)
        self.position += 1
        return item

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok in (_ID, _NOT):
                try:
                    reqs.append(self.requirement())
                except _SelectorError as exc:
                    raise _SelectorError(f"unable to parse requirement: {exc}") from None
                t, lit2 = self.consume()
                if t == _END:
                    return reqs
                if t == _COMMA:
                    t2, lit3 = self.lookahead()
                    if t2 not in (_ID, _NOT):
                        raise _SelectorError(f"found '{lit3}', expected: identifier after ','")
                    continue
                raise _SelectorError(f"found '{lit2}', expected: ',' or 'end of string'")
            if tok == _END:
                return reqs
            raise _SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        op = ""
        tok, key = self.consume()
        if tok == _NOT:
            op = "!"
            tok, key = self.consume()
        if tok != _ID:
            raise _SelectorError(f"found '{key}', expected: identifier")
        problems = qualified_name(key)
        if problems:
            raise _SelectorError(str(invalid(NIL_PATH, key, "; ".join(problems))))
        if op or self.lookahead()[0] in (_END, _COMMA):
            return _new_requirement(key, op or "exists", [])
        tok, lit = self.consume(values=False)
        ops = {_IN: "in", _EQ: "=", _DEQ: "=", _GT: "gt", _LT: "lt", _NOTIN: "notin", _NEQ: "!="}
        if tok not in ops:
            raise _SelectorError(f"found '{lit}', expected: {_BINARY_OPERATORS}")
        op = ops[tok]
        values = self.set_values() if op in ("in", "notin") else self.exact_value()
        return _new_requirement(key, op, sorted(values))

    def set_values(self) -> set[str]:
        tok, lit = self.consume()
        if tok != _OPEN:
            raise _SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok in (_ID, _COMMA):
            values = self.identifiers()
            if self.consume()[0] != _CLOSE:
                raise _SelectorError(f"found '{lit}', expected: ')'")
            return values
        if tok == _CLOSE:
            self.consume()
            return {""}
        raise _SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == _ID:
                values.add(lit)
                tok2, lit2 = self.lookahead()
                if tok2 == _COMMA:
                    continue
                if tok2 == _CLOSE:
                    return values
                raise _SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:
                if not values:
                    values.add("")
                tok2 = self.lookahead()[0]
                if tok2 == _CLOSE:
                    values.add("")
                    return values
                if tok2 == _COMMA:
                    self.consume()
                    values.add("")
                continue
            raise _SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        tok = self.lookahead()[0]
        if tok in (_END, _COMMA):
            return {""}
        tok, lit = self.consume()
        if tok == _ID:
            return {lit}
        raise _SelectorError(f"found '{lit}', expected: identifier")


def _new_requirement(key: str, op: str, values: list[str]) -> Requirement:
    """kube's ``NewRequirement``: the operator's value rules and every value's syntax."""
    problems: list[FieldError] = []
    if op in ("in", "notin") and not values:
        problems.append(
            invalid("values", values, "for 'in', 'notin' operators, values set can't be empty")
        )
    elif op in ("=", "!=") and len(values) != 1:
        problems.append(
            invalid("values", values, "exact-match compatibility requires one single value")
        )
    elif op in ("gt", "lt"):
        if len(values) != 1:
            problems.append(
                invalid("values", values, "for 'Gt', 'Lt' operators, exactly one value is required")
            )
        for i, value in enumerate(values):
            if not _INTEGER.match(value):
                problems.append(
                    invalid(
                        f"values[{i}]",
                        value,
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    )
                )
    for i, value in enumerate(values):
        errs = label_value(value)
        if errs:
            problems.append(invalid(f"values[{i}][{key}]", value, "; ".join(errs)))
    if problems:
        raise _SelectorError(aggregate_message(problems))
    return Requirement(key, op, frozenset(values))


_INTEGER: Final = re.compile(r"^[+-]?[0-9]+$")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a label selector string; raises a 400 :class:`StatusError` when malformed."""
    if not text:
        return LabelSelector(())
    try:
        return LabelSelector(tuple(_LabelParser(text).parse()))
    except _SelectorError as exc:
        raise bad_request(str(exc)) from None


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


def _split_terms(text: str) -> list[str]:
    """kube's ``splitTerms``: split on commas not escaped with a backslash."""
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, ch in enumerate(text):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


_TERM_OPERATORS: Final = ("!=", "==", "=")


def _split_term(term: str) -> tuple[str, str, str] | None:
    """kube's ``splitTerm``: the first operator found, scanning left to right."""
    for i in range(len(term)):
        for op in _TERM_OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def _unescape_value(value: str) -> str:
    """kube's ``UnescapeValue``: ``\\``, ``\\,`` and ``\\=`` only; bare ``,``/``=`` refused."""
    out: list[str] = []
    in_slash = False
    for ch in value:
        if in_slash:
            if ch not in "\\,=":
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            # Go's %v of the rune: its number
            raise bad_request(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise bad_request("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_selector(
    text: str | None,
    fields: Mapping[str, FieldGetter],
    *,
    aliases: Mapping[str, str] | None = None,
    custom_resource: bool = False,
) -> FieldSelector:
    """Parse ``text`` like kube's ``fields.ParseSelector`` (terms sorted, nothing trimmed), then
    check each field against the ones the resource supports; 400 on either failure."""
    if not text:
        return FieldSelector(())
    parsed: list[tuple[str, str, str]] = []
    for part in sorted(_split_terms(text)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        name, op, rhs = split
        parsed.append((name, "!=" if op == "!=" else "=", _unescape_value(rhs)))
    reqs: list[FieldRequirement] = []
    for name, op, value in parsed:
        canonical = (aliases or {}).get(name, name)
        getter = fields.get(canonical)
        if getter is None:
            raise _unknown_field(name, custom_resource)
        reqs.append(FieldRequirement(canonical, op, value, getter))
    return FieldSelector(tuple(reqs))


def _unknown_field(name: str, custom_resource: bool) -> StatusError:
    if custom_resource:
        return bad_request(
            f'"{name}" is not a known field selector: only "metadata.name", "metadata.namespace"'
        )
    return bad_request(f"field label not supported: {name}")
