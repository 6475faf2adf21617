"""Structural-schema admission: pruning, defaulting and kube-openapi validation messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flokoa_envtest.schema import admit, compile_schema, rule_errors, unknown_fields

ROOT_META = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"type": "object"},
}


def crd_schema(spec: dict[str, Any], *, required: list[str] | None = None) -> dict[str, Any]:
    """A CRD root schema whose ``spec`` is ``spec``."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {**ROOT_META, "spec": spec, "status": {"type": "object"}},
    }
    if required:
        schema["required"] = required
    return schema


def obj(spec: Any) -> dict[str, Any]:
    return {"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a"}, "spec": spec}


def messages(schema: dict[str, Any], spec: Any, **kwargs: Any) -> list[str]:
    _, errors = admit(schema, obj(spec), **kwargs)
    return [str(e) for e in errors]


def prop(**props: Any) -> dict[str, Any]:
    return crd_schema({"type": "object", "properties": props})


# --- types -----------------------------------------------------------------------------------

TYPE_CASES = [
    ({"type": "integer"}, 5, []),
    ({"type": "integer"}, 5.0, []),
    (
        {"type": "integer"},
        5.5,
        ['spec.v: Invalid value: "number": spec.v in body must be of type integer: "number"'],
    ),
    (
        {"type": "integer"},
        "5",
        ['spec.v: Invalid value: "string": spec.v in body must be of type integer: "string"'],
    ),
    (
        {"type": "integer"},
        True,
        ['spec.v: Invalid value: "boolean": spec.v in body must be of type integer: "boolean"'],
    ),
    ({"type": "number"}, 3, []),
    ({"type": "number"}, 3.25, []),
    ({"type": "string"}, "", []),
    (
        {"type": "string"},
        1,
        ['spec.v: Invalid value: "integer": spec.v in body must be of type string: "integer"'],
    ),
    (
        {"type": "boolean"},
        "true",
        ['spec.v: Invalid value: "string": spec.v in body must be of type boolean: "string"'],
    ),
    (
        {"type": "object"},
        [],
        ['spec.v: Invalid value: "array": spec.v in body must be of type object: "array"'],
    ),
    (
        {"type": "array", "items": {"type": "string"}},
        {},
        ['spec.v: Invalid value: "object": spec.v in body must be of type array: "object"'],
    ),
    (
        {"type": "array", "items": {"type": "string"}},
        ["a", None],
        ['spec.v[1]: Invalid value: "null": spec.v[1] in body must be of type string: "null"'],
    ),
    ({"x-kubernetes-int-or-string": True}, 8080, []),
    ({"x-kubernetes-int-or-string": True}, "http", []),
    (
        {"x-kubernetes-int-or-string": True},
        1.5,
        [
            'spec.v: Invalid value: "number": spec.v in body must be of type integer,string: '
            '"number"'
        ],
    ),
    ({"type": "object", "x-kubernetes-preserve-unknown-fields": True}, {"any": [1]}, []),
    ({"type": "integer", "format": "int32"}, 2**40, []),
]


@pytest.mark.parametrize(("schema", "value", "expected"), TYPE_CASES)
def test_types(schema: dict[str, Any], value: Any, expected: list[str]) -> None:
    assert messages(prop(v=schema), {"v": value}) == expected


def test_null_of_a_non_nullable_field_is_dropped_and_a_nullable_one_kept() -> None:
    schema = prop(a={"type": "string"}, b={"type": "string", "nullable": True})
    out, errors = admit(schema, obj({"a": None, "b": None}))
    assert errors == []
    assert out["spec"] == {"b": None}


def test_a_wrong_type_at_the_root_of_spec_names_the_field() -> None:
    schema = crd_schema({"type": "object"})
    assert messages(schema, "text") == [
        'spec: Invalid value: "string": spec in body must be of type object: "string"'
    ]


# --- bounds, lengths, patterns, enums -------------------------------------------------------

BOUND_CASES = [
    ({"type": "integer", "minimum": 0}, 0, []),
    (
        {"type": "integer", "minimum": 0},
        -1,
        ["spec.v: Invalid value: -1: spec.v in body should be greater than or equal to 0"],
    ),
    (
        {"type": "integer", "minimum": 0, "exclusiveMinimum": True},
        0,
        ["spec.v: Invalid value: 0: spec.v in body should be greater than 0"],
    ),
    (
        {"type": "integer", "maximum": 600},
        601,
        ["spec.v: Invalid value: 601: spec.v in body should be less than or equal to 600"],
    ),
    (
        {"type": "integer", "maximum": 10, "exclusiveMaximum": True},
        10,
        ["spec.v: Invalid value: 10: spec.v in body should be less than 10"],
    ),
    (
        {"type": "number", "maximum": 1.5},
        2.25,
        ["spec.v: Invalid value: 2.25: spec.v in body should be less than or equal to 1.5"],
    ),
    (
        {"type": "number", "minimum": 1000000},
        5.5,
        ["spec.v: Invalid value: 5.5: spec.v in body should be greater than or equal to 1e+06"],
    ),
    (
        {"type": "integer", "multipleOf": 5},
        12,
        ["spec.v: Invalid value: 12: spec.v in body should be a multiple of 5"],
    ),
    ({"type": "integer", "multipleOf": 5}, 15, []),
    (
        {"type": "number", "multipleOf": 0.5},
        0.3,
        ["spec.v: Invalid value: 0.3: spec.v in body should be a multiple of 0.5"],
    ),
    ({"type": "string", "maxLength": 3}, "ééé", []),
    (
        {"type": "string", "maxLength": 3},
        "abcd",
        ["spec.v: Too long: may not be more than 3 bytes"],
    ),
    ({"type": "string", "maxLength": 1}, "ab", ["spec.v: Too long: may not be more than 1 byte"]),
    (
        {"type": "string", "minLength": 1},
        "",
        ['spec.v: Invalid value: "": spec.v in body should be at least 1 chars long'],
    ),
    (
        {"type": "string", "pattern": "^[a-z]+$"},
        "abc\n",
        ["spec.v: Invalid value: \"abc\\n\": spec.v in body should match '^[a-z]+$'"],
    ),
    ({"type": "string", "pattern": "^[a-z]+$"}, "abc", []),
    (
        {"type": "string", "enum": ["a", "b"]},
        "c",
        ['spec.v: Unsupported value: "c": supported values: "a", "b"'],
    ),
    (
        {"type": "integer", "enum": [1, 2]},
        3,
        ['spec.v: Unsupported value: 3: supported values: "1", "2"'],
    ),
    ({"type": "integer", "enum": [1, 2]}, 2, []),
]


@pytest.mark.parametrize(("schema", "value", "expected"), BOUND_CASES)
def test_bounds(schema: dict[str, Any], value: Any, expected: list[str]) -> None:
    assert messages(prop(v=schema), {"v": value}) == expected


FORMAT_CASES = [
    ("date-time", "2024-01-02T03:04:05Z", True),
    ("date-time", "2024-01-02T03:04:05.123+02:00", True),
    ("date-time", "2024-01-02 03:04:05Z", False),
    ("date-time", "2024-02-30T00:00:00Z", False),
    ("date-time", "2024-01-02T03:04:05", False),
    ("date", "2024-02-29", True),
    ("date", "2023-02-29", False),
    ("byte", "aGVsbG8=", True),
    ("byte", "not base64!", False),
    ("uri", "https://example.com/a?b=c", True),
    ("uri", "/just/a/path", True),
    ("uri", "example.com", False),
    ("hostname", "api.openai.com", True),
    ("hostname", "-bad.example", False),
    ("ipv4", "10.0.0.1", True),
    ("ipv4", "10.0.0.256", False),
    ("ipv6", "::1", True),
    ("cidr", "10.0.0.0/8", True),
    ("cidr", "10.0.0.0/33", False),
    ("uuid", "123e4567-e89b-12d3-a456-426614174000", True),
    ("uuid", "nope", False),
    ("duration", "1h30m", True),
    ("duration", "3 days", True),
    ("duration", "soon", False),
    ("email", "a@b.example", True),
    ("email", "nobody", False),
    ("int32", "anything", True),
    ("made-up-format", "anything", True),
]


@pytest.mark.parametrize(("fmt", "value", "ok"), FORMAT_CASES)
def test_string_formats(fmt: str, value: str, ok: bool) -> None:
    result = messages(prop(v={"type": "string", "format": fmt}), {"v": value})
    if ok:
        assert result == []
    else:
        from flokoa_envtest.fielderrors import go_quote

        assert result == [
            f"spec.v: Invalid value: {go_quote(value)}: spec.v in body must be of type {fmt}: "
            f"{go_quote(value)}"
        ]


# --- objects, maps and arrays ---------------------------------------------------------------


def test_required_fields_at_every_level() -> None:
    schema = crd_schema(
        {
            "type": "object",
            "required": ["ref"],
            "properties": {
                "ref": {
                    "type": "object",
                    "required": ["name", "key"],
                    "properties": {"name": {"type": "string"}, "key": {"type": "string"}},
                }
            },
        },
        required=["spec"],
    )
    assert messages(schema, {"ref": {"name": "s"}}) == ["spec.ref.key: Required value"]
    assert messages(schema, {}) == ["spec.ref: Required value"]
    _, errors = admit(schema, {"apiVersion": "x.io/v1", "kind": "X", "metadata": {}})
    assert [str(e) for e in errors] == ["spec: Required value"]


def test_maps_validate_every_value_with_dotted_paths() -> None:
    schema = prop(
        labels={
            "type": "object",
            "additionalProperties": {"type": "string", "maxLength": 3},
            "maxProperties": 2,
        }
    )
    assert messages(schema, {"labels": {"a": "ok", "X-Long": "toolong"}}) == [
        "spec.labels.X-Long: Too long: may not be more than 3 bytes"
    ]
    assert messages(schema, {"labels": {"a": "1", "b": "2", "c": "3"}}) == [
        "spec.labels: Too many: 3: must have at most 2 items"
    ]


def test_min_properties() -> None:
    schema = prop(
        m={"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1}
    )
    assert messages(schema, {"m": {}}) == [
        "spec.m: Invalid value: 0: spec.m in body should have at least 1 properties"
    ]


def test_arrays_bounds_and_uniqueness() -> None:
    schema = prop(
        items={
            "type": "array",
            "items": {"type": "string", "minLength": 2},
            "minItems": 1,
            "maxItems": 2,
            "uniqueItems": True,
        }
    )
    assert messages(schema, {"items": []}) == [
        "spec.items: Invalid value: 0: spec.items in body should have at least 1 items"
    ]
    assert messages(schema, {"items": ["ab", "cd", "ef"]}) == [
        "spec.items: Too many: 3: must have at most 2 items"
    ]
    assert messages(schema, {"items": ["ab", "x"]}) == [
        'spec.items[1]: Invalid value: "x": spec.items[1] in body should be at least 2 chars long'
    ]
    assert messages(schema, {"items": ["ab", "ab"]}) == [
        'spec.items: Invalid value: "": spec.items in body shouldn\'t contain duplicates'
    ]


def test_list_type_set_and_map_uniqueness() -> None:
    schema = prop(
        tags={"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        ports={
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
            },
        },
    )
    assert messages(schema, {"tags": ["a", "b", "a", "a"], "ports": []}) == [
        'spec.tags[2]: Duplicate value: "a"'
    ]
    assert messages(schema, {"ports": [{"name": "h", "port": 1}, {"name": "h", "port": 2}]}) == [
        'spec.ports[1]: Duplicate value: map[string]interface {}{"name":"h"}'
    ]


def test_all_of_any_of_one_of_not() -> None:
    schema = prop(
        v={"type": "string", "anyOf": [{"maxLength": 1}, {"pattern": "^x"}]},
        w={"type": "string", "not": {"pattern": "^bad"}},
    )
    assert messages(schema, {"v": "x-long", "w": "ok"}) == []
    result = messages(schema, {"v": "long", "w": "bad!"})
    assert result == [
        '<nil>: Invalid value: "": "spec.v" must validate at least one schema (anyOf)',
        "spec.v: Too long: may not be more than 1 byte",
        '<nil>: Invalid value: "": "spec.w" must not validate the schema (not)',
    ]


# --- pruning and defaulting -----------------------------------------------------------------


def test_pruning_unknown_fields_everywhere_but_preserved_subtrees() -> None:
    schema = crd_schema(
        {
            "type": "object",
            "properties": {
                "known": {"type": "string"},
                "list": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"a": {"type": "string"}}},
                },
                "free": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"typed": {"type": "object", "properties": {}}},
                },
                "embedded": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {},
                },
            },
        }
    )
    value = obj(
        {
            "known": "k",
            "unknown": 1,
            "list": [{"a": "x", "b": "y"}],
            "free": {"anything": {"goes": True}, "typed": {"dropped": 1}},
            "embedded": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "x": 1}},
        }
    )
    value["metadata"]["bogus"] = True
    value["extra"] = 1
    out, errors = admit(schema, value)
    assert errors == []
    assert out["spec"] == {
        "known": "k",
        "list": [{"a": "x"}],
        "free": {"anything": {"goes": True}, "typed": {}},
        "embedded": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}},
    }
    assert out["metadata"] == {"name": "a"}
    assert "extra" not in out
    assert unknown_fields(schema, value) == [
        "extra",
        "metadata.bogus",
        "spec.embedded.metadata.x",
        "spec.free.typed.dropped",
        "spec.list[0].b",
        "spec.unknown",
    ]


def test_admit_works_on_a_copy() -> None:
    schema = prop(a={"type": "string", "default": "d"})
    value = obj({"junk": 1})
    before = copy.deepcopy(value)
    out, _ = admit(schema, value)
    assert value == before
    assert out["spec"] == {"a": "d"}


def test_prune_false_keeps_unknown_fields() -> None:
    schema = prop(a={"type": "string"})
    out, errors = admit(schema, obj({"a": "x", "b": 1}), prune=False)
    assert out["spec"] == {"a": "x", "b": 1}
    assert errors == []


def test_defaults_apply_to_absent_fields_inside_present_objects() -> None:
    schema = crd_schema(
        {
            "type": "object",
            "properties": {
                "timeout": {"type": "integer", "default": 30},
                "tls": {
                    "type": "object",
                    "properties": {"useSystemCAs": {"type": "boolean", "default": True}},
                },
                "retry": {
                    "type": "object",
                    "default": {},
                    "properties": {"count": {"type": "integer", "default": 3}},
                },
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"weight": {"type": "integer", "default": 1}},
                    },
                },
                "given": {"type": "string", "default": "d"},
                "nulled": {"type": "string", "default": "n"},
            },
        }
    )
    out, errors = admit(schema, obj({"items": [{}, {"weight": 5}], "given": "x", "nulled": None}))
    assert errors == []
    assert out["spec"] == {
        "timeout": 30,
        "retry": {"count": 3},
        "items": [{"weight": 1}, {"weight": 5}],
        "given": "x",
        "nulled": "n",
    }
    out, _ = admit(schema, obj({"tls": {}}))
    assert out["spec"]["tls"] == {"useSystemCAs": True}


def test_defaults_of_an_absent_parent_do_not_appear() -> None:
    schema = prop(tls={"type": "object", "properties": {"x": {"type": "boolean", "default": True}}})
    out, _ = admit(schema, obj({}))
    assert out["spec"] == {}


def test_default_values_are_copied_not_shared() -> None:
    schema = prop(
        a={"type": "object", "default": {"k": "v"}, "properties": {"k": {"type": "string"}}}
    )
    first, _ = admit(schema, obj({}))
    first["spec"]["a"]["k"] = "changed"
    second, _ = admit(schema, obj({}))
    assert second["spec"]["a"] == {"k": "v"}


# --- ratcheting -----------------------------------------------------------------------------


def test_unchanged_invalid_values_are_ratcheted_on_update() -> None:
    schema = prop(a={"type": "string", "maxLength": 2}, b={"type": "string"})
    old = obj({"a": "too long", "b": "x"})
    assert messages(schema, {"a": "too long", "b": "y"}, old=old) == []
    assert messages(schema, {"a": "too long!", "b": "y"}, old=old) == [
        "spec.a: Too long: may not be more than 2 bytes"
    ]
    assert messages(schema, {"a": "too long", "b": "y"}) == [
        "spec.a: Too long: may not be more than 2 bytes"
    ]


def test_compile_schema_is_cached_per_schema_object() -> None:
    schema = prop(a={"type": "string"})
    assert compile_schema(schema) is compile_schema(schema)
    assert compile_schema(copy.deepcopy(schema)) is not compile_schema(schema)


def test_rule_errors_reports_rules_that_do_not_compile() -> None:
    schema = prop(
        a={"type": "string", "x-kubernetes-validations": [{"rule": "self.size( > 1"}]},
        b={"type": "string", "x-kubernetes-validations": [{"rule": "nope == 1"}]},
        c={"type": "string", "x-kubernetes-validations": [{"rule": "self.matches('(')"}]},
        d={"type": "string", "x-kubernetes-validations": [{"rule": "self.size() > 1"}]},
    )
    errors = rule_errors(schema)
    assert [e.field for e in errors] == [
        "openAPIV3Schema.properties[spec].properties[a].x-kubernetes-validations[0].rule",
        "openAPIV3Schema.properties[spec].properties[b].x-kubernetes-validations[0].rule",
        "openAPIV3Schema.properties[spec].properties[c].x-kubernetes-validations[0].rule",
    ]
    assert "undeclared reference to 'nope'" in errors[1].message
    assert errors[2].message.startswith("compilation failed: error parsing regexp")
