"""A small stand-in for kube-apiserver's custom-resource validation, for the API tests.

``CRDValidator(crd).errors(obj)`` does what the API server does on create, in the same order:
apply the schema's defaults, validate against the openAPIV3Schema (jsonschema, with Go/RE2
``pattern`` semantics and kube-style messages), then evaluate every
``x-kubernetes-validations`` rule with cel-python, ``self`` bound to the value at the rule's
location. It returns ``"path: message"`` strings.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import pytest
import re2
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
CRD_DIR = CONFIG / "crd"


def _go_pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    """``pattern`` as kube-apiserver evaluates it: an unanchored RE2 search."""
    if isinstance(instance, str) and re2.search(pattern, instance) is None:
        yield jsonschema.ValidationError(f"should match '{pattern}'")


_SchemaValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"pattern": _go_pattern}
)

_KUBE_MESSAGES = {
    "minimum": "should be greater than or equal to {}",
    "maximum": "should be less than or equal to {}",
    "minLength": "should be at least {} chars long",
    "maxLength": "Too long: may not be more than {} bytes",
    "maxItems": "Too many: must have at most {} items",
    "maxProperties": "Too many: must have at most {} properties",
    "enum": "Unsupported value: supported values: {}",
    "type": "must be of type {}",
}


def _kube_message(error: jsonschema.ValidationError) -> str:
    """The error in kube-apiserver's words (same facts, its phrasing)."""
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return f"{path + '.' if path else ''}{missing}: Required value"
    template = _KUBE_MESSAGES.get(str(error.validator))
    message = template.format(error.validator_value) if template else error.message
    return f"{path}: {message}"


@functools.cache
def _program(rule: str) -> celpy.Runner:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def evaluate_rule(rule: str, value: Any) -> bool:
    """Evaluate one CEL rule with ``self`` bound to ``value``; an evaluation error is False."""
    result = _program(rule).evaluate({"self": celpy.json_to_cel(value)})
    return isinstance(result, celpy.celtypes.BoolType) and bool(result)


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Fill in ``default`` values the way the API server does (in place; returns value)."""
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
            if name in value:
                apply_defaults(child, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for item in value.values():
                apply_defaults(extra, item)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            apply_defaults(schema["items"], item)
    return value


def cel_errors(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """Every failing ``x-kubernetes-validations`` rule in the tree, as ``path: message``."""
    errors = [
        f"{path}{rule.get('fieldPath', '')}: {rule['message']}"
        for rule in schema.get("x-kubernetes-validations", [])
        if not evaluate_rule(rule["rule"], value)
    ]
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name in value:
                errors += cel_errors(child, value[name], f"{path}.{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                errors += cel_errors(extra, item, f"{path}[{key}]")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += cel_errors(schema["items"], item, f"{path}[{index}]")
    return errors


def _compile_all(schema: dict[str, Any]) -> None:
    """Compile every rule up front (the CEL parser raises the recursion limit on first use)."""
    for rule in schema.get("x-kubernetes-validations", []):
        _program(rule["rule"])
    children = list(schema.get("properties", {}).values())
    children += [
        schema[k] for k in ("items", "additionalProperties") if isinstance(schema.get(k), dict)
    ]
    for child in children:
        _compile_all(child)


class CRDValidator:
    """Validates custom objects against one CRD's (single) version."""

    def __init__(self, crd: dict[str, Any]) -> None:
        self.crd = crd
        self.schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        self._validator = _SchemaValidator(self.schema)
        _compile_all(self.schema)

    def errors(self, obj: dict[str, Any]) -> list[str]:
        """Schema and CEL errors of ``obj`` after defaulting (empty when it is accepted)."""
        obj = apply_defaults(self.schema, copy.deepcopy(obj))
        found = [_kube_message(e) for e in self._validator.iter_errors(obj)]
        return found + cel_errors(self.schema, obj)

    def schema_errors(self, schema: dict[str, Any], value: Any) -> list[str]:
        """Errors of ``value`` against a sub-schema (used to check defaults)."""
        found = [_kube_message(e) for e in _SchemaValidator(schema).iter_errors(value)]
        return found + cel_errors(schema, value)


@pytest.fixture(scope="session")
def cel() -> Any:
    """``cel(rule, value) -> bool``: evaluate a CEL rule with ``self`` bound to ``value``."""
    _program("true")  # the CEL parser raises the recursion limit on first use: not in a test
    return evaluate_rule


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a file."""
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


@pytest.fixture(scope="session")
def crd_validators() -> dict[str, CRDValidator]:
    """One validator per committed CRD, keyed by kind."""
    validators = {}
    for path in sorted(CRD_DIR.glob("agent.flokoa.ai_*.yaml")):
        (crd,) = load_yaml_documents(path)
        validators[crd["spec"]["names"]["kind"]] = CRDValidator(crd)
    return validators
