"""Schema validation with kube-openapi's rules and messages, as kube-apiserver applies to CRs.

:class:`Validator` reproduces ``validate.SchemaValidator`` (type, format, enum, pattern, bounds,
lengths, items, properties, required, ``allOf``/``anyOf``/``oneOf``/``not``) with the
conversion ``ValidateCustomResource`` makes into field errors, and CRD validation ratcheting
(errors on values equal to the old object's are dropped). :func:`list_type_errors` checks the
``x-kubernetes-list-type`` ``set`` and ``map`` uniqueness rules.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from flokoa_envtest.cellib import CelError, compile_regex
from flokoa_envtest.fielderrors import (
    NIL_PATH,
    FieldError,
    duplicate,
    go_float,
    go_quote,
    invalid,
    not_supported,
    required,
    too_long,
    too_many,
    type_invalid,
)
from flokoa_envtest.structural import (
    MISSING,
    CompiledSchema,
    child_path,
    deep_equal,
    list_correlator,
)

__all__ = ["Validator", "json_type", "list_type_errors"]

JSON = Any


def json_type(value: JSON) -> str:
    """The JSON type name of a value (``string``, ``integer``, ``object`` …)."""
    t = type(value)
    if t is str:
        return "string"
    if t is bool:
        return "boolean"
    if t is int:
        return "integer"
    if t is float:
        return "number"
    if t is list:
        return "array"
    if t is dict:
        return "object"
    return "null" if value is None else t.__name__


def _go_format_of(value: JSON) -> str:
    t = type(value)
    if t is int:
        return "int64"
    if t is float:
        return "float64"
    return ""


def _field_of(name: str) -> str:
    name = name.removeprefix(".")
    return name if name and name != "." else NIL_PATH


def _enum_equal(value: JSON, candidate: JSON) -> bool:
    if deep_equal(value, candidate):
        return True
    numeric = (int, float)
    return (
        type(value) in numeric
        and type(candidate) in numeric
        and type(value) is not bool
        and type(candidate) is not bool
        and value == candidate
    )


def _go_json(value: JSON) -> str:
    """Go's ``json.Marshal`` of an enum value (floats in plain notation below 1e21)."""
    if type(value) is float and math.isfinite(value):
        magnitude = abs(value)
        if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
            return go_float(value)
        text = format(Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Validator:
    """kube-openapi's ``SchemaValidator`` with CRD ratcheting (errors on unchanged values drop)."""

    def validate(self, value: JSON, node: CompiledSchema, name: str, old: JSON) -> list[FieldError]:
        errors: list[FieldError] = []
        self._node(value, node, name, errors, old)
        return errors

    def _node(
        self, value: JSON, node: CompiledSchema, name: str, errors: list[FieldError], old: JSON
    ) -> None:
        if type(value) is node.trivial:
            return
        start = len(errors)
        self._check(value, node, name, errors, old)
        if len(errors) > start and old is not MISSING and deep_equal(value, old):
            del errors[start:]

    def _check(
        self, value: JSON, node: CompiledSchema, name: str, errors: list[FieldError], old: JSON
    ) -> None:
        field_name = _field_of(name)
        if value is None:
            if node.types and not node.nullable:
                errors.append(
                    type_invalid(
                        field_name,
                        "null",
                        f'{name} in body must be of type {",".join(node.types)}: "null"',
                    )
                )
            if node.enum is not None:
                self._enum_error(None, node, field_name, errors)
            return
        kind = type(value)
        # type
        if node.types or node.format:
            self._type(value, node, name, field_name, errors)
        # allOf / anyOf / oneOf / not
        if node.all_of or node.any_of or node.one_of or node.not_ is not None:
            self._composition(value, node, name, errors)
        if kind is str:
            self._string(value, node, name, field_name, errors)
        elif (kind is int or kind is float) and (
            node.maximum is not None or node.minimum is not None or node.multiple_of is not None
        ):
            self._number(value, node, name, field_name, errors)
        elif kind is list:
            self._array(value, node, name, field_name, errors, old)
        if node.enum is not None and not any(_enum_equal(value, e) for e in node.enum):
            self._enum_error(value, node, field_name, errors)
        if kind is dict:
            self._object(value, node, name, field_name, errors, old)

    def _enum_error(
        self, value: JSON, node: CompiledSchema, field_name: str, errors: list[FieldError]
    ) -> None:
        assert node.enum is not None
        allowed = [e if type(e) is str else _go_json(e) for e in node.enum]
        errors.append(not_supported(field_name, value, allowed))

    def _type(
        self,
        value: JSON,
        node: CompiledSchema,
        name: str,
        field_name: str,
        errors: list[FieldError],
    ) -> None:
        schema_type = json_type(value)
        types = node.types
        is_float_int = schema_type == "number" and value.is_integer() and "integer" in types
        is_int_float = schema_type == "integer" and "number" in types
        kind = type(value)
        if (
            kind is not str
            and kind is not list
            and node.format
            and not (schema_type in types or is_float_int or is_int_float)
            and _go_format_of(value) != node.format
            and not (node.format == "int64" and _go_format_of(value) == "int32")
        ):
            data_format = _go_format_of(value)
            errors.append(
                type_invalid(
                    field_name,
                    data_format,
                    f"{name} in body must be of type {node.format}: {go_quote(data_format)}",
                )
            )
            return
        if (
            "number" not in types
            and "integer" not in types
            and node.format
            and (kind is str or kind is list)
        ):
            return
        if not types:
            return
        if not (schema_type in types or is_float_int or is_int_float):
            errors.append(
                type_invalid(
                    field_name,
                    schema_type,
                    f"{name} in body must be of type {','.join(types)}: {go_quote(schema_type)}",
                )
            )

    def _string(
        self, value: str, node: CompiledSchema, name: str, field_name: str, errors: list[FieldError]
    ) -> None:
        if node.max_length is not None and len(value) > node.max_length:
            errors.append(too_long(field_name, value, node.max_length))
        elif node.min_length is not None and len(value) < node.min_length:
            errors.append(
                invalid(
                    field_name,
                    value,
                    f"{name} in body should be at least {node.min_length} chars long",
                )
            )
        elif node.pattern is not None:
            try:
                matched = compile_regex(node.pattern).test(value)
                shown = node.pattern
            except CelError as err:
                matched = False
                shown = f"{node.pattern}, but pattern is invalid: {err}"
            if not matched:
                errors.append(invalid(field_name, value, f"{name} in body should match '{shown}'"))
        if node.format_check is not None and not node.format_check(value):
            errors.append(
                type_invalid(
                    field_name,
                    value,
                    f"{name} in body must be of type {node.format}: {go_quote(value)}",
                )
            )

    def _number(
        self,
        value: int | float,
        node: CompiledSchema,
        name: str,
        field_name: str,
        errors: list[FieldError],
    ) -> None:
        is_int = type(value) is int

        def bound(limit: float) -> str:
            return str(int(limit)) if is_int else go_float(limit)

        if node.multiple_of is not None:
            factor = node.multiple_of
            if factor < 0:
                errors.append(
                    invalid(
                        field_name,
                        factor,
                        f"factor MultipleOf declared for {name} must be positive: "
                        f"{go_float(factor)}",
                    )
                )
            elif is_int:
                int_factor = int(factor)
                if int_factor == 0 or int(value / int_factor) * int_factor != value:
                    errors.append(
                        invalid(
                            field_name,
                            value,
                            f"{name} in body should be a multiple of {int_factor}",
                        )
                    )
            else:
                quotient = (1 / factor * value) if factor < 1 else (value / factor)
                if not (math.isfinite(quotient) and quotient == math.floor(quotient)):
                    errors.append(
                        invalid(
                            field_name,
                            value,
                            f"{name} in body should be a multiple of {go_float(factor)}",
                        )
                    )
        if node.minimum is not None:
            limit = node.minimum if not is_int else float(int(node.minimum))
            below = value <= limit if node.exclusive_minimum else value < limit
            if below:
                word = "greater than" if node.exclusive_minimum else "greater than or equal to"
                errors.append(
                    invalid(
                        field_name, value, f"{name} in body should be {word} {bound(node.minimum)}"
                    )
                )
        if node.maximum is not None:
            limit = node.maximum if not is_int else float(int(node.maximum))
            above = value >= limit if node.exclusive_maximum else value > limit
            if above:
                word = "less than" if node.exclusive_maximum else "less than or equal to"
                errors.append(
                    invalid(
                        field_name, value, f"{name} in body should be {word} {bound(node.maximum)}"
                    )
                )

    def _array(
        self,
        value: list[JSON],
        node: CompiledSchema,
        name: str,
        field_name: str,
        errors: list[FieldError],
        old: JSON,
    ) -> None:
        if node.items is not None:
            correlate = list_correlator(node, old)
            for i, item in enumerate(value):
                self._node(item, node.items, f"{name}[{i}]", errors, correlate(item))
        size = len(value)
        if node.min_items is not None and size < node.min_items:
            errors.append(
                invalid(
                    field_name, size, f"{name} in body should have at least {node.min_items} items"
                )
            )
        if node.max_items is not None and size > node.max_items:
            errors.append(too_many(field_name, size, node.max_items))
        if node.unique_items:
            seen: list[JSON] = []
            for item in value:
                if any(deep_equal(item, s) for s in seen):
                    errors.append(
                        invalid(field_name, "", f"{name} in body shouldn't contain duplicates")
                    )
                    break
                seen.append(item)

    def _object(
        self,
        value: dict[str, JSON],
        node: CompiledSchema,
        name: str,
        field_name: str,
        errors: list[FieldError],
        old: JSON,
    ) -> None:
        size = len(value)
        if node.min_properties is not None and size < node.min_properties:
            errors.append(
                invalid(
                    field_name,
                    size,
                    f"{name} in body should have at least {node.min_properties} properties",
                )
            )
            return
        if node.max_properties is not None and size > node.max_properties:
            errors.append(too_many(field_name, size, node.max_properties))
            return
        props = node.properties
        old_map = old if type(old) is dict else None
        if not node.additional_allowed:
            for key in value:
                if props is None or key not in props:
                    errors.append(
                        invalid(field_name, key, f"{name}.{key} in body is a forbidden property")
                    )
        elif node.additional is not None:
            for key, child in value.items():
                if props is None or key not in props:
                    prior = old_map.get(key, MISSING) if old_map is not None else MISSING
                    self._node(child, node.additional, f"{name}.{key}", errors, prior)
        if props is not None:
            for key, prop in props.items():
                if key in value:
                    prior = old_map.get(key, MISSING) if old_map is not None else MISSING
                    self._node(value[key], prop, child_path(name, key), errors, prior)
        for key in node.required:
            if key not in value:
                errors.append(required(_field_of(f"{name}.{key}")))

    def _composition(
        self, value: JSON, node: CompiledSchema, name: str, errors: list[FieldError]
    ) -> None:
        def run(sub: CompiledSchema) -> list[FieldError]:
            found: list[FieldError] = []
            Validator()._check(value, sub, name, found, MISSING)
            return found

        if node.any_of:
            results = [run(s) for s in node.any_of]
            if not any(not r for r in results):
                errors.append(
                    invalid(
                        NIL_PATH, "", f"{go_quote(name)} must validate at least one schema (anyOf)"
                    )
                )
                errors.extend(results[0])
        if node.one_of:
            results = [run(s) for s in node.one_of]
            valid = sum(1 for r in results if not r)
            if valid != 1:
                detail = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
                errors.append(
                    invalid(
                        NIL_PATH,
                        "",
                        f"{go_quote(name)} must validate one and only one schema (oneOf). {detail}",
                    )
                )
                if valid == 0:
                    errors.extend(results[0])
        if node.all_of:
            results = [run(s) for s in node.all_of]
            for r in results:
                errors.extend(r)
            passed = sum(1 for r in results if not r)
            if passed != len(results):
                suffix = ". None validated" if passed == 0 else ""
                errors.append(
                    invalid(
                        NIL_PATH,
                        "",
                        f"{go_quote(name)} must validate all the schemas (allOf){suffix}",
                    )
                )
        if node.not_ is not None and not run(node.not_):
            errors.append(
                invalid(NIL_PATH, "", f"{go_quote(name)} must not validate the schema (not)")
            )


def list_type_errors(value: JSON, node: CompiledSchema, path: str) -> list[FieldError]:
    """Duplicates in ``set`` and ``map`` lists (``x-kubernetes-list-type``), as kube says."""
    errors: list[FieldError] = []
    _list_types(value, node, path, errors)
    return errors


def _list_types(
    value: JSON, node: CompiledSchema | None, path: str, errors: list[FieldError]
) -> None:
    if node is None or not node.has_list_types:
        return
    if type(value) is dict:
        if node.additional is not None:
            for key, child in value.items():
                if node.properties is None or key not in node.properties:
                    _list_types(child, node.additional, f"{path}[{key}]", errors)
        if node.properties is not None:
            for key, child in value.items():
                prop = node.properties.get(key)
                if prop is not None:
                    _list_types(child, prop, child_path(path, key), errors)
    elif type(value) is list:
        if node.list_type == "set":
            for i in _non_unique([_set_key(v) for v in value]):
                errors.append(duplicate(f"{path}[{i}]", value[i]))
        elif node.list_type == "map":
            _list_map_errors(value, node, path, errors)
        if node.items is not None:
            for i, child in enumerate(value):
                _list_types(child, node.items, f"{path}[{i}]", errors)


def _set_key(value: JSON) -> tuple[str, str]:
    if type(value) in (dict, list):
        return ("compound", json.dumps(value, sort_keys=True, separators=(",", ":")))
    return (type(value).__name__, repr(value))


def _non_unique(keys: list[Any]) -> Iterator[int]:
    """Indices of the first repeat of each value (kube reports each duplicate value once)."""
    counts: dict[Any, int] = {}
    for i, key in enumerate(keys):
        seen = counts.get(key, 0)
        counts[key] = seen + 1
        if seen == 1:
            yield i


def _list_map_errors(
    value: list[JSON], node: CompiledSchema, path: str, errors: list[FieldError]
) -> None:
    for i, item in enumerate(value):
        if item is not None and type(item) is not dict:
            errors.append(
                invalid(f"{path}[{i}]", item, "must be an object for an array of list-type map")
            )
            return
    if len(value) <= 1:
        return
    key_values: list[dict[str, JSON]] = []
    for item in value:
        key: dict[str, JSON] = {}
        if type(item) is dict:
            for name in node.list_map_keys:
                if name in item:
                    key[name] = item[name]
        key_values.append(key)
    for i in _non_unique([_set_key(k) for k in key_values]):
        errors.append(duplicate(f"{path}[{i}]", key_values[i]))
