"""Admission of custom objects against a CRD's structural schema, the way kube-apiserver does it.

:func:`admit` runs kube-apiserver's pipeline for a create or update of a custom object, on a
deep copy:

1. **prune** unknown fields (kept under ``x-kubernetes-preserve-unknown-fields``; ``apiVersion``,
   ``kind`` and ``metadata`` kept at the root and in ``x-kubernetes-embedded-resource`` objects;
   unknown ``metadata`` fields dropped at the root);
2. drop non-nullable ``null`` fields without a default, then apply ``default`` values (absent
   fields, recursively inside present objects);
3. **validate** with kube-openapi's rules and messages (``type``, ``format``, ``enum``,
   ``pattern``, bounds, lengths, ``required``, ``additionalProperties``, ``allOf``/``anyOf``/
   ``oneOf``/``not``, ``x-kubernetes-int-or-string``), then the ``x-kubernetes-list-type``
   ``set``/``map`` uniqueness rules;
4. evaluate ``x-kubernetes-validations`` CEL rules at every node, with ``self`` (and ``oldSelf``
   for transition rules on update), ``messageExpression``, ``fieldPath`` and ``reason`` — unless
   step 3 found a blocking error (type, required, enum, too long, too many), in which case kube
   skips every rule and says so in an extra error.

On update, errors on values that did not change are dropped (CRD validation ratcheting, on by
default since Kubernetes 1.30). Errors are :class:`FieldError` s with kube's paths and texts;
:func:`invalid_status` turns them into the 422 ``Status`` body. Schemas compile once (cached per
schema object: treat a schema as immutable after passing it here) and CEL programs once per
expression text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from flokoa_envtest.celrules import CelWalker
from flokoa_envtest.fielderrors import (
    NIL_PATH,
    NOT_SUPPORTED,
    REQUIRED,
    TOO_LONG,
    TOO_MANY,
    TYPE_INVALID,
    FieldError,
    invalid,
    invalid_status,
    type_invalid,
)
from flokoa_envtest.kubeopenapi import Validator, json_type, list_type_errors
from flokoa_envtest.structural import (
    META_KEYS,
    MISSING,
    CompiledSchema,
    compile_schema,
    copy_json,
)

__all__ = [
    "CompiledSchema",
    "FieldError",
    "admit",
    "compile_schema",
    "invalid_status",
    "rule_errors",
    "unknown_fields",
]

JSON = Any

_OBJECT_META_FIELDS: Final = frozenset(
    {
        "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
        "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
        "labels", "annotations", "ownerReferences", "finalizers", "managedFields",
    }
)  # fmt: skip
_BLOCKING: Final = frozenset({NOT_SUPPORTED, REQUIRED, TOO_LONG, TOO_MANY, TYPE_INVALID})
_RULES_SKIPPED: Final = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


# --- admission ------------------------------------------------------------------------------


def admit(
    schema: Mapping[str, Any] | CompiledSchema,
    obj: Mapping[str, Any],
    *,
    old: Mapping[str, Any] | None = None,
    prune: bool = True,
    prior: Sequence[FieldError] = (),
) -> tuple[dict[str, Any], list[FieldError]]:
    """Prune, default and validate ``obj`` (a deep copy is returned with the errors).

    ``old`` is the stored object on update (enables transition rules and ratcheting).
    ``prior`` are errors found before the schema (object meta): blocking ones skip the CEL
    rules too, as in kube's custom resource strategy.
    """
    node = schema if isinstance(schema, CompiledSchema) else compile_schema(schema)
    if not isinstance(obj, Mapping):
        return {}, [type_invalid(NIL_PATH, json_type(obj), "must be an object")]
    work: dict[str, Any] = _clean(obj, node, "", None, prune=prune, root=True)
    _default(work, node)
    has_old = old is not None
    errors = Validator().validate(work, node, "", old if has_old else MISSING)
    if node.has_list_types and (old is None or not list_type_errors(old, node, "")):
        errors.extend(list_type_errors(work, node, ""))
    if node.has_rules:
        if any(e.type in _BLOCKING for e in [*prior, *errors]):
            errors.append(invalid(NIL_PATH, None, _RULES_SKIPPED))
        else:
            CelWalker(errors).walk(work, node, "", old if has_old else MISSING, None, root=True)
    return work, errors


def unknown_fields(schema: Mapping[str, Any] | CompiledSchema, obj: Mapping[str, Any]) -> list[str]:
    """The paths pruning would drop (``spec.foo``, ``metadata.bar``), sorted like kube's.

    kube-apiserver rejects them under ``fieldValidation=Strict`` with
    ``strict decoding error: unknown field "spec.foo"`` (one ``unknown field`` per path, joined
    with ``", "``) and warns ``unknown field "spec.foo"`` under ``Warn``.
    """
    node = schema if isinstance(schema, CompiledSchema) else compile_schema(schema)
    pruned: list[str] = []
    _clean(obj, node, "", pruned, root=True)
    return sorted(pruned)


# --- pruning and defaulting -----------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _clean(
    value: JSON,
    node: CompiledSchema | None,
    path: str,
    pruned: list[str] | None,
    *,
    prune: bool = True,
    root: bool = False,
    preserve: bool = False,
) -> JSON:
    """A deep copy of ``value`` with unknown fields pruned and non-nullable nulls dropped.

    One pass does kube's pruning (``PruneWithOptions``) and its dropping of non-nullable nulls
    without default (``PruneNonNullableNullsWithoutDefaults``); pruned paths are appended to
    ``pruned`` when it is not None.
    """
    kind = type(value)
    if kind is dict:
        if node is None:
            if prune:
                if pruned is not None:
                    pruned.extend(_join(path, key) for key in value)
                return {}
            return copy_json(value)
        keep_unknown = preserve or node.preserve_unknown or not prune
        embedded = root or node.embedded
        props = node.properties
        additional = node.additional
        out: dict[str, Any] = {}
        for key, child in value.items():
            if embedded and key in META_KEYS:
                if key == "metadata":
                    if type(child) is dict:
                        out[key] = _clean_metadata(child, path, pruned, prune=prune)
                        continue
                    if root or keep_unknown:
                        out[key] = copy_json(child)
                        continue
                elif root or keep_unknown or type(child) is str:
                    out[key] = child
                    continue
            sub = props.get(key) if props is not None else None
            if sub is None:
                sub = additional
            if sub is None:
                if keep_unknown:
                    out[key] = copy_json(child)
                elif pruned is not None:
                    pruned.append(_join(path, key))
                continue
            if child is None:
                if sub.nullable or sub.default is not MISSING:
                    out[key] = None
                continue
            child_kind = type(child)
            if child_kind is dict or child_kind is list:
                child_path = _join(path, key) if pruned is not None else ""
                out[key] = _clean(child, sub, child_path, pruned, prune=prune)
            else:
                out[key] = child
        return out
    if kind is list:
        items = node.items if node is not None else None
        preserve_items = node is not None and (preserve or node.preserve_unknown)
        result: list[Any] = []
        for i, child in enumerate(value):
            if type(child) is dict or type(child) is list:
                child_path = f"{path}[{i}]" if pruned is not None else ""
                result.append(
                    _clean(child, items, child_path, pruned, prune=prune, preserve=preserve_items)
                )
            else:
                result.append(child)
        return result
    if isinstance(value, Mapping | tuple):
        return _clean(
            copy_json(value), node, path, pruned, prune=prune, root=root, preserve=preserve
        )
    return value


def _clean_metadata(
    metadata: dict[str, Any], path: str, pruned: list[str] | None, *, prune: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, child in metadata.items():
        if key in _OBJECT_META_FIELDS or not prune:
            out[key] = copy_json(child)
        elif pruned is not None:
            pruned.append(_join(_join(path, "metadata"), key))
    return out


def _default(value: JSON, node: CompiledSchema | None) -> None:
    if node is None or not node.defaults_below:
        return
    if type(value) is dict:
        if node.properties is not None:
            for key, prop in node.properties.items():
                if prop.default is MISSING:
                    continue
                if key not in value or (value[key] is None and not prop.nullable):
                    value[key] = copy_json(prop.default)
        for key in value:
            if node.properties is not None and key in node.properties:
                _default(value[key], node.properties[key])
            elif node.additional is not None:
                add = node.additional
                if value[key] is None and not add.nullable and add.default is not MISSING:
                    value[key] = copy_json(add.default)
                _default(value[key], add)
    elif type(value) is list and node.items is not None:
        items = node.items
        for i, child in enumerate(value):
            if child is None and not items.nullable and items.default is not MISSING:
                value[i] = copy_json(items.default)
            _default(value[i], items)


def rule_errors(schema: Mapping[str, Any], prefix: str = "openAPIV3Schema") -> list[FieldError]:
    """The CEL rules of ``schema`` that do not compile, as kube reports them at CRD creation."""
    errors: list[FieldError] = []

    def walk(s: Mapping[str, Any], path: str) -> None:
        node = compile_schema(s) if s.get("x-kubernetes-validations") else None
        for i, rule in enumerate(s.get("x-kubernetes-validations") or ()):
            assert node is not None
            compiled = node.rules[i]
            if compiled.compile_error is not None:
                errors.append(
                    invalid(
                        f"{path}.x-kubernetes-validations[{i}].rule",
                        str(rule.get("rule", "")),
                        f"compilation failed: {compiled.compile_error}",
                    )
                )
        for name, sub in (s.get("properties") or {}).items():
            walk(sub, f"{path}.properties[{name}]")
        if isinstance(s.get("additionalProperties"), Mapping):
            walk(s["additionalProperties"], f"{path}.additionalProperties")
        if isinstance(s.get("items"), Mapping):
            walk(s["items"], f"{path}.items")

    walk(schema, prefix)
    return errors
