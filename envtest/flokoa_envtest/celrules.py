"""``x-kubernetes-validations``: evaluating a CRD's CEL rules the way kube-apiserver does.

:class:`CelWalker` visits every node with rules (``self`` bound to the node's value, ``oldSelf``
to the correlated old value for transition rules), formats failures like kube (the node's
schema type as the value, ``messageExpression`` with its fallbacks, ``fieldPath``, ``reason``)
and ratchets failures on unchanged values. :func:`to_cel` converts JSON to CEL values per the
schema (kube's ``UnstructuredToVal``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

from flokoa_envtest.cel import CelError, parse_duration, parse_timestamp
from flokoa_envtest.fielderrors import (
    DUPLICATE,
    FORBIDDEN,
    NIL_PATH,
    REQUIRED,
    FieldError,
    duplicate,
    forbidden,
    invalid,
    required,
)
from flokoa_envtest.structural import (
    META_KEYS,
    MISSING,
    CompiledSchema,
    Rule,
    child_path,
    deep_equal,
    list_correlator,
)

__all__ = ["CelWalker", "to_cel"]

JSON = Any
_MAX_MESSAGE_EXPRESSION_BYTES: Final = 5 * 1024


class _Ratchet:
    """The nearest correlated (new, old) pair above a node, with its equality memoized."""

    __slots__ = ("_equal", "new", "old")

    def __init__(self, new: JSON, old: JSON) -> None:
        self.new = new
        self.old = old
        self._equal: bool | None = None

    def unchanged(self) -> bool:
        if self._equal is None:
            self._equal = deep_equal(self.new, self.old)
        return self._equal


class CelWalker:
    """Evaluates the rules of a compiled schema over an object, appending field errors."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors

    def walk(
        self,
        value: JSON,
        node: CompiledSchema,
        path: str,
        old: JSON,
        ratchet: _Ratchet | None,
        *,
        root: bool = False,
    ) -> None:
        if value is None or not node.has_rules:
            return
        if old is not MISSING:
            ratchet = _Ratchet(value, old)
        if node.rules:
            self._rules(value, node, path, old, ratchet, root=root)
        if type(value) is dict:
            old_map = old if type(old) is dict and node.map_type != "atomic" else None
            props = node.properties
            if node.additional is not None and node.additional.has_rules:
                for key, child in value.items():
                    prior = old_map.get(key, MISSING) if old_map is not None else MISSING
                    self.walk(
                        child, node.additional, f"{path}[{key}]", prior, _child(ratchet, prior)
                    )
            if props is not None:
                for key, child in value.items():
                    prop = props.get(key)
                    if prop is not None and prop.has_rules:
                        prior = old_map.get(key, MISSING) if old_map is not None else MISSING
                        self.walk(child, prop, child_path(path, key), prior, _child(ratchet, prior))
        elif type(value) is list and node.items is not None and node.items.has_rules:
            correlate = (
                list_correlator(node, old) if node.list_type == "map" else (lambda item: MISSING)
            )
            for i, child in enumerate(value):
                prior = correlate(child)
                self.walk(child, node.items, f"{path}[{i}]", prior, _child(ratchet, prior))

    def _rules(
        self,
        value: JSON,
        node: CompiledSchema,
        path: str,
        old: JSON,
        ratchet: _Ratchet | None,
        *,
        root: bool,
    ) -> None:
        field_name = path or NIL_PATH
        type_name = node.type
        self_value = to_cel(value, node, root=root)
        activation: dict[str, Any] = {"self": self_value}
        if old is not MISSING:
            activation["oldSelf"] = to_cel(old, node, root=root)
        for rule in node.rules:
            if rule.compile_error is not None or rule.program is None:
                self.errors.append(
                    invalid(field_name, type_name, f"rule compile error: {rule.compile_error}")
                )
                continue
            program = rule.program
            if program.uses_old_self and old is MISSING:
                continue
            try:
                result = program.evaluate(activation)
            except CelError as err:
                text = str(err)
                label = rule.message.strip() or rule.text.strip()
                if text.startswith("no such overload"):
                    detail = (
                        f"'{text}': call arguments did not match a supported operator, "
                        f"function or macro signature for rule: {label}"
                    )
                else:
                    detail = f"{text} evaluating rule: {label}"
                self.errors.append(invalid(field_name, type_name, detail))
                continue
            if result is True:
                continue
            if not program.uses_old_self and ratchet is not None and ratchet.unchanged():
                continue
            error_path = field_name
            if rule.field_path:
                error_path = f"{path}.{rule.field_path}" if path else rule.field_path
            detail = self._message(rule, activation)
            self.errors.append(_rule_error(rule.reason, error_path, type_name, detail))

    def _message(self, rule: Rule, activation: dict[str, Any]) -> str:
        if rule.message_expression is not None:
            try:
                result = rule.message_expression.evaluate(activation)
            except CelError:
                result = None
            if type(result) is str:
                text = result.strip()
                if (
                    text
                    and "\n" not in text
                    and len(text.encode()) <= _MAX_MESSAGE_EXPRESSION_BYTES
                ):
                    return text
        if rule.message:
            return rule.message.strip()
        return f"failed rule: {rule.text.strip()}"


def _child(ratchet: _Ratchet | None, prior: JSON) -> _Ratchet | None:
    return None if prior is not MISSING else ratchet


def _rule_error(reason: str | None, path: str, type_name: str, detail: str) -> FieldError:
    if reason == FORBIDDEN:
        return forbidden(path, detail)
    if reason == REQUIRED:
        return required(path, detail)
    if reason == DUPLICATE:
        return duplicate(path, type_name)
    return invalid(path, type_name, detail)


def to_cel(value: JSON, node: CompiledSchema, *, root: bool = False) -> Any:
    """The CEL value of a JSON value under ``node`` (kube's ``UnstructuredToVal``).

    Objects with properties expose only their declared properties, under escaped names; at a
    resource root ``metadata`` holds only ``name`` and ``generateName``; ``number`` values are
    doubles, ``integer`` values ints; ``byte``, ``date``/``date-time`` and ``duration`` strings
    become bytes, timestamps and durations.
    """
    if value is None or (node.cel_identity and not root):
        return value
    t = node.type
    kind = type(value)
    if kind is dict:
        props = node.properties
        if props is not None:
            out: dict[str, Any] = {}
            names = node.cel_names
            embedded = root or node.embedded
            for key, child in value.items():
                if embedded and key in META_KEYS:
                    out[key] = _meta_to_cel(key, child)
                    continue
                prop = props.get(key)
                escaped = names.get(key)
                if prop is not None and escaped is not None:
                    out[escaped] = to_cel(child, prop)
            return out
        if node.additional is not None:
            additional = node.additional
            return {k: to_cel(v, additional) for k, v in value.items()}
        return value
    if kind is list:
        items = node.items
        if items is None:
            return value
        return [to_cel(v, items) for v in value]
    if t == "number" and kind is int:
        return float(value)
    if t == "integer" and kind is float and value.is_integer():
        return int(value)
    if t == "string" and kind is str and node.format:
        return _string_format_to_cel(value, node.format)
    return value


def _meta_to_cel(key: str, value: JSON) -> Any:
    if key == "metadata" and type(value) is dict:
        return {k: value[k] for k in ("name", "generateName") if k in value}
    return value


def _string_format_to_cel(value: str, fmt: str) -> Any:
    normalized = fmt.replace("-", "").lower()
    try:
        if normalized == "byte":
            return base64.b64decode(value, validate=True)
        if normalized == "datetime":
            return parse_timestamp(value)
        if normalized == "date":
            return parse_timestamp(f"{value}T00:00:00Z")
        if normalized == "duration":
            return parse_duration(value)
    except (ValueError, binascii.Error):
        return value
    return value
