"""Field errors and the 422 Status body, formatted exactly like kube-apiserver (v1.32)."""

from __future__ import annotations

import json

import pytest
from flokoa_envtest.fielderrors import (
    OMIT,
    FieldError,
    aggregate_message,
    duplicate,
    forbidden,
    go_float,
    go_quote,
    go_value,
    invalid,
    invalid_status,
    not_supported,
    required,
    too_long,
    too_many,
    type_invalid,
)

ERRORS = [
    (invalid("spec.x", "abc", "bad"), 'spec.x: Invalid value: "abc": bad'),
    (invalid("spec.x", 5, "bad"), "spec.x: Invalid value: 5: bad"),
    (invalid("spec.x", 2.5, "bad"), "spec.x: Invalid value: 2.5: bad"),
    (invalid("spec.x", True, "bad"), "spec.x: Invalid value: true: bad"),
    (invalid("spec.x", None, "bad"), 'spec.x: Invalid value: "null": bad'),
    (invalid("spec.x", OMIT, "bad"), "spec.x: Invalid value: bad"),
    (
        invalid("spec.x", {"b": 1, "a": "x"}, "bad"),
        'spec.x: Invalid value: map[string]interface {}{"a":"x", "b":1}: bad',
    ),
    (invalid("spec.x", ["a", 1], ""), 'spec.x: Invalid value: []interface {}{"a", 1}'),
    (type_invalid("spec.x", "string", "detail"), 'spec.x: Invalid value: "string": detail'),
    (required("spec.x"), "spec.x: Required value"),
    (required("spec.x", "why"), "spec.x: Required value: why"),
    (forbidden("spec.x", "no"), "spec.x: Forbidden: no"),
    (duplicate("spec.x[1]", "a"), 'spec.x[1]: Duplicate value: "a"'),
    (
        not_supported("spec.x", "c", ["a", "b"]),
        'spec.x: Unsupported value: "c": supported values: "a", "b"',
    ),
    (too_long("spec.x", "abcdef", 5), "spec.x: Too long: may not be more than 5 bytes"),
    (too_many("spec.x", 3, 2), "spec.x: Too many: 3: must have at most 2 items"),
    (too_many("spec.x", 3, 1), "spec.x: Too many: 3: must have at most 1 item"),
]


@pytest.mark.parametrize(("error", "text"), ERRORS)
def test_error_strings(error: FieldError, text: str) -> None:
    assert str(error) == text
    assert error.body() == text.split(": ", 1)[1]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2.0, "2"),
        (1.5, "1.5"),
        (100000.0, "100000"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-3.25, "-3.25"),
        (1e21, "1e+21"),
        (float("inf"), "+Inf"),
    ],
)
def test_go_float(value: float, text: str) -> None:
    assert go_float(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", '"plain"'),
        ('q"b\\', '"q\\"b\\\\"'),
        ("a\nb\tc\r", '"a\\nb\\tc\\r"'),
        ("\x00\x7f", '"\\x00\\x7f"'),
        ("héllo ✓", '"héllo ✓"'),
        ("\u200b", '"\\u200b"'),
    ],
)
def test_go_quote(value: str, text: str) -> None:
    assert go_quote(value) == text


def test_go_value_of_nested_json() -> None:
    assert go_value({"k": {"n": [1, None, 1.5]}}) == (
        'map[string]interface {}{"k":map[string]interface {}{"n":[]interface {}{1, '
        "interface {}(nil), 1.5}}}"
    )


def test_aggregate_is_bare_for_one_error_bracketed_and_deduplicated_for_more() -> None:
    one = required("spec.a")
    two = invalid("spec.b", "x", "bad")
    assert aggregate_message([one]) == "spec.a: Required value"
    assert (
        aggregate_message([one, two, one])
        == '[spec.a: Required value, spec.b: Invalid value: "x": bad]'
    )


def test_invalid_status_for_a_custom_resource() -> None:
    errors = [
        invalid(
            "spec", "object", "exactly one of openai, anthropic, google or bedrock must be set"
        ),
        required("spec.apiKeySecretRef.key"),
    ]
    body = invalid_status("ModelProvider", "agent.flokoa.ai", "x", errors)
    expected = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'ModelProvider.agent.flokoa.ai "x" is invalid: [spec: Invalid value: "object": '
        "exactly one of openai, anthropic, google or bedrock must be set, "
        "spec.apiKeySecretRef.key: Required value]",
        "reason": "Invalid",
        "details": {
            "name": "x",
            "group": "agent.flokoa.ai",
            "kind": "ModelProvider",
            "causes": [
                {
                    "reason": "FieldValueInvalid",
                    "message": 'Invalid value: "object": exactly one of openai, anthropic, google '
                    "or bedrock must be set",
                    "field": "spec",
                },
                {
                    "reason": "FieldValueRequired",
                    "message": "Required value",
                    "field": "spec.apiKeySecretRef.key",
                },
            ],
        },
        "code": 422,
    }
    assert body == expected
    # key order matches kube-apiserver's JSON
    assert list(json.loads(json.dumps(body))) == list(expected)


def test_invalid_status_for_a_core_object_has_no_group() -> None:
    body = invalid_status("Secret", "", "s", [invalid("data[x]", "x", "bad key")])
    assert body["message"] == 'Secret "s" is invalid: data[x]: Invalid value: "x": bad key'
    assert body["details"] == {
        "name": "s",
        "kind": "Secret",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": 'Invalid value: "x": bad key',
                "field": "data[x]",
            }
        ],
    }


def test_invalid_status_without_errors() -> None:
    body = invalid_status("X", "x.io", "n", [])
    assert body["message"] == 'X.x.io "n" is invalid'
    assert body["details"]["causes"] == []
