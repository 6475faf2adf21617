"""Property tests: admission and CEL evaluation never crash on arbitrary JSON."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from flokoa_envtest.cel import CelError, compile_expression
from flokoa_envtest.fielderrors import FieldError
from flokoa_envtest.schema import admit, unknown_fields
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HTTP_URL = "isURL(self) && url(self).getScheme() in ['http', 'https']"
REF = {
    "type": "object",
    "required": ["name", "key"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 253},
        "key": {"type": "string", "pattern": "^[-._a-zA-Z0-9]+$"},
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "properties": {
                "apiKeySecretRef": REF,
                "openai": {
                    "type": "object",
                    "properties": {
                        "baseURL": {
                            "type": "string",
                            "x-kubernetes-validations": [{"rule": HTTP_URL}],
                        },
                        "timeoutSeconds": {"type": "integer", "minimum": 1, "default": 60},
                    },
                },
                "anthropic": {"type": "object", "properties": {"version": {"type": "string"}}},
                "defaultHeaders": {
                    "type": "object",
                    "maxProperties": 32,
                    "additionalProperties": {
                        "type": "string",
                        "x-kubernetes-validations": [
                            {"rule": "!self.contains('\\r') && !self.contains('\\n')"}
                        ],
                    },
                    "x-kubernetes-validations": [
                        {"rule": "self.all(k, k.matches('^[A-Za-z0-9-]+$'))"}
                    ],
                },
                "port": {"x-kubernetes-int-or-string": True},
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "x-kubernetes-list-type": "set",
                },
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
            "x-kubernetes-validations": [
                {
                    "rule": "[has(self.openai), has(self.anthropic)].filter(x, x).size() == 1",
                    "message": "exactly one provider",
                },
                {"rule": "self.port > 0", "messageExpression": "'port ' + string(self.port)"},
            ],
        },
    },
}

keys = st.sampled_from(
    ["apiKeySecretRef", "openai", "anthropic", "defaultHeaders", "port", "tags", "extra",
     "name", "key", "baseURL", "timeoutSeconds", "version", "X-Foo", "bad key", "x\n"]
)  # fmt: skip
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(keys | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=25,
)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(spec=json_values, old_spec=st.none() | json_values)
def test_admit_never_raises_and_returns_json(spec: Any, old_spec: Any) -> None:
    value = {"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "n"}, "spec": spec}
    old = None if old_spec is None else {**value, "spec": old_spec}
    out, errors = admit(SCHEMA, value, old=old)
    json.dumps(out)
    assert all(isinstance(e, FieldError) and str(e) for e in errors)
    unknown_fields(SCHEMA, value)
    # admission is idempotent on what it accepted (under the same old object: ratcheting)
    if not errors:
        again, errors_again = admit(SCHEMA, out, old=old)
        assert again == out
        assert errors_again == []


EXPRESSIONS = [
    "self.all(k, k.matches('^[A-Za-z0-9-]+$'))",
    "self.size() > 0 && self[0] == 'a'",
    "has(self.a) ? self.a + 1 > 2 : self.exists(x, x == 1)",
    "isURL(self) && url(self).getHost() != ''",
    "self.map(x, x).filter(x, x != null).size() >= 0",
    "string(self) != ''",
]


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(self_value=json_values)
def test_cel_errors_are_cel_errors(self_value: Any) -> None:
    for expression in EXPRESSIONS:
        with contextlib.suppress(CelError):
            compile_expression(expression).evaluate({"self": self_value})
