"""Generic object validation shared by every kind: names, labels, annotations, ObjectMeta.

Messages follow kube's apimachinery validation word for word where a test could read them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flokoa_envtest.fielderrors import (
    FieldError,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    required,
    too_long,
)

JSON = dict[str, Any]

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
QUALIFIED_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)

NameValidator = Callable[[str], list[str]]
"""Returns the problems with a name (empty when valid)."""

TOTAL_ANNOTATION_LIMIT = 256 * 1024


def dns1123_subdomain(value: str) -> list[str]:
    """Problems of ``value`` as a DNS-1123 subdomain (most object names)."""
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.match(value):
        errs.append(SUBDOMAIN_MSG)
    return errs


def dns1123_label(value: str) -> list[str]:
    """Problems of ``value`` as a DNS-1123 label (namespace names)."""
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.match(value):
        errs.append(LABEL_MSG)
    return errs


def qualified_name(value: str) -> list[str]:
    """Problems of a qualified name (``prefix/name`` label and annotation keys)."""
    parts = value.split("/")
    if len(parts) > 2:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
            "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') "
            "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    errs: list[str] = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + e for e in dns1123_subdomain(prefix))
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    elif not _QUALIFIED_NAME.match(name):
        errs.append(QUALIFIED_MSG)
    return errs


def label_value(value: str) -> list[str]:
    """Problems of a label value."""
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE.match(value):
        errs.append(LABEL_VALUE_MSG)
    return errs


def config_key(value: str) -> list[str]:
    """Problems of a Secret or ConfigMap data key."""
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _CONFIG_KEY.match(value):
        errs.append(CONFIG_KEY_MSG)
    if value in (".", ".."):
        errs.append(f"must not be '{value}'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def immutable(field: str, value: Any) -> FieldError:
    """The ``field is immutable`` issue of an update."""
    return invalid(field, value, "field is immutable")


def validate_object_meta(
    meta: JSON, *, namespaced: bool, name_validator: NameValidator
) -> list[FieldError]:
    """Validate ObjectMeta like apimachinery's ValidateObjectMeta."""
    issues: list[FieldError] = []
    name = meta.get("name")
    if not name:
        issues.append(required("metadata.name", "name or generateName is required"))
    elif isinstance(name, str):
        issues.extend(invalid("metadata.name", name, e) for e in name_validator(name))
    if namespaced and not meta.get("namespace"):
        issues.append(required("metadata.namespace"))
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        issues.append(invalid("metadata.labels", labels, "must be a map of strings"))
    else:
        for k, v in labels.items():
            issues.extend(invalid("metadata.labels", k, e) for e in qualified_name(k))
            if not isinstance(v, str):
                issues.append(invalid(f"metadata.labels[{k}]", v, "must be a string"))
            else:
                issues.extend(invalid("metadata.labels", v, e) for e in label_value(v))
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict):
        issues.append(invalid("metadata.annotations", annotations, "must be a map of strings"))
    else:
        total = 0
        for k, v in annotations.items():
            issues.extend(invalid("metadata.annotations", k, e) for e in qualified_name(k.lower()))
            total += len(k) + len(str(v))
        if total > TOTAL_ANNOTATION_LIMIT:
            issues.append(too_long("metadata.annotations", "", TOTAL_ANNOTATION_LIMIT))
    finalizers = meta.get("finalizers") or []
    seen: set[str] = set()
    for i, f in enumerate(finalizers if isinstance(finalizers, list) else []):
        if not isinstance(f, str):
            issues.append(invalid(f"metadata.finalizers[{i}]", f, "must be a string"))
            continue
        issues.extend(invalid("metadata.finalizers", f, e) for e in qualified_name(f))
        if f in seen:
            issues.append(duplicate(f"metadata.finalizers[{i}]", f))
        seen.add(f)
    owners = meta.get("ownerReferences") or []
    for i, ref in enumerate(owners if isinstance(owners, list) else []):
        path = f"metadata.ownerReferences[{i}]"
        if not isinstance(ref, dict):
            issues.append(invalid(path, ref, "must be an object"))
            continue
        for key in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(key):
                issues.append(
                    invalid(f"{path}.{key}", ref.get(key, ""), f"{key} must not be empty")
                    if key != "uid"
                    else invalid(f"{path}.uid", "", "uid must not be empty")
                )
    controllers = [r for r in owners if isinstance(r, dict) and r.get("controller")]
    if len(controllers) > 1:
        issues.append(
            invalid(
                "metadata.ownerReferences",
                owners,
                "Only one reference can have Controller set to true",
            )
        )
    return issues


STANDARD_FINALIZERS = frozenset(
    {"kubernetes", "orphan", "foregroundDeletion", "customresourcecleanup.apiextensions.k8s.io"}
)


def finalizer_warnings(meta: JSON, old_meta: JSON | None = None) -> list[str]:
    """kube 1.32's warnings for added finalizers without a domain-qualified path."""
    out = []
    before = set((old_meta or {}).get("finalizers") or [])
    for f in meta.get("finalizers") or []:
        if not isinstance(f, str) or f in before or f in STANDARD_FINALIZERS:
            continue
        if "/" not in f:
            out.append(
                f'metadata.finalizers: "{f}": prefer a domain-qualified finalizer name including '
                "a path (/) to avoid accidental conflicts with other finalizer writers"
            )
    return out


__all__ = [
    "FieldError",
    "duplicate",
    "forbidden",
    "invalid",
    "not_supported",
    "required",
    "too_long",
]
