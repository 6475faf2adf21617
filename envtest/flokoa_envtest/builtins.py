"""The built-in resources: namespaces, secrets, configmaps, serviceaccounts, events, leases.

(CustomResourceDefinitions live in :mod:`crds`.) Each kind gets a :class:`Strategy` with the
rules of kube's registry for it: Secret ``stringData`` folded into base64 ``data`` and ``type``
defaulted to ``Opaque``; the ``immutable`` flag; namespace phase and finalizers; Event
namespace checks (and the stricter events.k8s.io/v1 rules); Lease bounds; time fields
re-serialized in kube's formats.
"""

from __future__ import annotations

import base64
from typing import Any

from flokoa_envtest import gocodec, shapes
from flokoa_envtest.errors import StatusError, bad_request
from flokoa_envtest.patch import MERGE_BY_VALUE, OBJECT_META_STRATEGIES
from flokoa_envtest.resources import (
    STANDARD_VERBS,
    ResourceInfo,
    Strategy,
    View,
)
from flokoa_envtest.selectors import (
    EVENT_FIELDS,
    EVENTS_V1_ALIASES,
    NAMESPACE_FIELDS,
    SECRET_FIELDS,
)
from flokoa_envtest.timefmt import format_micro, format_time, parse_time
from flokoa_envtest.validation import (
    FieldError,
    config_key,
    dns1123_label,
    dns1123_subdomain,
    forbidden,
    immutable,
    invalid,
    qualified_name,
    required,
    too_long,
)

JSON = dict[str, Any]

MAX_DATA_SIZE = 1024 * 1024


def _decode_error(kind: str, detail: str) -> StatusError:
    return bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: {detail}')


def _normalize_time(obj: JSON, kind: str, path: tuple[str, ...], *, micro: bool) -> None:
    parent: Any = obj
    for key in path[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(parent, dict):
        return
    value = parent.get(path[-1])
    if value is None:
        return
    try:
        dt = parse_time(value)
    except ValueError as exc:
        raise _decode_error(kind, str(exc)) from None
    parent[path[-1]] = format_micro(dt) if micro else format_time(dt)


def _immutable_data(obj: JSON, old: JSON | None, fields: tuple[str, ...]) -> list[FieldError]:
    if old is None or not old.get("immutable"):
        return []
    issues = []
    for f in fields:
        if obj.get(f) != old.get(f):
            issues.append(forbidden(f, "field is immutable when `immutable` is set"))
    if not obj.get("immutable"):
        issues.append(forbidden("immutable", "field is immutable when `immutable` is set"))
    return issues


# --- Secrets -------------------------------------------------------------------------------


def _secret_prepare(obj: JSON, old: JSON | None) -> None:
    data = obj.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _decode_error("Secret", "json: cannot unmarshal into Go struct field Secret.data")
    for key, value in data.items():
        if value is None:
            data[key] = ""
            continue
        if not isinstance(value, str):
            raise _decode_error(
                "Secret",
                f"json: cannot unmarshal {type(value).__name__} into Go value of type []uint8",
            )
        problem = gocodec.base64_error(value)
        if problem is not None:  # Go's encoding/json decodes []byte with StdEncoding
            raise _decode_error("Secret", problem)
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    if data:
        obj["data"] = data
    else:
        obj.pop("data", None)
    if not obj.get("type"):
        obj["type"] = "Opaque"


def _secret_validate(obj: JSON, old: JSON | None) -> list[FieldError]:
    issues: list[FieldError] = []
    data = obj.get("data") or {}
    total = 0
    for key, value in data.items():
        issues.extend(invalid(f"data[{key}]", key, e) for e in config_key(key))
        total += len(base64.b64decode(value))
    if total > MAX_DATA_SIZE:
        issues.append(too_long("data", "", MAX_DATA_SIZE))
    stype = obj.get("type")
    if stype == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in data:
                issues.append(required(f"data[{key}]"))
    elif stype == "kubernetes.io/dockerconfigjson" and ".dockerconfigjson" not in data:
        issues.append(required("data[.dockerconfigjson]"))
    elif stype == "kubernetes.io/basic-auth" and not ({"username", "password"} & set(data)):
        issues.append(required("data[username]"))
    elif stype == "kubernetes.io/ssh-auth" and "ssh-privatekey" not in data:
        issues.append(required("data[ssh-privatekey]"))
    if old is not None:
        if old.get("type") != stype:
            issues.append(immutable("type", stype))
        issues.extend(_immutable_data(obj, old, ("data",)))
    return issues


SECRET_STRATEGY = Strategy(
    kind="Secret",
    group="",
    prepare=_secret_prepare,
    validate=_secret_validate,
    shape=shapes.SECRET,
)

# --- ConfigMaps ----------------------------------------------------------------------------


def _configmap_prepare(obj: JSON, old: JSON | None) -> None:
    data = obj.get("data")
    if data is not None and not isinstance(data, dict):
        raise _decode_error(
            "ConfigMap", "json: cannot unmarshal into Go struct field ConfigMap.data"
        )
    for key, value in (data or {}).items():
        if not isinstance(value, str):
            raise _decode_error(
                "ConfigMap",
                f"json: cannot unmarshal {type(value).__name__} into Go struct field "
                f"ConfigMap.data of type string",
            )
        del key
    for value in (obj.get("binaryData") or {}).values():
        if not isinstance(value, str):
            raise _decode_error(
                "ConfigMap",
                f"json: cannot unmarshal {type(value).__name__} into Go value of type []uint8",
            )
        problem = gocodec.base64_error(value)
        if problem is not None:
            raise _decode_error("ConfigMap", problem)


def _configmap_validate(obj: JSON, old: JSON | None) -> list[FieldError]:
    issues: list[FieldError] = []
    data = obj.get("data") or {}
    binary = obj.get("binaryData") or {}
    total = 0
    for key, value in data.items():
        issues.extend(invalid(f"data[{key}]", key, e) for e in config_key(key))
        total += len(key) + len(value.encode())
    for key, value in binary.items():
        issues.extend(invalid(f"binaryData[{key}]", key, e) for e in config_key(key))
        if key in data:
            issues.append(invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        total += len(key) + len(base64.b64decode(value))
    if total > MAX_DATA_SIZE:
        issues.append(too_long("", "", MAX_DATA_SIZE))
    issues.extend(_immutable_data(obj, old, ("data", "binaryData")))
    return issues


CONFIGMAP_STRATEGY = Strategy(
    kind="ConfigMap",
    group="",
    prepare=_configmap_prepare,
    validate=_configmap_validate,
    shape=shapes.CONFIGMAP,
)

# --- ServiceAccounts -----------------------------------------------------------------------

SERVICEACCOUNT_STRATEGY = Strategy(
    kind="ServiceAccount",
    group="",
    smp={**OBJECT_META_STRATEGIES, "secrets": "name"},
    shape=shapes.SERVICEACCOUNT,
)

# --- Namespaces ----------------------------------------------------------------------------


def _namespace_prepare(obj: JSON, old: JSON | None) -> None:
    name = obj.get("metadata", {}).get("name")
    labels = obj["metadata"].setdefault("labels", {})
    if isinstance(labels, dict) and isinstance(name, str):
        labels["kubernetes.io/metadata.name"] = name
    if old is None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}


NAMESPACE_STRATEGY = Strategy(
    kind="Namespace",
    group="",
    status_subresource=True,
    prepare=_namespace_prepare,
    shape=shapes.NAMESPACE,
    name_validator=dns1123_label,
    return_deleted_object=True,
)

# --- Events --------------------------------------------------------------------------------


def _event_prepare(obj: JSON, old: JSON | None) -> None:
    for key in ("firstTimestamp", "lastTimestamp"):
        _normalize_time(obj, "Event", (key,), micro=False)
    for path in (("eventTime",), ("series", "lastObservedTime")):
        _normalize_time(obj, "Event", path, micro=True)


def _event_validate(obj: JSON, old: JSON | None, *, strict: bool) -> list[FieldError]:
    issues: list[FieldError] = []
    ns = obj.get("metadata", {}).get("namespace", "")
    involved = obj.get("involvedObject") or {}
    inv_ns = involved.get("namespace", "") if isinstance(involved, dict) else ""
    controller_field = "reportingController" if strict else "reportingComponent"
    regarding = "regarding" if strict else "involvedObject"
    legacy = not obj.get("eventTime") and not strict
    if legacy:
        mismatch = ns != inv_ns if inv_ns else ns not in ("", "default")
    else:
        mismatch = not inv_ns and ns not in ("default", "kube-system")
    if mismatch:
        issues.append(invalid(f"{regarding}.namespace", inv_ns, "does not match event.namespace"))
    if not legacy:
        if strict and not obj.get("eventTime"):
            issues.append(required("eventTime"))
        controller = obj.get("reportingComponent") or ""
        if not controller:
            issues.append(required(controller_field))
        else:
            issues.extend(
                invalid(controller_field, controller, e) for e in qualified_name(controller)
            )
        for name in ("reportingInstance", "action", "reason"):
            value = obj.get(name) or ""
            if not value:
                issues.append(required(name))
            elif len(value) > 128:
                issues.append(invalid(name, "", "can have at most 128 characters"))
        if strict:
            if obj.get("type") not in ("Normal", "Warning"):
                issues.append(invalid("type", "", f"has invalid value: {obj.get('type') or ''}"))
            if len((obj.get("message") or "").encode()) > 1024:
                issues.append(invalid("note", "", "can have at most 1024 characters"))
    if ns:
        issues.extend(invalid("namespace", ns, e) for e in dns1123_subdomain(ns))
    return issues


EVENT_STRATEGY = Strategy(
    kind="Event",
    group="",
    prepare=_event_prepare,
    validate=lambda obj, old: _event_validate(obj, old, strict=False),
    shape=shapes.EVENT,
    allow_create_on_update=True,
)

_V1_RENAMES = (
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
)


def event_core_to_v1(obj: JSON) -> JSON:
    """A stored core/v1 Event as events.k8s.io/v1 serves it."""
    out: JSON = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        renamed = next((new for old, new in _V1_RENAMES if old == key), key)
        if renamed == "deprecatedSource" and not value:
            continue
        out[renamed] = value
    return out


def event_v1_to_core(obj: JSON) -> JSON:
    """An events.k8s.io/v1 Event in the stored core/v1 form."""
    out: JSON = {"apiVersion": "v1", "kind": "Event"}
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        renamed = next((old for old, new in _V1_RENAMES if new == key), key)
        out[renamed] = value
    return out


EVENTS_V1_VIEW = View("events.k8s.io/v1", event_core_to_v1, event_v1_to_core)


EVENT_V1_STRATEGY = Strategy(
    kind="Event",
    group="events.k8s.io",
    prepare=_event_prepare,
    validate=lambda obj, old: _event_validate(obj, old, strict=True),
    shape=shapes.EVENT_V1,
    allow_create_on_update=True,
)

# --- Leases --------------------------------------------------------------------------------


def _lease_prepare(obj: JSON, old: JSON | None) -> None:
    for path in (("spec", "acquireTime"), ("spec", "renewTime")):
        _normalize_time(obj, "Lease", path, micro=True)


def _lease_validate(obj: JSON, old: JSON | None) -> list[FieldError]:
    issues: list[FieldError] = []
    spec = obj.get("spec") or {}
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (not isinstance(duration, int) or duration <= 0):
        issues.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and (not isinstance(transitions, int) or transitions < 0):
        issues.append(
            invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0")
        )
    if spec.get("preferredHolder") and not spec.get("strategy"):
        issues.append(
            forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined")
        )
    return issues


LEASE_STRATEGY = Strategy(
    kind="Lease",
    group="coordination.k8s.io",
    prepare=_lease_prepare,
    validate=_lease_validate,
    shape=shapes.LEASE,
)


def builtin_resources() -> list[ResourceInfo]:
    """The built-in resources (CRDs excluded), in discovery order."""
    no_collection = tuple(v for v in STANDARD_VERBS if v != "deletecollection")
    return [
        ResourceInfo(
            group="",
            version="v1",
            plural="configmaps",
            singular="configmap",
            kind="ConfigMap",
            namespaced=True,
            bucket="configmaps",
            strategy=CONFIGMAP_STRATEGY,
            short_names=("cm",),
        ),
        ResourceInfo(
            group="",
            version="v1",
            plural="events",
            singular="event",
            kind="Event",
            namespaced=True,
            bucket="events",
            strategy=EVENT_STRATEGY,
            short_names=("ev",),
            field_selectors=EVENT_FIELDS,
        ),
        ResourceInfo(
            group="",
            version="v1",
            plural="namespaces",
            singular="namespace",
            kind="Namespace",
            namespaced=False,
            bucket="namespaces",
            strategy=NAMESPACE_STRATEGY,
            short_names=("ns",),
            verbs=no_collection,
            subresources=("status", "finalize"),
            field_selectors=NAMESPACE_FIELDS,
        ),
        ResourceInfo(
            group="",
            version="v1",
            plural="secrets",
            singular="secret",
            kind="Secret",
            namespaced=True,
            bucket="secrets",
            strategy=SECRET_STRATEGY,
            field_selectors=SECRET_FIELDS,
        ),
        ResourceInfo(
            group="",
            version="v1",
            plural="serviceaccounts",
            singular="serviceaccount",
            kind="ServiceAccount",
            namespaced=True,
            bucket="serviceaccounts",
            strategy=SERVICEACCOUNT_STRATEGY,
            short_names=("sa",),
            subresources=("token",),
        ),
        ResourceInfo(
            group="coordination.k8s.io",
            version="v1",
            plural="leases",
            singular="lease",
            kind="Lease",
            namespaced=True,
            bucket="leases.coordination.k8s.io",
            strategy=LEASE_STRATEGY,
        ),
        ResourceInfo(
            group="events.k8s.io",
            version="v1",
            plural="events",
            singular="event",
            kind="Event",
            namespaced=True,
            bucket="events",
            strategy=EVENT_V1_STRATEGY,
            short_names=("ev",),
            view=EVENTS_V1_VIEW,
            field_selectors=EVENT_FIELDS,
            field_aliases=EVENTS_V1_ALIASES,
        ),
    ]


__all__ = ["MERGE_BY_VALUE", "builtin_resources", "event_core_to_v1", "event_v1_to_core"]
