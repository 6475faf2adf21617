"""kubectl/client-go JSONPath, as kube-apiserver evaluates a CRD's printer-column ``jsonPath``.

Supported: ``.field``, ``['field']``/``["field"]``, ``[n]`` (negative from the end), ``[a:b]``,
``[*]``, ``..field`` (recursive descent), unions ``[a,b]``, filters ``[?(@.type=="Ready")]``
(``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, and bare existence ``[?(@.x)]``), and templates
with literal text around ``{…}`` groups. Missing keys yield no result, as with kube's
``AllowMissingKeys(true)``. :func:`format_value` prints a result the way client-go's
``PrintResults`` does (strings raw, numbers like Go, objects and lists as compact JSON).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from flokoa_envtest.fielderrors import go_value

__all__ = ["JSONPath", "JSONPathError", "format_value", "parse"]


class JSONPathError(ValueError):
    """A JSONPath expression that does not parse."""


@dataclass(frozen=True)
class _Field:
    names: tuple[str, ...]  # more than one for a union of names; "*" for a wildcard


@dataclass(frozen=True)
class _Recursive:
    name: str


@dataclass(frozen=True)
class _Index:
    indices: tuple[int, ...]


@dataclass(frozen=True)
class _Slice:
    start: int | None
    stop: int | None
    step: int | None


@dataclass(frozen=True)
class _Wildcard:
    pass


@dataclass(frozen=True)
class _Filter:
    left: tuple[Any, ...]
    op: str | None
    right: Any


_Step = _Field | _Recursive | _Index | _Slice | _Wildcard | _Filter
_OPERATORS: Final = ("==", "!=", "<=", ">=", "<", ">")
_NAME_END: Final = frozenset(".[]{}() \t=!<>,")


@dataclass(frozen=True)
class JSONPath:
    """A parsed JSONPath template: literal text and paths, in order."""

    source: str
    parts: tuple[str | tuple[_Step, ...], ...]

    def find(self, obj: Any) -> list[Any]:
        """The values the first path selects in ``obj`` (empty when nothing matches)."""
        for part in self.parts:
            if isinstance(part, tuple):
                return _evaluate(part, [obj])
        return []

    def render(self, obj: Any) -> str:
        """The template rendered as kubectl ``-o jsonpath`` does (results joined by spaces)."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(" ".join(format_value(v) for v in _evaluate(part, [obj])))
        return "".join(out)


def parse(source: str) -> JSONPath:
    """Parse a printer-column path (``.status.ready``) or a template (``{.a}/{.b}``)."""
    text = source.strip()
    if "{" not in text:
        return JSONPath(source, (tuple(_Parser(text).steps()),))
    parts: list[str | tuple[_Step, ...]] = []
    pos = 0
    while pos < len(text):
        start = text.find("{", pos)
        if start < 0:
            parts.append(text[pos:])
            break
        if start > pos:
            parts.append(text[pos:start])
        end = _matching_close(text, start, "{", "}")
        if end < 0:
            raise JSONPathError(f"unclosed action in {text!r}")
        inner = text[start + 1 : end].strip()
        if inner.startswith("$"):
            inner = inner[1:]
        parts.append(tuple(_Parser(inner).steps()))
        pos = end + 1
    return JSONPath(source, tuple(parts))


def _unquoted(text: str, start: int = 0) -> Iterator[tuple[int, str]]:
    """Index and character of each character of ``text`` from ``start`` on that is outside
    single- or double-quoted strings (the quotes themselves left out)."""
    quote = ""
    for i in range(start, len(text)):
        c = text[i]
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        else:
            yield i, c


def _matching_close(text: str, start: int, opening: str, closing: str) -> int:
    """Index of the ``closing`` that balances the first ``opening`` from ``start`` on, quoted
    text skipped; -1 when there is none."""
    depth = 0
    for i, c in _unquoted(text, start):
        if c == opening:
            depth += 1
        elif c == closing:
            depth -= 1
            if depth == 0:
                return i
    return -1


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str) -> JSONPathError:
        return JSONPathError(f"{message} at {self.pos} in {self.text!r}")

    def steps(self) -> list[_Step]:
        steps: list[_Step] = []
        if self.text.startswith("$"):
            self.pos = 1
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c == ".":
                if self.text.startswith("..", self.pos):
                    self.pos += 2
                    steps.append(_Recursive(self._name()))
                    continue
                self.pos += 1
                if self.pos < len(self.text) and self.text[self.pos] == "*":
                    self.pos += 1
                    steps.append(_Wildcard())
                    continue
                if self.pos >= len(self.text) or self.text[self.pos] in "[":
                    continue
                steps.append(_Field((self._name(),)))
            elif c == "[":
                steps.append(self._bracket())
            elif c in " \t":
                self.pos += 1
            else:
                steps.append(_Field((self._name(),)))
        return steps

    def _name(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _NAME_END:
            if self.text[self.pos] == "\\" and self.pos + 1 < len(self.text):
                self.pos += 2
                continue
            self.pos += 1
        if self.pos == start:
            raise self.error("expected a field name")
        return self.text[start : self.pos].replace("\\.", ".")

    def _bracket(self) -> _Step:
        close = self._closing_bracket()
        inner = self.text[self.pos + 1 : close].strip()
        self.pos = close + 1
        if inner == "*":
            return _Wildcard()
        if inner.startswith("?"):
            return self._filter(inner[1:].strip())
        if inner[:1] in "'\"":
            return _Field(tuple(_unquote(p.strip()) for p in _split_top(inner, ",")))
        if ":" in inner:
            bounds = [b.strip() for b in inner.split(":")]
            if len(bounds) > 3:
                raise self.error("invalid slice")
            values = [int(b) if b else None for b in bounds] + [None] * (3 - len(bounds))
            return _Slice(values[0], values[1], values[2])
        try:
            return _Index(tuple(int(p) for p in inner.split(",")))
        except ValueError:
            raise self.error(f"invalid array index {inner!r}") from None

    def _closing_bracket(self) -> int:
        end = _matching_close(self.text, self.pos, "[", "]")
        if end < 0:
            raise self.error("unterminated [")
        return end

    def _filter(self, text: str) -> _Filter:
        if not (text.startswith("(") and text.endswith(")")):
            raise self.error("invalid filter")
        body = text[1:-1].strip()
        op_at, op = _find_operator(body)
        left_text = body if op is None else body[:op_at].strip()
        if not left_text.startswith("@"):
            raise self.error("filter must start with @")
        left = tuple(_Parser(left_text[1:]).steps())
        if op is None:
            return _Filter(left, None, None)
        return _Filter(left, op, _literal(body[op_at + len(op) :].strip()))


def _find_operator(body: str) -> tuple[int, str | None]:
    for i, _ in _unquoted(body):
        for op in _OPERATORS:
            if body.startswith(op, i):
                return i, op
    return -1, None


def _split_top(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    start = 0
    for i, c in _unquoted(text):
        if c == sep:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _literal(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if text == "nil" or text == "null":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise JSONPathError(f"unrecognized filter literal {text!r}") from None


def _evaluate(steps: tuple[_Step, ...], values: list[Any]) -> list[Any]:
    for step in steps:
        values = _apply(step, values)
        if not values:
            break
    return values


def _apply(step: _Step, values: list[Any]) -> list[Any]:
    out: list[Any] = []
    if isinstance(step, _Field):
        for value in values:
            if isinstance(value, dict):
                for name in step.names:
                    if name in value:
                        out.append(value[name])
    elif isinstance(step, _Wildcard):
        for value in values:
            if isinstance(value, dict):
                out.extend(value[k] for k in sorted(value))
            elif isinstance(value, list):
                out.extend(value)
    elif isinstance(step, _Index):
        for value in values:
            if isinstance(value, list):
                for index in step.indices:
                    position = index + len(value) if index < 0 else index
                    if 0 <= position < len(value):
                        out.append(value[position])
    elif isinstance(step, _Slice):
        for value in values:
            if isinstance(value, list):
                out.extend(value[step.start : step.stop : step.step])
    elif isinstance(step, _Recursive):
        for value in values:
            _descend(value, step.name, out)
    else:
        for value in values:
            candidates = value if isinstance(value, list) else [value]
            out.extend(c for c in candidates if _passes(step, c))
    return out


def _descend(value: Any, name: str, out: list[Any]) -> None:
    if isinstance(value, dict):
        if name in value:
            out.append(value[name])
        for key in sorted(value):
            _descend(value[key], name, out)
    elif isinstance(value, list):
        for item in value:
            _descend(item, name, out)


def _passes(step: _Filter, candidate: Any) -> bool:
    found = _evaluate(step.left, [candidate])
    if step.op is None:
        return bool(found)
    if len(found) != 1:
        return False
    left, right = found[0], step.right
    if step.op in ("==", "!="):
        same = _equal(left, right)
        return same if step.op == "==" else not same
    numeric = (int, float)
    if isinstance(left, bool) or isinstance(right, bool):
        return False
    if isinstance(left, numeric) and isinstance(right, numeric):
        pair: tuple[Any, Any] = (left, right)
    elif isinstance(left, str) and isinstance(right, str):
        pair = (left, right)
    else:
        return False
    a, b = pair
    if step.op == "<":
        return bool(a < b)
    if step.op == "<=":
        return bool(a <= b)
    if step.op == ">":
        return bool(a > b)
    return bool(a >= b)


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    return bool(left == right)


def format_value(value: Any) -> str:
    """One result as client-go prints it: raw strings, Go numbers, compact JSON otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return go_value(value)
    if value is None:
        return "<nil>"
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
