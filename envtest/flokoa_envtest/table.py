"""``meta.k8s.io/v1`` ``Table`` responses, as kube-apiserver builds them for ``kubectl get``.

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints the
server's columns verbatim. For a custom resource the columns are ``Name`` plus the CRD's
``additionalPrinterColumns`` (or ``Name`` and ``Age`` when it declares none); values come from
the columns' JSONPath, ``date`` columns are rendered as ages (``5s``, ``3m2s``, ``2d``). The
built-in kinds envtest serves get kube-apiserver's own printer columns. Each row carries the
object's metadata as a ``PartialObjectMetadata`` (``includeObject=Metadata``, the default).
On a watch, only the first event's table has ``columnDefinitions``; later ones have ``null``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from flokoa_envtest import jsonpath
from flokoa_envtest.cellib import parse_timestamp

__all__ = ["build_table", "default_columns", "human_duration", "object_age"]

JSON = dict[str, Any]

NAME_DESCRIPTION: Final = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
CREATION_DESCRIPTION: Final = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


def human_duration(delta: timedelta) -> str:
    """apimachinery's ``duration.HumanDuration``: ``5s``, ``3m2s``, ``4h``, ``2d``, ``3y``."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def _since(timestamp: Any, now: datetime) -> str:
    """kube's ``translateTimestampSince``: an age, ``<unknown>`` when unset."""
    if not timestamp:
        return "<unknown>"
    try:
        then = parse_timestamp(str(timestamp))
    except ValueError:
        return "<invalid>"
    return human_duration(_aware(now) - then)


def object_age(obj: Mapping[str, Any], now: datetime) -> str:
    """The ``AGE`` cell of an object (from ``metadata.creationTimestamp``)."""
    metadata = obj.get("metadata") or {}
    return _since(metadata.get("creationTimestamp"), now)


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _column(
    name: str, type_: str = "string", description: str = "", fmt: str = "", priority: int = 0
) -> JSON:
    return {
        "name": name,
        "type": type_,
        "format": fmt,
        "description": description,
        "priority": priority,
    }


_NAME_COLUMN: Final = _column("Name", "string", NAME_DESCRIPTION, "name")
_AGE_COLUMN: Final = _column("Age", "string", CREATION_DESCRIPTION)

RowFn = Callable[[JSON, datetime], list[Any]]


def _namespace_row(obj: JSON, now: datetime) -> list[Any]:
    return [_name(obj), (obj.get("status") or {}).get("phase", ""), object_age(obj, now)]


def _secret_row(obj: JSON, now: datetime) -> list[Any]:
    return [_name(obj), obj.get("type", ""), len(obj.get("data") or {}), object_age(obj, now)]


def _configmap_row(obj: JSON, now: datetime) -> list[Any]:
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [_name(obj), count, object_age(obj, now)]


def _serviceaccount_row(obj: JSON, now: datetime) -> list[Any]:
    return [_name(obj), len(obj.get("secrets") or []), object_age(obj, now)]


def _lease_row(obj: JSON, now: datetime) -> list[Any]:
    holder = (obj.get("spec") or {}).get("holderIdentity") or ""
    return [_name(obj), holder, object_age(obj, now)]


def _event_row(obj: JSON, now: datetime) -> list[Any]:
    core = _as_core_event(obj)
    first = _since(core.get("firstTimestamp"), now)
    if not core.get("firstTimestamp"):
        first = _since(core.get("eventTime"), now)
    last = _since(core.get("lastTimestamp"), now) if core.get("lastTimestamp") else first
    count = core.get("count") or 0
    series = core.get("series")
    if series:
        last = _since(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif count == 0:
        count = 1
    involved = core.get("involvedObject") or {}
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = core.get("source") or {}
    component = source.get("component") or core.get("reportingComponent") or ""
    instance = source.get("host") or core.get("reportingInstance") or ""
    source_text = f"{component}, {instance}" if instance else component
    return [
        last,
        core.get("type", ""),
        core.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        source_text,
        str(core.get("message", "")).strip(),
        first,
        int(count),
        _name(obj),
    ]


def _as_core_event(obj: JSON) -> JSON:
    """An events.k8s.io/v1 Event seen with core/v1 field names (kube prints both alike)."""
    if not str(obj.get("apiVersion", "")).startswith("events.k8s.io"):
        return obj
    source = obj.get("deprecatedSource") or {}
    return {
        "involvedObject": obj.get("regarding") or {},
        "reason": obj.get("reason", ""),
        "message": obj.get("note", ""),
        "type": obj.get("type", ""),
        "firstTimestamp": obj.get("deprecatedFirstTimestamp"),
        "lastTimestamp": obj.get("deprecatedLastTimestamp"),
        "eventTime": obj.get("eventTime"),
        "count": obj.get("deprecatedCount") or 0,
        "series": obj.get("series"),
        "source": source,
        "reportingComponent": obj.get("reportingController", ""),
        "reportingInstance": obj.get("reportingInstance", ""),
    }


def _created_at_row(obj: JSON, now: datetime) -> list[Any]:
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    if created:
        with contextlib.suppress(ValueError):
            created = parse_timestamp(str(created)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [_name(obj), created or "0001-01-01T00:00:00Z"]


_DOC: Final[dict[str, str]] = {
    "lastTimestamp": "The time at which the most recent occurrence of this event was recorded.",
    "type": "Type of this event (Normal, Warning), new types could be added in the future",
    "reason": (
        "This should be a short, machine understandable string that gives the reason for the "
        "transition into the object's current status."
    ),
    "involvedObject": "The object that this event is about.",
    "fieldPath": (
        "If referring to a piece of an object instead of an entire object, this string should "
        "contain a valid JSON/Go field access statement, such as "
        "desiredState.manifest.containers[2]."
    ),
    "source": (
        "The component reporting this event. Should be a short machine understandable string."
    ),
    "message": "A human-readable description of the status of this operation.",
    "firstTimestamp": (
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"
    ),
    "count": "The number of times this event has occurred.",
    "namespaceStatus": "The status of the namespace",
    "secretType": "Used to facilitate programmatic handling of secret data.",
    "secretData": "Data contains the secret data.",
    "configMapData": "Data contains the configuration data.",
    "secrets": (
        "Secrets is a list of the secrets in the same namespace that pods running using this "
        "ServiceAccount are allowed to use."
    ),
    "holder": "holderIdentity contains the identity of the holder of a current lease.",
}

_EVENT_COLUMNS: Final = [
    _column("Last Seen", description=_DOC["lastTimestamp"]),
    _column("Type", description=_DOC["type"]),
    _column("Reason", description=_DOC["reason"]),
    _column("Object", description=_DOC["involvedObject"]),
    _column("Subobject", description=_DOC["fieldPath"], priority=1),
    _column("Source", description=_DOC["source"], priority=1),
    _column("Message", description=_DOC["message"]),
    _column("First Seen", description=_DOC["firstTimestamp"], priority=1),
    _column("Count", description=_DOC["count"], priority=1),
    _column("Name", description=NAME_DESCRIPTION, fmt="name", priority=1),
]

_BUILTINS: Final[dict[str, tuple[list[JSON], RowFn]]] = {
    "Namespace": (
        [_NAME_COLUMN, _column("Status", description=_DOC["namespaceStatus"]), _AGE_COLUMN],
        _namespace_row,
    ),
    "Secret": (
        [
            _NAME_COLUMN,
            _column("Type", description=_DOC["secretType"]),
            _column("Data", description=_DOC["secretData"]),
            _AGE_COLUMN,
        ],
        _secret_row,
    ),
    "ConfigMap": (
        [_NAME_COLUMN, _column("Data", description=_DOC["configMapData"]), _AGE_COLUMN],
        _configmap_row,
    ),
    "ServiceAccount": (
        [_NAME_COLUMN, _column("Secrets", description=_DOC["secrets"]), _AGE_COLUMN],
        _serviceaccount_row,
    ),
    "Lease": (
        [_NAME_COLUMN, _column("Holder", description=_DOC["holder"]), _AGE_COLUMN],
        _lease_row,
    ),
    "Event": (_EVENT_COLUMNS, _event_row),
    "CustomResourceDefinition": (
        [_NAME_COLUMN, _column("Created At", "date", CREATION_DESCRIPTION)],
        _created_at_row,
    ),
}


_CRD_COLUMN_DOC: Final = "Custom resource definition column (in JSONPath format): "


def default_columns() -> list[JSON]:
    """The printer columns kube serves for a CRD version that declares none (``Age``)."""
    return [
        {
            "name": "Age",
            "type": "date",
            "description": CREATION_DESCRIPTION,
            "jsonPath": ".metadata.creationTimestamp",
        }
    ]


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _cell(column_type: str, value: Any, now: datetime) -> Any:
    """kube's ``cellForJSONValue`` (and JSONPath printing for ``string`` columns)."""
    if value is None:
        return None
    if column_type == "string":
        return jsonpath.format_value(value)
    if column_type == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value)
        return None
    if column_type == "number":
        if isinstance(value, bool):
            return None
        return float(value) if isinstance(value, int | float) else None
    if column_type == "boolean":
        return value if isinstance(value, bool) else None
    if column_type == "date":
        if not isinstance(value, str):
            return None
        try:
            then = parse_timestamp(value)
        except ValueError:
            return "<invalid>"
        return human_duration(_aware(now) - then)
    return None


def _partial(obj: Mapping[str, Any]) -> JSON:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def build_table(
    objects: Sequence[Mapping[str, Any]],
    columns: Sequence[Mapping[str, Any]] | None,
    *,
    kind: str,
    now: datetime,
    include_object: str = "Metadata",
    include_headers: bool = True,
    list_meta: Mapping[str, Any] | None = None,
) -> JSON:
    """A ``Table`` of ``objects``.

    ``columns`` are a CRD version's ``additionalPrinterColumns`` (``[]`` when it declares
    none); pass None for a built-in ``kind``, which gets kube's own columns (an unknown
    built-in gets ``Name`` and ``Created At``). ``include_object`` is the ``includeObject``
    query parameter (``None``, ``Metadata`` or ``Object``); ``include_headers=False`` gives the
    header-less tables of the watch events after the first; ``list_meta`` becomes ``metadata``
    (``resourceVersion``, ``continue``).
    """
    definitions: list[JSON]
    row_fn: Callable[[Mapping[str, Any]], list[Any]]
    if columns is None and kind in _BUILTINS:
        definitions, builtin = _BUILTINS[kind]

        def builtin_row(obj: Mapping[str, Any]) -> list[Any]:
            return builtin(dict(obj), now)

        row_fn = builtin_row
    elif columns is None:
        definitions, created = _BUILTINS["CustomResourceDefinition"]

        def created_row(obj: Mapping[str, Any]) -> list[Any]:
            return created(dict(obj), now)

        row_fn = created_row
    else:
        declared = list(columns) or default_columns()
        paths = [jsonpath.parse(str(c.get("jsonPath", ""))) for c in declared]
        types = [str(c.get("type", "string")) for c in declared]
        definitions = [_NAME_COLUMN] + [
            _column(
                str(c.get("name", "")),
                str(c.get("type", "string")),
                str(c.get("description") or f"{_CRD_COLUMN_DOC}{c.get('jsonPath', '')}"),
                str(c.get("format", "")),
                int(c.get("priority", 0) or 0),
            )
            for c in declared
        ]

        def crd_row(obj: Mapping[str, Any]) -> list[Any]:
            cells: list[Any] = [_name(obj)]
            for path, column_type in zip(paths, types, strict=True):
                found = path.find(obj)
                cells.append(_cell(column_type, found[0] if found else None, now))
            return cells

        row_fn = crd_row
    rows: list[JSON] = []
    for obj in objects:
        row: JSON = {"cells": row_fn(obj)}
        if include_object == "Object":
            row["object"] = dict(obj)
        elif include_object == "None":
            row["object"] = None
        else:
            row["object"] = _partial(obj)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(list_meta or {}),
        "columnDefinitions": [dict(d) for d in definitions] if include_headers else None,
        "rows": rows,
    }
