"""CustomResourceDefinitions: validation, defaulting, status, and the resources a CRD serves.

The naming and establishing controllers of kube's apiextensions-apiserver are folded into
:func:`crd_status`: after every write of a CRD the server recomputes ``acceptedNames``, the
``NamesAccepted`` and ``Established`` conditions and ``storedVersions`` and writes them through
the status subresource (so watchers see ADDED then MODIFIED, as with kube).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from flokoa_envtest import shapes
from flokoa_envtest.fielderrors import FieldError
from flokoa_envtest.resources import Admit, ResourceInfo, Strategy, UnknownFields, View
from flokoa_envtest.schema import admit as schema_admit
from flokoa_envtest.schema import compile_schema, rule_errors
from flokoa_envtest.schema import unknown_fields as schema_unknown_fields
from flokoa_envtest.timefmt import format_time
from flokoa_envtest.validation import (
    dns1123_label,
    dns1123_subdomain,
    invalid,
    not_supported,
    required,
)

JSON = dict[str, Any]

CRD_GROUP = "apiextensions.k8s.io"
CRD_BUCKET = "customresourcedefinitions.apiextensions.k8s.io"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"

_VERSION_RE = re.compile(r"^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$")

_CRD_SHAPE = shapes.top(
    spec={
        "group": shapes.ANY,
        "names": {
            "plural": shapes.ANY,
            "singular": shapes.ANY,
            "shortNames": shapes.ANY,
            "kind": shapes.ANY,
            "listKind": shapes.ANY,
            "categories": shapes.ANY,
        },
        "scope": shapes.ANY,
        "versions": {
            "name": shapes.ANY,
            "served": shapes.ANY,
            "storage": shapes.ANY,
            "deprecated": shapes.ANY,
            "deprecationWarning": shapes.ANY,
            "schema": {"openAPIV3Schema": shapes.ANY},
            "subresources": {"status": shapes.ANY, "scale": shapes.ANY},
            "additionalPrinterColumns": {
                "name": shapes.ANY,
                "type": shapes.ANY,
                "format": shapes.ANY,
                "description": shapes.ANY,
                "priority": shapes.ANY,
                "jsonPath": shapes.ANY,
            },
            "selectableFields": {"jsonPath": shapes.ANY},
        },
        "conversion": shapes.ANY,
        "preserveUnknownFields": shapes.ANY,
    },
    status=shapes.ANY,
)


def _prepare(obj: JSON, old: JSON | None) -> None:
    spec = obj.setdefault("spec", {})
    names = spec.get("names")
    if isinstance(names, dict) and isinstance(names.get("kind"), str):
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    spec.setdefault("conversion", {"strategy": "None"})
    if old is None:
        meta = obj.setdefault("metadata", {})
        finalizers = meta.setdefault("finalizers", [])
        if CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CLEANUP_FINALIZER)
        storage = [
            v.get("name")
            for v in spec.get("versions") or []
            if isinstance(v, dict) and v.get("storage")
        ]
        obj["status"] = {
            "acceptedNames": {"kind": "", "plural": ""},
            "conditions": [],
            "storedVersions": storage[:1],
        }


def _validate(obj: JSON, old: JSON | None) -> list[FieldError]:
    issues: list[FieldError] = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    group = spec.get("group") or ""
    names = spec.get("names") if isinstance(spec.get("names"), dict) else {}
    assert isinstance(names, dict)
    plural = names.get("plural") or ""
    name = obj.get("metadata", {}).get("name", "")
    if name != f"{plural}.{group}":
        issues.append(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    if not group:
        issues.append(required("spec.group"))
    else:
        issues.extend(invalid("spec.group", group, e) for e in dns1123_subdomain(group))
        if "." not in group:
            issues.append(invalid("spec.group", group, "should be a domain with at least one dot"))
    if not plural:
        issues.append(required("spec.names.plural"))
    else:
        issues.extend(invalid("spec.names.plural", plural, e) for e in dns1123_label(plural))
    singular = names.get("singular") or ""
    if singular:
        issues.extend(invalid("spec.names.singular", singular, e) for e in dns1123_label(singular))
    kind = names.get("kind") or ""
    if not kind:
        issues.append(required("spec.names.kind"))
    for i, short in enumerate(names.get("shortNames") or []):
        issues.extend(
            invalid(f"spec.names.shortNames[{i}]", short, e) for e in dns1123_label(short)
        )
    scope = spec.get("scope")
    if scope not in ("Namespaced", "Cluster"):
        issues.append(not_supported("spec.scope", scope or "", ["Cluster", "Namespaced"]))
    versions = spec.get("versions") or []
    if not versions:
        issues.append(
            required("spec.versions", "must have exactly one version marked as storage version")
        )
    storage = [v for v in versions if isinstance(v, dict) and v.get("storage")]
    if versions and len(storage) != 1:
        issues.append(
            invalid(
                "spec.versions", versions, "must have exactly one version marked as storage version"
            )
        )
    seen: set[str] = set()
    for i, version in enumerate(versions):
        path = f"spec.versions[{i}]"
        if not isinstance(version, dict):
            issues.append(invalid(path, version, "must be an object"))
            continue
        vname = version.get("name") or ""
        if not vname:
            issues.append(required(f"{path}.name"))
        elif not _VERSION_RE.match(vname) and dns1123_label(vname):
            issues.append(invalid(f"{path}.name", vname, dns1123_label(vname)[0]))
        if vname in seen:
            issues.append(invalid("spec.versions", versions, "must contain unique version names"))
        seen.add(vname)
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            issues.append(required(f"{path}.schema.openAPIV3Schema", "schemas are required"))
        else:
            if schema.get("type") != "object":
                issues.append(
                    invalid(
                        f"{path}.schema.openAPIV3Schema.type",
                        schema.get("type", ""),
                        "must be object at the root",
                    )
                )
            issues.extend(rule_errors(schema, prefix=f"{path}.schema.openAPIV3Schema"))
        for j, column in enumerate(version.get("additionalPrinterColumns") or []):
            cpath = f"{path}.additionalPrinterColumns[{j}]"
            if not isinstance(column, dict):
                continue
            if not column.get("name"):
                issues.append(required(f"{cpath}.name"))
            if not column.get("jsonPath"):
                issues.append(required(f"{cpath}.jsonPath"))
            ctype = column.get("type")
            if ctype not in ("integer", "number", "string", "boolean", "date"):
                issues.append(
                    not_supported(
                        f"{cpath}.type",
                        ctype or "",
                        ["boolean", "date", "integer", "number", "string"],
                    )
                )
    if not any(isinstance(v, dict) and v.get("served") for v in versions) and versions:
        issues.append(invalid("spec.versions", versions, "must have at least one version served"))
    if old is not None:
        old_spec = old.get("spec") or {}
        if old_spec.get("group") != group:
            issues.append(invalid("spec.group", group, "field is immutable"))
        if old_spec.get("scope") != scope:
            issues.append(invalid("spec.scope", scope, "field is immutable"))
        if (old_spec.get("names") or {}).get("plural") != plural:
            issues.append(invalid("spec.names.plural", plural, "field is immutable"))
    if spec.get("preserveUnknownFields"):
        issues.append(
            invalid(
                "spec.preserveUnknownFields",
                True,
                "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in "
                "spec.versions[*].schema instead",
            )
        )
    return issues


CRD_STRATEGY = Strategy(
    kind="CustomResourceDefinition",
    group=CRD_GROUP,
    generation=True,
    status_subresource=True,
    prepare=_prepare,
    validate=_validate,
    shape=_CRD_SHAPE,
    return_deleted_object=True,
    spec_fields=lambda obj: obj.get("spec"),
)


def crd_resource() -> ResourceInfo:
    """The ``customresourcedefinitions`` resource itself."""
    return ResourceInfo(
        group=CRD_GROUP,
        version="v1",
        plural="customresourcedefinitions",
        singular="customresourcedefinition",
        kind="CustomResourceDefinition",
        namespaced=False,
        bucket=CRD_BUCKET,
        strategy=CRD_STRATEGY,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        subresources=("status",),
    )


# --- status (naming + establishing controllers) --------------------------------------------


def _condition(
    existing: list[JSON], ctype: str, status: str, reason: str, message: str, now: str
) -> JSON:
    for cond in existing:
        if cond.get("type") == ctype:
            if cond.get("status") == status:
                return {**cond, "reason": reason, "message": message}
            break
    return {
        "type": ctype,
        "status": status,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def crd_status(crd: JSON, others: Iterable[JSON], now: str) -> JSON:
    """The status the naming/establishing controllers give ``crd`` (``others``: other CRDs)."""
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    group = spec.get("group")
    old_status = crd.get("status") or {}
    conditions: list[JSON] = list(old_status.get("conditions") or [])
    conflict = ""
    for other in others:
        ospec = other.get("spec") or {}
        if ospec.get("group") != group:
            continue
        onames = (other.get("status") or {}).get("acceptedNames") or {}
        if onames.get("plural") and onames.get("plural") == names.get("plural"):
            conflict = f'"{names.get("plural")}" is already in use'
        elif onames.get("kind") and onames.get("kind") == names.get("kind"):
            conflict = f'"{names.get("kind")}" is already in use'
    terminating = bool(crd.get("metadata", {}).get("deletionTimestamp"))
    new_conditions: list[JSON] = []
    if conflict:
        new_conditions.append(
            _condition(conditions, "NamesAccepted", "False", "PluralConflict", conflict, now)
        )
        new_conditions.append(
            _condition(
                conditions, "Established", "False", "NotAccepted", "not all names are accepted", now
            )
        )
        accepted = old_status.get("acceptedNames") or {"kind": "", "plural": ""}
    else:
        new_conditions.append(
            _condition(
                conditions, "NamesAccepted", "True", "NoConflicts", "no conflicts found", now
            )
        )
        new_conditions.append(
            _condition(
                conditions,
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
                now,
            )
        )
        accepted = {k: v for k, v in names.items() if v}
    if terminating:
        new_conditions.append(
            _condition(
                conditions,
                "Terminating",
                "True",
                "InstanceDeletionInProgress",
                "CustomResource deletion is in progress",
                now,
            )
        )
    stored = list(old_status.get("storedVersions") or [])
    for version in spec.get("versions") or []:
        if (
            isinstance(version, dict)
            and version.get("storage")
            and version.get("name") not in stored
        ):
            stored.append(version["name"])
    return {"acceptedNames": accepted, "conditions": new_conditions, "storedVersions": stored}


def is_established(crd: JSON) -> bool:
    """Whether the CRD's Established condition is True."""
    for cond in (crd.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Established":
            return bool(cond.get("status") == "True")
    return False


def now_string(dt: Any) -> str:
    """Format a condition time."""
    return format_time(dt)


# --- custom resources ----------------------------------------------------------------------


CUSTOM_RESOURCE_VERBS: tuple[str, ...] = (
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
)
"""A custom resource's verbs in the order kube's CRD discovery controller lists them."""


def _cr_admit(schema: JSON) -> Admit:
    compiled = compile_schema(schema)

    def admit(
        obj: JSON, old: JSON | None, prior: list[FieldError]
    ) -> tuple[JSON, list[FieldError]]:
        return schema_admit(compiled, obj, old=old, prior=prior)

    return admit


def _cr_unknown(schema: JSON) -> UnknownFields:
    compiled = compile_schema(schema)

    def unknown(obj: JSON) -> list[str]:
        return schema_unknown_fields(compiled, obj)

    return unknown


def _set_api_version(api_version: str) -> Any:
    def convert(obj: JSON) -> JSON:
        return {"apiVersion": api_version, **{k: v for k, v in obj.items() if k != "apiVersion"}}

    return convert


def _spec_fields(excluded: frozenset[str]) -> Callable[[JSON], JSON]:
    def spec(obj: JSON) -> JSON:
        return {k: v for k, v in obj.items() if k not in excluded}

    return spec


def served_resources(crd: JSON) -> list[ResourceInfo]:
    """The resources an established CRD serves, one per served version (storage first)."""
    spec = crd.get("spec") or {}
    group = spec["group"]
    names = (crd.get("status") or {}).get("acceptedNames") or spec.get("names") or {}
    plural = names["plural"]
    kind = names["kind"]
    storage_version = next(v["name"] for v in spec["versions"] if v.get("storage"))
    out: list[ResourceInfo] = []
    for version in spec["versions"]:
        if not version.get("served"):
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema") or {"type": "object"}
        has_status = "status" in (version.get("subresources") or {})
        excluded = {"metadata", "apiVersion", "kind"} | ({"status"} if has_status else set())
        strategy = Strategy(
            kind=kind,
            group=group,
            generation=True,
            status_subresource=has_status,
            smp=None,
            admit=_cr_admit(schema),
            unknown_fields=_cr_unknown(schema),
            spec_fields=_spec_fields(frozenset(excluded)),
        )
        api_version = f"{group}/{version['name']}"
        view = None
        if version["name"] != storage_version:
            view = View(
                api_version,
                _set_api_version(api_version),
                _set_api_version(f"{group}/{storage_version}"),
            )
        out.append(
            ResourceInfo(
                group=group,
                version=version["name"],
                plural=plural,
                singular=names.get("singular") or kind.lower(),
                kind=kind,
                namespaced=spec.get("scope") == "Namespaced",
                bucket=f"{plural}.{group}",
                strategy=strategy,
                list_kind=names.get("listKind") or f"{kind}List",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=("status",) if has_status else (),
                view=view,
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
                custom=True,
                verbs=CUSTOM_RESOURCE_VERBS,
                schema=schema,
                storage_version=version["name"] == storage_version,
            )
        )
    return out
