"""Known-field shapes of built-in kinds, for ``fieldValidation=Strict`` and ``Warn``.

A shape maps each known field to the shape of its value: another shape for a nested object
(applied to each element when the value is a list), :data:`ANY` for a free-form value or a map
with arbitrary keys. Fields the shape does not list are reported like kube's strict decoder
(``metadata.foo``, ``spec.bar[0].baz``).
"""

from __future__ import annotations

from typing import Any

Shape = dict[str, Any]
"""A mapping field → nested :data:`Shape` or :data:`ANY`."""

ANY: None = None
"""Any value (leaf, free-form object or map with arbitrary keys)."""

OWNER_REFERENCE: Shape = {
    "apiVersion": ANY,
    "kind": ANY,
    "name": ANY,
    "uid": ANY,
    "controller": ANY,
    "blockOwnerDeletion": ANY,
}

MANAGED_FIELDS_ENTRY: Shape = {
    "manager": ANY,
    "operation": ANY,
    "apiVersion": ANY,
    "time": ANY,
    "fieldsType": ANY,
    "fieldsV1": ANY,
    "subresource": ANY,
}

OBJECT_META: Shape = {
    "name": ANY,
    "generateName": ANY,
    "namespace": ANY,
    "selfLink": ANY,
    "uid": ANY,
    "resourceVersion": ANY,
    "generation": ANY,
    "creationTimestamp": ANY,
    "deletionTimestamp": ANY,
    "deletionGracePeriodSeconds": ANY,
    "labels": ANY,
    "annotations": ANY,
    "ownerReferences": OWNER_REFERENCE,
    "finalizers": ANY,
    "managedFields": MANAGED_FIELDS_ENTRY,
}


def top(**fields: Any) -> Shape:
    """A top-level shape: apiVersion, kind, metadata plus ``fields``."""
    return {"apiVersion": ANY, "kind": ANY, "metadata": OBJECT_META, **fields}


OBJECT_REFERENCE: Shape = {
    "kind": ANY,
    "namespace": ANY,
    "name": ANY,
    "uid": ANY,
    "apiVersion": ANY,
    "resourceVersion": ANY,
    "fieldPath": ANY,
}

SECRET = top(data=ANY, stringData=ANY, type=ANY, immutable=ANY)
CONFIGMAP = top(data=ANY, binaryData=ANY, immutable=ANY)
SERVICEACCOUNT = top(
    secrets=OBJECT_REFERENCE, imagePullSecrets={"name": ANY}, automountServiceAccountToken=ANY
)
NAMESPACE = top(
    spec={"finalizers": ANY},
    status={"phase": ANY, "conditions": ANY},
)
EVENT = top(
    involvedObject=OBJECT_REFERENCE,
    reason=ANY,
    message=ANY,
    source={"component": ANY, "host": ANY},
    firstTimestamp=ANY,
    lastTimestamp=ANY,
    count=ANY,
    type=ANY,
    eventTime=ANY,
    series={"count": ANY, "lastObservedTime": ANY},
    action=ANY,
    related=OBJECT_REFERENCE,
    reportingComponent=ANY,
    reportingInstance=ANY,
)
EVENT_V1 = top(
    regarding=OBJECT_REFERENCE,
    related=OBJECT_REFERENCE,
    reason=ANY,
    note=ANY,
    type=ANY,
    eventTime=ANY,
    series={"count": ANY, "lastObservedTime": ANY},
    action=ANY,
    reportingController=ANY,
    reportingInstance=ANY,
    deprecatedSource={"component": ANY, "host": ANY},
    deprecatedFirstTimestamp=ANY,
    deprecatedLastTimestamp=ANY,
    deprecatedCount=ANY,
)
LEASE = top(
    spec={
        "holderIdentity": ANY,
        "leaseDurationSeconds": ANY,
        "acquireTime": ANY,
        "renewTime": ANY,
        "leaseTransitions": ANY,
        "strategy": ANY,
        "preferredHolder": ANY,
    }
)


def unknown_fields(obj: Any, shape: Shape | None, path: str = "") -> list[str]:
    """Dotted paths of the fields of ``obj`` that ``shape`` does not know."""
    if shape is None:
        return []
    if isinstance(obj, list):
        out: list[str] = []
        for i, item in enumerate(obj):
            out.extend(unknown_fields(item, shape, f"{path}[{i}]"))
        return out
    if not isinstance(obj, dict):
        return []
    found: list[str] = []
    for key, value in obj.items():
        child = f"{path}.{key}" if path else key
        if key not in shape:
            found.append(child)
            continue
        found.extend(unknown_fields(value, shape[key], child))
    return found


def prune(obj: Any, shape: Shape | None) -> None:
    """Drop, in place, the fields of ``obj`` that ``shape`` does not know."""
    if shape is None:
        return
    if isinstance(obj, list):
        for item in obj:
            prune(item, shape)
        return
    if not isinstance(obj, dict):
        return
    for key in list(obj):
        if key not in shape:
            del obj[key]
        else:
            prune(obj[key], shape[key])
