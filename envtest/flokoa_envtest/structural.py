"""A CRD's structural schema compiled for admission: constraints parsed, CEL rules compiled.

:func:`compile_schema` turns an ``openAPIV3Schema`` into a tree of :class:`CompiledSchema`
nodes once (cached per schema object), with what admission needs precomputed: numeric bounds,
compiled CEL programs, normalized ``fieldPath`` s, kube's CEL escaping of property names, and
shortcuts (subtrees without rules, defaults or list types are skipped; plain leaves validate
with one type check). Also the JSON helpers the admission steps share.
"""

from __future__ import annotations

import builtins
import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from flokoa_envtest.cel import CelCompileError, Program, compile_expression
from flokoa_envtest.formats import format_checker

__all__ = [
    "META_KEYS",
    "MISSING",
    "CompiledSchema",
    "Rule",
    "cel_escape",
    "child_path",
    "compile_schema",
    "copy_json",
    "deep_equal",
    "list_correlator",
]

JSON = Any

MISSING: Final = object()
"""The marker for an absent value (distinct from JSON ``null``)."""
META_KEYS: Final = frozenset({"apiVersion", "kind", "metadata"})
"""The fields kept at a resource root and in embedded resources whatever the schema says."""
_CEL_RESERVED: Final = frozenset(
    {
        "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
        "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
        "void", "while",
    }
)  # fmt: skip


def child_path(path: str, key: str) -> str:
    """``field.Path.Child``: ``spec`` + ``x`` gives ``spec.x`` (a bare name at the root)."""
    return f"{path}.{key}" if path else key


@dataclass(eq=False)
class Rule:
    """One ``x-kubernetes-validations`` entry, compiled."""

    text: str
    message: str
    program: Program | None
    compile_error: str | None
    message_expression: Program | None
    field_path: str
    reason: str | None
    optional_old_self: bool


@dataclass(eq=False)
class CompiledSchema:
    """One node of a structural schema, with its constraints parsed and its rules compiled."""

    type: str = ""
    """``type`` (``""`` when absent, as for int-or-string and preserve-unknown nodes)."""
    types: tuple[str, ...] = ()
    nullable: bool = False
    format: str = ""
    format_check: Callable[[str], bool] | None = None
    enum: list[JSON] | None = None
    pattern: str | None = None
    maximum: float | None = None
    exclusive_maximum: bool = False
    minimum: float | None = None
    exclusive_minimum: bool = False
    multiple_of: float | None = None
    max_length: int | None = None
    min_length: int | None = None
    max_items: int | None = None
    min_items: int | None = None
    unique_items: bool = False
    max_properties: int | None = None
    min_properties: int | None = None
    required: tuple[str, ...] = ()
    properties: dict[str, CompiledSchema] | None = None
    additional: CompiledSchema | None = None
    additional_allowed: bool = True
    items: CompiledSchema | None = None
    all_of: tuple[CompiledSchema, ...] = ()
    any_of: tuple[CompiledSchema, ...] = ()
    one_of: tuple[CompiledSchema, ...] = ()
    not_: CompiledSchema | None = None
    preserve_unknown: bool = False
    embedded: bool = False
    int_or_string: bool = False
    list_type: str | None = None
    list_map_keys: tuple[str, ...] = ()
    map_type: str | None = None
    default: JSON = MISSING
    rules: tuple[Rule, ...] = ()
    has_rules: bool = False
    has_list_types: bool = False
    defaults_below: bool = False
    trivial: builtins.type | None = None
    """The Python type that makes a value valid with no further check (plain leaves)."""
    cel_identity: bool = False
    """True when the JSON value is already its CEL value (no escaping or conversion below)."""
    cel_names: dict[str, str] = field(default_factory=dict)


_CACHE: OrderedDict[int, tuple[Mapping[str, Any], CompiledSchema]] = OrderedDict()
_CACHE_SIZE: Final = 256


def compile_schema(schema: Mapping[str, Any]) -> CompiledSchema:
    """Compile an ``openAPIV3Schema`` (cached per schema object; do not mutate it afterwards)."""
    key = id(schema)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is schema:
        _CACHE.move_to_end(key)
        return hit[1]
    compiled = _compile(schema)
    _CACHE[key] = (schema, compiled)
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return compiled


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    return float(value) if isinstance(value, int | float) else None


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    return int(value) if isinstance(value, int | float) else None


def _compile(schema: Mapping[str, Any]) -> CompiledSchema:
    node = CompiledSchema()
    node.type = str(schema.get("type") or "")
    node.int_or_string = bool(schema.get("x-kubernetes-int-or-string"))
    if node.int_or_string:
        node.types = ("integer", "string")
    elif node.type:
        node.types = (node.type,)
    node.nullable = bool(schema.get("nullable"))
    node.format = str(schema.get("format") or "")
    if node.format:
        node.format_check = format_checker(node.format)
    enum = schema.get("enum")
    node.enum = list(enum) if isinstance(enum, list) and enum else None
    pattern = schema.get("pattern")
    node.pattern = pattern if isinstance(pattern, str) and pattern else None
    node.maximum = _num(schema.get("maximum"))
    node.exclusive_maximum = bool(schema.get("exclusiveMaximum"))
    node.minimum = _num(schema.get("minimum"))
    node.exclusive_minimum = bool(schema.get("exclusiveMinimum"))
    node.multiple_of = _num(schema.get("multipleOf"))
    node.max_length = _int_or_none(schema.get("maxLength"))
    node.min_length = _int_or_none(schema.get("minLength"))
    node.max_items = _int_or_none(schema.get("maxItems"))
    node.min_items = _int_or_none(schema.get("minItems"))
    node.unique_items = bool(schema.get("uniqueItems"))
    node.max_properties = _int_or_none(schema.get("maxProperties"))
    node.min_properties = _int_or_none(schema.get("minProperties"))
    node.required = tuple(str(r) for r in schema.get("required") or ())
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        node.properties = {str(k): _compile(v) for k, v in properties.items()}
        for name in node.properties:
            escaped = cel_escape(name)
            if escaped is not None:
                node.cel_names[name] = escaped
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        node.additional = _compile(additional)
    elif additional is False:
        node.additional_allowed = False
    items = schema.get("items")
    if isinstance(items, Mapping):
        node.items = _compile(items)
    node.all_of = tuple(_compile(s) for s in schema.get("allOf") or () if isinstance(s, Mapping))
    node.any_of = tuple(_compile(s) for s in schema.get("anyOf") or () if isinstance(s, Mapping))
    node.one_of = tuple(_compile(s) for s in schema.get("oneOf") or () if isinstance(s, Mapping))
    not_schema = schema.get("not")
    if isinstance(not_schema, Mapping):
        node.not_ = _compile(not_schema)
    node.preserve_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    node.embedded = bool(schema.get("x-kubernetes-embedded-resource"))
    list_type = schema.get("x-kubernetes-list-type")
    node.list_type = str(list_type) if list_type else None
    node.list_map_keys = tuple(str(k) for k in schema.get("x-kubernetes-list-map-keys") or ())
    map_type = schema.get("x-kubernetes-map-type")
    node.map_type = str(map_type) if map_type else None
    if "default" in schema:
        node.default = schema["default"]
    node.rules = tuple(
        _compile_rule(rule, node) for rule in schema.get("x-kubernetes-validations") or ()
    )
    children = [
        *(node.properties or {}).values(),
        *(c for c in (node.additional, node.items) if c is not None),
    ]
    node.has_rules = bool(node.rules) or any(c.has_rules for c in children)
    node.has_list_types = node.list_type in ("set", "map") or any(
        c.has_list_types for c in children
    )
    node.defaults_below = any(c.default is not MISSING or c.defaults_below for c in children)
    node.trivial = _trivial_type(node)
    node.cel_identity = _cel_identity(node)
    return node


_TRIVIAL_TYPES: Final[dict[str, type]] = {"string": str, "boolean": bool, "integer": int}
_CEL_CONVERTED_FORMATS: Final = frozenset({"byte", "date", "datetime", "duration"})


def _trivial_type(node: CompiledSchema) -> builtins.type | None:
    constrained = (
        node.int_or_string
        or node.enum is not None
        or node.pattern is not None
        or node.format_check is not None
        or node.maximum is not None
        or node.minimum is not None
        or node.multiple_of is not None
        or node.max_length is not None
        or node.min_length is not None
        or node.all_of
        or node.any_of
        or node.one_of
        or node.not_ is not None
    )
    return None if constrained else _TRIVIAL_TYPES.get(node.type)


def _cel_identity(node: CompiledSchema) -> bool:
    if node.type == "string":
        return node.format.replace("-", "").lower() not in _CEL_CONVERTED_FORMATS
    if node.type in ("integer", "number"):
        return False
    if node.type == "object":
        if node.embedded:
            return False
        if node.properties is not None:
            return not node.preserve_unknown and all(
                node.cel_names.get(name) == name and prop.cel_identity
                for name, prop in node.properties.items()
            )
        return node.additional is None or node.additional.cel_identity
    if node.type == "array":
        return node.items is None or node.items.cel_identity
    return True


def _compile_rule(rule: Mapping[str, Any], node: CompiledSchema) -> Rule:
    text = str(rule.get("rule") or "")
    message = str(rule.get("message") or "")
    program: Program | None = None
    error: str | None = None
    message_expression: Program | None = None
    try:
        program = compile_expression(text)
    except CelCompileError as err:
        error = str(err)
    expression = rule.get("messageExpression")
    if expression:
        try:
            message_expression = compile_expression(str(expression))
        except CelCompileError as err:
            error = error or f"messageExpression compile error: {err}"
    field_path = ""
    if rule.get("fieldPath"):
        try:
            field_path = _normalize_field_path(str(rule["fieldPath"]), node)
        except ValueError as err:
            error = error or f"fieldPath: {err}"
    reason = rule.get("reason")
    return Rule(
        text=text,
        message=message,
        program=program,
        compile_error=error,
        message_expression=message_expression,
        field_path=field_path,
        reason=str(reason) if reason else None,
        optional_old_self=bool(rule.get("optionalOldSelf")),
    )


def cel_escape(name: str) -> str | None:
    """kube's CEL property-name escaping (``__dash__`` …); None when not accessible from CEL."""
    if name in _CEL_RESERVED:
        return f"__{name}__"
    if not name or not (name[0].isascii() and (name[0].isalpha() or name[0] in "_.-/")):
        return None
    if not all(c.isascii() and (c.isalnum() or c in "_.-/") for c in name):
        return None
    return (
        name.replace("__", "__underscores__")
        .replace(".", "__dot__")
        .replace("-", "__dash__")
        .replace("/", "__slash__")
    )


def _normalize_field_path(path: str, node: CompiledSchema) -> str:
    """kube's ``ValidFieldPath``: ``.a['b.c']`` → the field-path text ``a[b.c]`` (or ``a.b.c``)."""
    out = ""
    current: CompiledSchema | None = node
    pos = 0

    def step(name: str) -> None:
        nonlocal out, current
        if current is None:
            raise ValueError("does not refer to a valid field")
        if current.properties is not None:
            if name not in current.properties:
                raise ValueError("does not refer to a valid field")
            out = f"{out}.{name}" if out else name
            current = current.properties[name]
        elif current.additional is not None:
            out = f"{out}[{name}]"
            current = current.additional
        else:
            raise ValueError("does not refer to a valid field")

    while pos < len(path):
        char = path[pos]
        if char == ".":
            end = pos + 1
            while end < len(path) and path[end] not in ".[]":
                end += 1
            if end == pos + 1:
                raise ValueError("unexpected end of JSON path")
            step(path[pos + 1 : end])
            pos = end
        elif char == "[":
            if pos + 1 >= len(path) or path[pos + 1] != "'":
                raise ValueError("expected single quoted string")
            end = pos + 2
            chars: list[str] = []
            while end < len(path) and path[end] != "'":
                if path[end] == "\\" and end + 1 < len(path):
                    chars.append(path[end + 1])
                    end += 2
                    continue
                chars.append(path[end])
                end += 1
            if end + 1 >= len(path) or path[end + 1] != "]":
                raise ValueError("expected ]")
            step("".join(chars))
            pos = end + 2
        else:
            raise ValueError(f"expected [ or . but got: {path[pos:]}")
    return out


def copy_json(value: JSON) -> JSON:
    """A deep copy of a JSON value (mappings become dicts, tuples lists)."""
    if type(value) is dict:
        return {k: copy_json(v) for k, v in value.items()}
    if type(value) is list:
        return [copy_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [copy_json(v) for v in value]
    return value


def deep_equal(a: JSON, b: JSON) -> bool:
    """Go's ``reflect.DeepEqual`` on unstructured JSON (``1`` and ``1.0`` differ)."""
    ta = type(a)
    if ta is not type(b):
        return False
    if ta is dict:
        return len(a) == len(b) and all(k in b and deep_equal(v, b[k]) for k, v in a.items())
    if ta is list:
        return len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def list_correlator(node: CompiledSchema, old: JSON) -> Callable[[JSON], JSON]:
    """The old element a list element is compared with (list-type map: by key; set: by value)."""
    if type(old) is not list or not old:
        return lambda item: MISSING
    if node.list_type == "map" and node.list_map_keys:
        keys = node.list_map_keys
        index: dict[str, JSON] = {}
        for element in old:
            if type(element) is dict:
                index.setdefault(_map_key(element, keys), element)
        return lambda item: (
            index.get(_map_key(item, keys), MISSING) if type(item) is dict else MISSING
        )
    if node.list_type == "set":
        return lambda item: item if any(deep_equal(item, e) for e in old) else MISSING
    return lambda item: MISSING


def _map_key(element: dict[str, JSON], keys: tuple[str, ...]) -> str:
    return json.dumps([element.get(k, _MISSING_KEY) for k in keys], sort_keys=True, default=str)


_MISSING_KEY: Final = "\x00<unspecified>"
