"""``x-kubernetes-validations`` through admission: paths, messages, reasons, oldSelf, ratcheting."""

from __future__ import annotations

from typing import Any

import pytest
from flokoa_envtest.schema import admit

ROOT = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"type": "object"},
}


def schema_with(spec: dict[str, Any], **root_extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {**ROOT, "spec": spec}, **root_extra}


def obj(spec: Any, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "x.io/v1",
        "kind": "X",
        "metadata": {"name": "a", **metadata},
        "spec": spec,
    }


def check(schema: dict[str, Any], spec: Any, *, old: Any = None, **metadata: Any) -> list[str]:
    old_obj = obj(old) if old is not None else None
    _, errors = admit(schema, obj(spec, **metadata), old=old_obj)
    return [str(e) for e in errors]


def rule(text: str, **extra: Any) -> dict[str, Any]:
    return {"rule": text, **extra}


def field(schema: dict[str, Any], *rules: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "x-kubernetes-validations": list(rules)}


PROVIDERS = field(
    {
        "type": "object",
        "properties": {
            "openai": {"type": "object", "properties": {"baseURL": {"type": "string"}}},
            "anthropic": {"type": "object"},
        },
    },
    rule(
        "[has(self.openai), has(self.anthropic)].filter(x, x).size() == 1",
        message="exactly one provider must be set",
    ),
)


def test_a_failing_rule_reports_the_node_type_and_message() -> None:
    schema = schema_with(PROVIDERS)
    assert check(schema, {"openai": {}}) == []
    assert check(schema, {"openai": {}, "anthropic": {}}) == [
        'spec: Invalid value: "object": exactly one provider must be set'
    ]


NODE_TYPES = [
    ({"type": "string"}, "x", 'spec.v: Invalid value: "string": failed rule: false'),
    ({"type": "integer"}, 1, 'spec.v: Invalid value: "integer": failed rule: false'),
    ({"type": "number"}, 1.5, 'spec.v: Invalid value: "number": failed rule: false'),
    ({"type": "boolean"}, True, 'spec.v: Invalid value: "boolean": failed rule: false'),
    (
        {"type": "array", "items": {"type": "string"}},
        [],
        'spec.v: Invalid value: "array": failed rule: false',
    ),
    ({"x-kubernetes-int-or-string": True}, 1, 'spec.v: Invalid value: "": failed rule: false'),
]


@pytest.mark.parametrize(("schema", "value", "expected"), NODE_TYPES)
def test_failures_name_the_schema_type_not_the_value(
    schema: dict[str, Any], value: Any, expected: str
) -> None:
    spec = {"type": "object", "properties": {"v": field(schema, rule("false"))}}
    assert check(schema_with(spec), {"v": value}) == [expected]


def test_rules_at_the_resource_root_report_a_nil_path_and_see_limited_metadata() -> None:
    schema = schema_with(
        {"type": "object"},
        **{
            "x-kubernetes-validations": [
                rule("self.metadata.name.startsWith('a')", message="name must start with a"),
                rule("!has(self.metadata.namespace)", message="namespace is not visible"),
                rule("self.kind == 'X' && self.apiVersion == 'x.io/v1'", message="type meta"),
            ]
        },
    )
    assert check(schema, {}, namespace="default") == []
    _, errors = admit(schema, {**obj({}), "metadata": {"name": "b"}})
    assert [str(e) for e in errors] == ['<nil>: Invalid value: "object": name must start with a']


REASONS = [
    ({}, 'spec.v: Invalid value: "string": bad'),
    ({"reason": "FieldValueForbidden"}, "spec.v: Forbidden: bad"),
    ({"reason": "FieldValueRequired"}, "spec.v: Required value: bad"),
    ({"reason": "FieldValueDuplicate"}, 'spec.v: Duplicate value: "string"'),
    ({"reason": "FieldValueInvalid"}, 'spec.v: Invalid value: "string": bad'),
]


@pytest.mark.parametrize(("extra", "expected"), REASONS)
def test_reasons(extra: dict[str, Any], expected: str) -> None:
    spec = {
        "type": "object",
        "properties": {"v": field({"type": "string"}, rule("false", message=" bad ", **extra))},
    }
    _, errors = admit(schema_with(spec), obj({"v": "x"}))
    assert [str(e) for e in errors] == [expected]
    assert errors[0].type == extra.get("reason", "FieldValueInvalid")


MESSAGE_EXPRESSIONS = [
    ("'value ' + self + ' is not allowed'", "value x is not allowed"),
    ("'  padded  '", "padded"),
    ("42", "fallback"),
    ("self.missing", "fallback"),
    ("''", "fallback"),
    ("'two\\nlines'", "fallback"),
]


@pytest.mark.parametrize(("expression", "expected"), MESSAGE_EXPRESSIONS)
def test_message_expression_and_its_fallbacks(expression: str, expected: str) -> None:
    spec = {
        "type": "object",
        "properties": {
            "v": field(
                {"type": "string"}, rule("false", message="fallback", messageExpression=expression)
            )
        },
    }
    assert check(schema_with(spec), {"v": "x"}) == [f'spec.v: Invalid value: "string": {expected}']


def test_message_expression_without_a_message_falls_back_to_the_rule() -> None:
    spec = field({"type": "object"}, rule("1 == 2", messageExpression="1"))
    assert check(schema_with(spec), {}) == ['spec: Invalid value: "object": failed rule: 1 == 2']


FIELD_PATHS = [
    (".openai.baseURL", "spec.openai.baseURL"),
    (".openai['baseURL']", "spec.openai.baseURL"),
    (".headers['X-Foo']", "spec.headers[X-Foo]"),
]


@pytest.mark.parametrize(("path", "expected"), FIELD_PATHS)
def test_field_path_moves_the_error(path: str, expected: str) -> None:
    spec = field(
        {
            "type": "object",
            "properties": {
                "openai": {"type": "object", "properties": {"baseURL": {"type": "string"}}},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        rule("false", message="m", fieldPath=path),
    )
    assert check(schema_with(spec), {}) == [f'{expected}: Invalid value: "object": m']


def test_an_invalid_field_path_is_reported_as_a_compile_error() -> None:
    spec = field({"type": "object"}, rule("true", fieldPath=".nope"))
    result = check(schema_with(spec), {})
    assert result == [
        'spec: Invalid value: "object": rule compile error: '
        "fieldPath: does not refer to a valid field"
    ]


RUNTIME_ERRORS = [
    (
        field({"type": "object", "properties": {"x": {"type": "string"}}}, rule("self.x == 'a'")),
        {},
        "spec: Invalid value: \"object\": no such key: x evaluating rule: self.x == 'a'",
    ),
    (
        field({"type": "object"}, rule("1 / 0 == 1", message="with message")),
        {},
        'spec: Invalid value: "object": division by zero evaluating rule: with message',
    ),
    (
        {
            "type": "object",
            "properties": {"port": field({"x-kubernetes-int-or-string": True}, rule("self > 5"))},
        },
        {"port": "http"},
        "spec.port: Invalid value: \"\": 'no such overload': call arguments did not match a "
        "supported operator, function or macro signature for rule: self > 5",
    ),
    (
        field({"type": "object"}, rule("self.(")),
        {},
        'spec: Invalid value: "object": rule compile error: ERROR: <input>:1:6: Syntax error: '
        "unexpected input",
    ),
]


@pytest.mark.parametrize(("spec", "value", "expected"), RUNTIME_ERRORS)
def test_runtime_and_compile_errors(spec: dict[str, Any], value: Any, expected: str) -> None:
    assert check(schema_with(spec), value) == [expected]


def test_rules_in_maps_and_lists_name_the_element() -> None:
    spec = {
        "type": "object",
        "properties": {
            "headers": field(
                {
                    "type": "object",
                    "additionalProperties": field(
                        {"type": "string"},
                        rule("!self.contains('\\r') && !self.contains('\\n')", message="no CR/LF"),
                    ),
                },
                rule("self.all(k, k.matches('^[A-Za-z0-9-]+$'))", message="bad header name"),
            ),
            "items": {
                "type": "array",
                "items": field({"type": "string"}, rule("self != 'forbidden'", message="nope")),
            },
        },
    }
    assert check(
        schema_with(spec), {"headers": {"Bad Name": "x\ny"}, "items": ["ok", "forbidden"]}
    ) == [
        'spec.headers: Invalid value: "object": bad header name',
        'spec.headers[Bad Name]: Invalid value: "string": no CR/LF',
        'spec.items[1]: Invalid value: "string": nope',
    ]


def test_blocking_schema_errors_skip_every_rule() -> None:
    spec = field(
        {
            "type": "object",
            "properties": {"n": {"type": "integer"}, "s": {"type": "string", "pattern": "^a"}},
        },
        rule("false", message="never shown when blocked"),
    )
    assert check(schema_with(spec), {"n": "x"}) == [
        'spec.n: Invalid value: "string": spec.n in body must be of type integer: "string"',
        '<nil>: Invalid value: "null": some validation rules were not checked because the object '
        "was invalid; correct the existing errors to complete validation",
    ]
    # a pattern failure is not blocking: rules still run
    assert check(schema_with(spec), {"s": "b"}) == [
        "spec.s: Invalid value: \"b\": spec.s in body should match '^a'",
        'spec: Invalid value: "object": never shown when blocked',
    ]


def test_no_rules_no_note_about_skipped_rules() -> None:
    spec = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert check(schema_with(spec), {"n": "x"}) == [
        'spec.n: Invalid value: "string": spec.n in body must be of type integer: "string"'
    ]


def test_rules_on_null_values_are_skipped() -> None:
    spec = {
        "type": "object",
        "properties": {"v": field({"type": "string", "nullable": True}, rule("self.size() > 0"))},
    }
    assert check(schema_with(spec), {"v": None}) == []


def test_transition_rules_run_only_on_update() -> None:
    spec = {
        "type": "object",
        "properties": {
            "name": field({"type": "string"}, rule("self == oldSelf", message="name is immutable")),
            "count": field(
                {"type": "integer"}, rule("self >= oldSelf", message="may not decrease")
            ),
        },
    }
    schema = schema_with(spec)
    assert check(schema, {"name": "a", "count": 1}) == []
    assert check(schema, {"name": "a", "count": 2}, old={"name": "a", "count": 1}) == []
    assert check(schema, {"name": "b", "count": 0}, old={"name": "a", "count": 1}) == [
        'spec.name: Invalid value: "string": name is immutable',
        'spec.count: Invalid value: "integer": may not decrease',
    ]
    # a field that did not exist before has no oldSelf: the rule is skipped
    assert check(schema, {"name": "b"}, old={"count": 1}) == []


def test_list_type_map_items_correlate_with_old_items_by_key() -> None:
    spec = {
        "type": "object",
        "properties": {
            "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": field(
                    {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                    },
                    rule("self.port == oldSelf.port", message="port is immutable"),
                ),
            }
        },
    }
    old = {"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]}
    new = {"ports": [{"name": "b", "port": 2}, {"name": "a", "port": 9}, {"name": "c", "port": 3}]}
    assert check(schema_with(spec), new, old=old) == [
        'spec.ports[1]: Invalid value: "object": port is immutable'
    ]


def test_rule_failures_on_unchanged_values_are_ratcheted() -> None:
    spec = {
        "type": "object",
        "properties": {
            "url": field(
                {"type": "string"}, rule("self.startsWith('https://')", message="https only")
            ),
            "other": {"type": "string"},
        },
    }
    schema = schema_with(spec)
    old = {"url": "http://legacy", "other": "a"}
    assert check(schema, {"url": "http://legacy", "other": "b"}, old=old) == []
    assert check(schema, {"url": "http://changed", "other": "b"}, old=old) == [
        'spec.url: Invalid value: "string": https only'
    ]


CEL_VALUES = [
    ({"type": "number"}, 1, "self == 1.0 && self + 0.5 == 1.5"),
    ({"type": "integer"}, 3.0, "self == 3 && self + 1 == 4"),
    ({"type": "string", "format": "byte"}, "aGVsbG8=", "self.size() == 5 && self == b'hello'"),
    (
        {"type": "string", "format": "date-time"},
        "2024-05-01T00:00:00Z",
        "self > timestamp('2024-01-01T00:00:00Z')",
    ),
    ({"type": "string", "format": "duration"}, "90s", "self == duration('1m30s')"),
    (
        {
            "type": "object",
            "properties": {
                "namespace": {"type": "string"},
                "x-y": {"type": "string"},
                "a.b": {"type": "string"},
            },
        },
        {"namespace": "n", "x-y": "d", "a.b": "p"},
        "self.__namespace__ == 'n' && self.x__dash__y == 'd' && self.a__dot__b == 'p'",
    ),
    (
        {"type": "object", "additionalProperties": {"type": "string"}},
        {"x-y": "raw keys"},
        "self['x-y'] == 'raw keys'",
    ),
]


@pytest.mark.parametrize(("schema", "value", "expression"), CEL_VALUES)
def test_values_reach_cel_with_kube_types(
    schema: dict[str, Any], value: Any, expression: str
) -> None:
    spec = {"type": "object", "properties": {"v": field(schema, rule(expression, message="false"))}}
    assert check(schema_with(spec), {"v": value}) == []
