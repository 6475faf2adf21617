"""The generic registry: create, get, list, update, patch and delete with kube's semantics.

This is the transport-free heart of envtest (kube's ``genericregistry.Store`` plus the
namespace and CRD lifecycle controllers). HTTP handlers and the in-process seeding API both go
through it, so admission is identical either way:

* metadata: ``uid``, ``creationTimestamp``, ``generateName``, one global ``resourceVersion``;
  ``generation`` (custom resources and CRDs) bumped only when the spec part changes, and when
  deletion starts;
* the ``/status`` subresource: status writes keep everything else; main writes keep status;
* optimistic concurrency (409 Conflict), 409 AlreadyExists, 404, 422 Invalid, 415;
* finalizers: a delete sets ``deletionTimestamp``; the object goes when the list empties;
* no-op writes store nothing and emit no event (like etcd's guaranteed update);
* ``dryRun=All``; ``fieldValidation`` (Strict → 400, Warn → warnings, Ignore);
* namespaces: must exist for namespaced writes; deleting one deletes its content;
* CRDs: establishing serves their resources; deleting one deletes its custom resources.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import copy
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from flokoa_envtest import crds, errors, fielderrors, gocodec, managedfields, shapes
from flokoa_envtest.errors import StatusError
from flokoa_envtest.fielderrors import FieldError, invalid_status
from flokoa_envtest.patch import json_patch, merge_patch, strategic_merge_patch
from flokoa_envtest.resources import Registry, ResourceInfo
from flokoa_envtest.selectors import (
    FieldSelector,
    LabelSelector,
    parse_field_selector,
    parse_label_selector,
)
from flokoa_envtest.storage import Record, Storage, dumps, object_key
from flokoa_envtest.timefmt import Clock, format_time, utcnow
from flokoa_envtest.validation import (
    finalizer_warnings,
    forbidden,
    invalid,
    not_supported,
    validate_object_meta,
)

JSON = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)

PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
INITIAL_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


@dataclass
class Options:
    """Per-request write options (query parameters of kube's write verbs)."""

    dry_run: bool = False
    field_manager: str = ""
    """``fieldManager``; empty: derived from the user agent."""
    field_validation: str = "Warn"
    """``Strict`` (400 on unknown fields), ``Warn`` (warnings) or ``Ignore``."""
    user_agent: str = ""
    force: bool = False
    """``force`` of server-side apply (accepted, no conflicts are detected anyway)."""

    @property
    def manager(self) -> str:
        """The field manager name recorded in managedFields."""
        return self.field_manager or managedfields.manager_from_user_agent(self.user_agent)


@dataclass
class Result:
    """An answered write: the object (served form), its bytes, the HTTP code and warnings."""

    obj: JSON
    raw: bytes
    code: int = 200
    warnings: list[str] = field(default_factory=list)


@dataclass
class ListResult:
    """One page of a list."""

    info: ResourceInfo
    items: list[tuple[JSON, bytes]]
    resource_version: str
    continue_token: str = ""
    remaining: int | None = None

    def body(self) -> bytes:
        """The ``KindList`` JSON, joined from the cached item bytes."""
        meta: JSON = {"resourceVersion": self.resource_version}
        if self.continue_token or self.info.custom:
            # an UnstructuredList's SetContinue("") keeps the empty key (typed lists omit it)
            meta["continue"] = self.continue_token
        if self.remaining is not None and self.continue_token:
            meta["remainingItemCount"] = self.remaining
        head = dumps(
            {
                "kind": self.info.resolved_list_kind,
                "apiVersion": self.info.api_version,
                "metadata": meta,
            }
        )
        return head[:-1] + b',"items":[' + b",".join(raw for _, raw in self.items) + b"]}"


def _encode_continue(rv: int, key: str) -> str:
    token = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": key + "\x00"})
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, str]:
    """kube's ``storage.DecodeContinue``, with its error texts (400 ``invalid continue token``)."""

    def refuse(why: str) -> StatusError:
        return errors.bad_request(f"invalid continue token: continue key is not valid{why}")

    problem = gocodec.base64_error(token, url=True, padded=False)
    if problem is not None:
        raise refuse(f": {problem}")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    problem = gocodec.json_syntax_error(raw)
    if problem is not None:
        raise refuse(f": {problem}")
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        kind = {list: "array", str: "string", bool: "bool"}.get(type(data), "number")
        raise refuse(f": json: cannot unmarshal {kind} into Go value of type storage.continueToken")
    for fld, want in (("v", str), ("rv", int), ("start", str)):
        value = data.get(fld)
        if value is not None and not isinstance(value, want):
            go_type = "string" if want is str else "int64"
            kind = {list: "array", dict: "object", str: "string", bool: "bool"}.get(
                type(value), "number"
            )
            raise refuse(
                f": json: cannot unmarshal {kind} into Go struct field continueToken.{fld} of "
                f"type {go_type}"
            )
    version = data.get("v") or ""
    if version != "meta.k8s.io/v1":
        raise refuse(f": server does not recognize this encoded version {version}")
    rv = data.get("rv") or 0
    start = data.get("start") or ""
    if rv == 0:
        raise refuse(": incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    if not start:
        raise refuse(": encoded start key empty (version meta.k8s.io/v1)")
    return rv, start[:-1] if start.endswith("\x00") else start


def _parse_rv(value: str, what: str = "resourceVersion") -> int:
    try:
        rv = int(value)
    except ValueError:
        raise errors.bad_request(
            f'{what}: Invalid value: "{value}": invalid resource version'
        ) from None
    if rv < 0:
        raise errors.bad_request(f'{what}: Invalid value: "{value}": invalid resource version')
    return rv


@dataclass(frozen=True)
class _GoHex:
    """An unsigned integer as Go's ``%#v`` prints it in a field error (``0x0``)."""

    value: int

    def __str__(self) -> str:
        return hex(self.value)


@dataclass(frozen=True)
class _GoTime:
    """A timestamp as Go's ``time.Time.String()`` prints it in a field error."""

    text: str

    def __str__(self) -> str:
        try:
            parsed = datetime.fromisoformat(self.text.replace("Z", "+00:00"))
        except ValueError:
            return self.text
        return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def _strip_for_compare(obj: JSON) -> JSON:
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    meta.pop("resourceVersion", None)
    out["metadata"] = meta
    return out


def _ordered(obj: JSON) -> JSON:
    """apiVersion, kind, metadata first (kube's field order), then the rest."""
    head: JSON = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
    return {**head, **{k: v for k, v in obj.items() if k not in head}}


class APIStore:
    """Objects behind the served resources, with kube-apiserver's write semantics."""

    def __init__(self, storage: Storage, registry: Registry, *, clock: Clock = utcnow) -> None:
        self.storage = storage
        self.registry = registry
        self.clock = clock
        self.on_registry_change: list[Callable[[], None]] = []
        """Called after CRDs change the served resources (discovery/OpenAPI caches)."""

    # --- helpers ---------------------------------------------------------------------------

    def _now(self) -> str:
        return format_time(self.clock())

    def _view(self, info: ResourceInfo, record: Record) -> tuple[JSON, bytes]:
        if info.view is None:
            return record.obj, record.raw
        return record.view(info.view.name, info.view.to_view)

    def _key(self, info: ResourceInfo, namespace: str, name: str) -> str:
        return object_key(namespace if info.namespaced else "", name)

    def _require_namespace(self, info: ResourceInfo, namespace: str, name: str) -> None:
        if not info.namespaced:
            return
        ns = self.storage.get("namespaces", namespace)
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if ns.obj.get("metadata", {}).get("deletionTimestamp"):
            raise errors.forbidden(
                info.plural,
                info.group,
                name,
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
            )

    def _invalid(self, info: ResourceInfo, name: str, issues: list[FieldError]) -> StatusError:
        return StatusError(invalid_status(info.kind, info.group, name, issues))

    def _check_fields(
        self, info: ResourceInfo, obj: JSON, opts: Options, *, decoding: bool = True
    ) -> list[str]:
        """Report (Strict: refuse) and drop fields the kind does not know; served form."""
        shape = info.strategy.shape
        if shape is not None:
            unknown = shapes.unknown_fields(obj, shape)
            if unknown:
                shapes.prune(obj, shape)
        else:
            meta = obj.get("metadata") or {}
            unknown = [f"metadata.{p}" for p in shapes.unknown_fields(meta, shapes.OBJECT_META)]
            if unknown:
                shapes.prune(meta, shapes.OBJECT_META)
            checker = info.strategy.unknown_fields
            if checker is not None:
                unknown.extend(p for p in checker(obj) if not p.startswith("metadata"))
        if not unknown or opts.field_validation == "Ignore":
            return []
        if opts.field_validation == "Strict":
            message = "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in unknown)
            if decoding:  # a request body: kube's transformDecodeError wording
                message = (
                    f'{info.kind} in version "{info.version}" cannot be handled as a '
                    f"{info.kind}: {message}"
                )
            raise errors.bad_request(message)
        return [f'unknown field "{p}"' for p in unknown]

    def _to_storage(self, info: ResourceInfo, obj: JSON) -> JSON:
        return info.view.from_view(obj) if info.view is not None else obj

    def _decode_body(self, info: ResourceInfo, body: Any) -> JSON:
        if not isinstance(body, dict):
            raise errors.bad_request(
                f"the object provided is unrecognized (must be of type {info.kind})"
            )
        obj: JSON = copy.deepcopy(body)
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if api_version and api_version != info.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({info.api_version})"
            )
        if kind and kind != info.kind and info.custom:
            # kube's customResourceValidator.ValidateTypeMeta, named after the body's kind
            issue = fielderrors.invalid("kind", kind, f"must be {info.kind}")
            meta = obj.get("metadata")
            name = str(meta.get("name") or "") if isinstance(meta, dict) else ""
            raise StatusError(invalid_status(str(kind), info.group, name, [issue]))
        if kind and kind != info.kind:
            raise errors.bad_request(
                f"the object provided is unrecognized (must be of type {info.kind}): "
                f"kind {kind!r} in version {info.api_version!r}"
            )
        obj["apiVersion"] = info.api_version
        obj["kind"] = info.kind
        meta = obj.get("metadata")
        if meta is None:
            obj["metadata"] = {}
        elif not isinstance(meta, dict):
            raise errors.bad_request(
                f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
                "json: cannot unmarshal into Go struct field .metadata of type v1.ObjectMeta"
            )
        return obj

    def _admit(
        self,
        info: ResourceInfo,
        obj: JSON,
        old: JSON | None,
        name: str,
        update_issues: list[FieldError] | None = None,
    ) -> JSON:
        """Prepare and validate a write; 422 with every cause in kube's order.

        kube's ``BeforeUpdate`` runs the object-meta update checks (``update_issues``) twice,
        once in its common validation and once in the kind's ``ValidateUpdate``, so each of
        those causes is listed twice (the message names it once). The causes a kind's strategy
        reports first (object meta on create, the update checks on update) count as blocking
        errors for CEL rules, like kube's ``hasBlockingErr``.
        """
        strategy = info.strategy
        updates = update_issues or []
        issues: list[FieldError] = []
        if strategy.prepare is not None:
            strategy.prepare(obj, old)
        meta_issues = validate_object_meta(
            obj.get("metadata") or {},
            namespaced=info.namespaced,
            name_validator=strategy.name_validator,
        )
        if strategy.admit is not None:
            meta = obj.get("metadata")
            admitted, schema_issues = strategy.admit(
                obj, old, meta_issues if old is None else updates
            )
            admitted["metadata"] = meta
            admitted["apiVersion"] = obj.get("apiVersion")
            admitted["kind"] = obj.get("kind")
            obj = _ordered(admitted)
            issues.extend(schema_issues)
        issues = meta_issues + updates + updates + issues
        if strategy.validate is not None:
            issues.extend(strategy.validate(obj, old))
        if issues:
            raise self._invalid(info, name, issues)
        return obj

    # --- reads -----------------------------------------------------------------------------

    def get(self, info: ResourceInfo, namespace: str, name: str) -> tuple[JSON, bytes]:
        """The object (served form) and its bytes; 404 if absent."""
        record = self.storage.get(info.bucket, self._key(info, namespace, name))
        if record is None:
            raise errors.not_found(info.plural, info.group, name)
        return self._view(info, record)

    def selectors(
        self, info: ResourceInfo, label_selector: str | None, field_selector: str | None
    ) -> tuple[LabelSelector, FieldSelector]:
        """Parse the selectors of a list or watch on ``info`` (400 when malformed)."""
        return (
            parse_label_selector(label_selector),
            parse_field_selector(
                field_selector,
                info.field_selectors,
                aliases=info.field_aliases,
                custom_resource=info.custom,
            ),
        )

    def list_page(
        self,
        info: ResourceInfo,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        send_initial_events: str | None = None,
    ) -> ListResult:
        """A page of objects, with kube's resourceVersion / continue semantics.

        As kube-apiserver 1.32 with its watch cache: ``resourceVersion=0`` is served whole
        from the latest state (``limit`` ignored, no continue token); a specific
        resourceVersion with ``resourceVersionMatch=Exact`` — or, the legacy form, with a
        ``limit`` and no match — lists the state at exactly that resourceVersion (410 once
        compacted); otherwise (``NotOlderThan`` or no match) the latest state; a
        resourceVersion newer than the server's is a 504 ``ResourceVersionTooLarge``.
        """
        labels, fields = self.selectors(info, label_selector, field_selector)
        if limit is not None and limit <= 0:
            limit = None
        rv_text = resource_version or ""
        match = resource_version_match or ""
        self._validate_list_options(rv_text, match, continue_token, send_initial_events)
        at_rv: int | None = None
        after: str | None = None
        if continue_token:
            if rv_text and rv_text != "0":
                raise errors.bad_request(
                    "specifying resource version is not allowed when using continue"
                )
            at_rv, after = _decode_continue(continue_token)
            if at_rv < self.storage.oldest_resumable(info.bucket):
                raise errors.expired(
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use the "
                    "continue token in this response to retrieve the remainder of the results. "
                    "Continuing with the provided token results in an inconsistent list - objects "
                    "that were created, modified, or deleted between the time the first chunk was "
                    "returned and now may show up in the list."
                )
        elif rv_text == "0":
            limit = None  # served from the watch cache, which does not paginate
        elif rv_text:
            rv = _parse_rv(rv_text)
            if rv > self.storage.rv:
                raise errors.too_large_resource_version(rv, self.storage.rv)
            if match == "Exact" or (not match and limit):
                at_rv = rv
        list_rv = at_rv if at_rv is not None else self.storage.rv
        ns = namespace if info.namespaced else None
        items: list[tuple[JSON, bytes]] = []
        last_key = ""
        more = False
        filtering = not labels.empty or not fields.empty
        for key, record in self.storage.iterate(info.bucket, ns, at_rv=at_rv, after=after):
            obj = record.obj
            if filtering and not (
                labels.matches(obj.get("metadata", {}).get("labels")) and fields.matches(obj)
            ):
                continue
            if limit and len(items) >= limit:
                more = True
                break
            items.append(self._view(info, record))
            last_key = key
        token = _encode_continue(list_rv, last_key) if more else ""
        remaining = None
        if more and not filtering:
            total = self.storage.count(info.bucket, ns) if at_rv is None else None
            if total is not None:
                done = self._position(info, ns, last_key)
                remaining = max(0, total - done)
        return ListResult(info, items, str(list_rv), token, remaining)

    def _position(self, info: ResourceInfo, ns: str | None, key: str) -> int:
        bucket = self.storage.buckets.get(info.bucket)
        if bucket is None:
            return 0
        lo = bisect.bisect_left(bucket.keys, ns + "/") if ns else 0
        return bisect.bisect_right(bucket.keys, key) - lo

    def _invalid_options(self, fld: str, message: str) -> StatusError:
        return StatusError(
            invalid_status("ListOptions", "meta.k8s.io", "", [forbidden(fld, message)])
        )

    def _validate_list_options(
        self, rv: str, match: str, continue_token: str | None, send_initial_events: str | None
    ) -> None:
        """kube's ``ValidateListOptions`` for a list (422 ``ListOptions`` Invalid)."""
        issues: list[FieldError] = []
        if match:
            if not rv:
                issues.append(
                    forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden unless resourceVersion is provided",
                    )
                )
            if continue_token:
                issues.append(
                    forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden when continue is provided",
                    )
                )
            if match not in ("Exact", "NotOlderThan"):
                issues.append(
                    not_supported("resourceVersionMatch", match, ["Exact", "NotOlderThan", ""])
                )
            if match == "Exact" and rv == "0":
                issues.append(
                    forbidden(
                        "resourceVersionMatch",
                        'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
                    )
                )
        if send_initial_events is not None:
            issues.append(forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list"))
        if issues:
            raise StatusError(invalid_status("ListOptions", "meta.k8s.io", "", issues))

    # --- create ----------------------------------------------------------------------------

    def create(
        self,
        info: ResourceInfo,
        namespace: str,
        body: Any,
        opts: Options | None = None,
        *,
        operation: str = "Update",
    ) -> Result:
        """POST: create an object (201), with generateName, admission and AlreadyExists."""
        opts = opts or Options()
        if "create" not in info.verbs:
            raise errors.method_not_allowed()
        obj = self._decode_body(info, body)
        warnings = self._check_fields(info, obj, opts)
        obj = self._to_storage(info, obj)
        meta = obj["metadata"]
        if info.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = namespace or body_ns or ""
        else:
            meta.pop("namespace", None)
        ns = meta.get("namespace", "") if info.namespaced else ""
        if meta.get("resourceVersion"):
            raise errors.internal_error(
                "resourceVersion should not be set on objects to be created"
            )
        self._refuse_if_crd_terminating(info)
        generated = not meta.get("name") and bool(meta.get("generateName"))
        for attempt in range(8):
            if generated:
                base = str(meta["generateName"])[:58]
                meta["name"] = base + "".join(random.choice(_NAME_CHARS) for _ in range(5))
            name = str(meta.get("name") or "")
            if info.namespaced and ns:
                self._require_namespace(info, ns, name)
            candidate = self._prepare_create(
                info, copy.deepcopy(obj) if generated else obj, opts, operation
            )
            key = self._key(info, ns, name)
            if self.storage.get(info.bucket, key) is not None:
                if generated and attempt < 7:
                    continue
                raise errors.already_exists(info.plural, info.group, name)
            break
        warnings.extend(finalizer_warnings(candidate["metadata"]))
        if opts.dry_run:
            return Result(*self._dry_view(info, candidate), code=201, warnings=warnings)
        record = self.storage.put(info.bucket, key, ns, candidate)
        self._after_write(info, record, None)
        record = self.storage.get(info.bucket, key) or record
        obj_out, raw = self._view(info, record)
        return Result(obj_out, raw, 201, warnings)

    def _dry_view(self, info: ResourceInfo, obj: JSON) -> tuple[JSON, bytes]:
        out = info.to_view(obj)
        return out, dumps(out)

    def _prepare_create(self, info: ResourceInfo, obj: JSON, opts: Options, operation: str) -> JSON:
        meta = obj["metadata"]
        name = str(meta.get("name") or "")
        for system in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "generation",
            "managedFields",
        ):
            meta.pop(system, None)
        if info.strategy.status_subresource and info.custom:
            obj.pop("status", None)
        obj = self._admit(info, obj, None, name)
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self._now()
        if info.strategy.generation:
            meta["generation"] = 1
        managedfields.record(
            obj,
            None,
            manager=opts.manager,
            operation=operation,
            api_version=info.api_version,
            time=self._now(),
            status_separate=info.strategy.status_subresource,
        )
        return _ordered(obj)

    def _refuse_if_crd_terminating(self, info: ResourceInfo) -> None:
        if not info.custom:
            return
        crd = self.storage.get(crds.CRD_BUCKET, info.bucket)
        if crd is not None and crd.obj.get("metadata", {}).get("deletionTimestamp"):
            raise StatusError(
                errors.status_body(
                    405,
                    "MethodNotAllowed",
                    "create not allowed while custom resource definition is terminating",
                    {"group": info.group, "kind": info.plural},
                )
            )

    # --- update ----------------------------------------------------------------------------

    def update(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        body: Any,
        opts: Options | None = None,
        *,
        subresource: str = "",
        operation: str = "Update",
    ) -> Result:
        """PUT: replace an object (or its status), with optimistic concurrency."""
        opts = opts or Options()
        if "update" not in info.verbs:
            raise errors.method_not_allowed()
        obj = self._decode_body(info, body)
        warnings = self._check_fields(info, obj, opts)
        obj = self._to_storage(info, obj)
        meta = obj["metadata"]
        body_name = meta.get("name") or ""
        if body_name != name:
            raise errors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        if info.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        key = self._key(info, namespace, name)
        current = self.storage.get(info.bucket, key)
        if current is None:
            if info.strategy.allow_create_on_update and not subresource:
                meta.pop("resourceVersion", None)
                return self.create(
                    info, namespace, obj if info.view is None else info.view.to_view(obj), opts
                )
            raise errors.not_found(info.plural, info.group, name)
        rv = meta.get("resourceVersion")
        if rv:
            if str(rv) != str(current.rv):
                _parse_rv(str(rv), "metadata.resourceVersion")
                raise errors.conflict(info.plural, info.group, name)
        elif info.custom or info.bucket == crds.CRD_BUCKET:
            # no unconditional updates for these; kube names the resource, not the kind, here
            # and prints the missing resourceVersion as Go's %#v of a uint64
            issue = invalid(
                "metadata.resourceVersion", _GoHex(0), "must be specified for an update"
            )
            raise StatusError(invalid_status(info.plural, info.group, name, [issue]))
        return self._write_update(info, key, current, obj, opts, subresource, warnings, operation)

    def _write_update(
        self,
        info: ResourceInfo,
        key: str,
        current: Record,
        incoming: JSON,
        opts: Options,
        subresource: str,
        warnings: list[str],
        operation: str = "Update",
    ) -> Result:
        old = current.obj
        name = old["metadata"]["name"]
        strategy = info.strategy
        if subresource == "status" and info.custom:
            # kube's custom resource status strategy: only status comes from the request
            new = orjson.loads(current.raw)
            if "status" in incoming:
                new["status"] = incoming["status"]
            else:
                new.pop("status", None)
        elif subresource == "status":
            # built-in status strategies (namespaces, CRDs): everything but the spec
            new = incoming
            if "spec" in old:
                new["spec"] = copy.deepcopy(old["spec"])
            else:
                new.pop("spec", None)
        elif subresource == "finalize":
            new = orjson.loads(current.raw)
            new.setdefault("spec", {})["finalizers"] = (incoming.get("spec") or {}).get(
                "finalizers"
            ) or []
        else:
            new = incoming
            if strategy.status_subresource:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
        meta = new["metadata"]
        old_meta = old["metadata"]
        issues: list[FieldError] = []
        if meta.get("uid") and meta["uid"] != old_meta.get("uid"):
            issues.append(invalid("metadata.uid", meta["uid"], "field is immutable"))
        meta["uid"] = old_meta.get("uid")
        meta["creationTimestamp"] = old_meta.get("creationTimestamp")
        if meta.get("deletionTimestamp") and not old_meta.get("deletionTimestamp"):
            # an update keeps an existing deletionTimestamp but cannot set one
            stamp = _GoTime(str(meta["deletionTimestamp"]))
            issues.append(invalid("metadata.deletionTimestamp", stamp, "field is immutable"))
        for fixed in ("deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if fixed in old_meta:
                meta[fixed] = old_meta[fixed]
            else:
                meta.pop(fixed, None)
        meta.pop("selfLink", None)
        if old_meta.get("deletionTimestamp"):
            added = [
                f
                for f in meta.get("finalizers") or []
                if f not in (old_meta.get("finalizers") or [])
            ]
            if added:
                issues.append(
                    forbidden(
                        "metadata.finalizers",
                        "no new finalizers can be added if the object is being deleted, found new "
                        "finalizers []string{" + ", ".join(f'"{f}"' for f in added) + "}",
                    )
                )
        new = self._admit(info, new, old, name, issues)
        meta = new["metadata"]
        spec_fields = strategy.spec_fields
        if (
            strategy.generation
            and subresource != "status"
            and spec_fields is not None
            and spec_fields(new) != spec_fields(old)
        ):
            meta["generation"] = int(old_meta.get("generation") or 0) + 1
        warnings.extend(finalizer_warnings(meta, old_meta))
        managedfields.record(
            new,
            old,
            manager=opts.manager,
            operation=operation,
            api_version=info.api_version,
            time=self._now(),
            subresource=subresource if subresource == "status" else "",
            status_separate=strategy.status_subresource,
        )
        new = _ordered(new)
        if _strip_for_compare(new) == _strip_for_compare(old):
            view = self._view(info, current)
            return Result(view[0], view[1], 200, warnings)
        if opts.dry_run:
            meta["resourceVersion"] = str(current.rv)
            return Result(*self._dry_view(info, new), code=200, warnings=warnings)
        ns = meta.get("namespace", "") if info.namespaced else ""
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            record = self.storage.put(info.bucket, key, ns, new)
            final = self._remove(info, key, ns)
            out = final or record
            view = self._view(info, out)
            return Result(view[0], view[1], 200, warnings)
        record = self.storage.put(info.bucket, key, ns, new)
        self._after_write(info, record, current)
        record = self.storage.get(info.bucket, key) or record
        view = self._view(info, record)
        return Result(view[0], view[1], 200, warnings)

    # --- patch -----------------------------------------------------------------------------

    def patch(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        patch_type: str,
        patch: Any,
        opts: Options | None = None,
        *,
        subresource: str = "",
    ) -> Result:
        """PATCH with a merge, JSON, strategic-merge or apply patch."""
        opts = opts or Options()
        if "patch" not in info.verbs:
            raise errors.method_not_allowed()
        if patch_type == STRATEGIC_PATCH and info.strategy.smp is None:
            raise errors.unsupported_media_type(patch_type, [JSON_PATCH, MERGE_PATCH, APPLY_PATCH])
        if patch_type not in PATCH_TYPES:
            accepted = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH]
            if info.strategy.smp is not None:
                accepted.insert(2, STRATEGIC_PATCH)
            raise errors.unsupported_media_type(patch_type, accepted)
        key = self._key(info, namespace, name)
        current = self.storage.get(info.bucket, key)
        if current is None:
            if patch_type == APPLY_PATCH and not subresource:
                return self._apply_create(info, namespace, name, patch, opts)
            raise errors.not_found(info.plural, info.group, name)
        base, _ = self._view(info, current)
        if patch_type == JSON_PATCH:
            result = json_patch(base, patch)
        elif patch_type == STRATEGIC_PATCH:
            if not isinstance(patch, dict):
                raise errors.bad_request(
                    "json: cannot unmarshal array into Go value of type map[string]interface {}"
                )
            result = strategic_merge_patch(base, patch, info.strategy.smp or {})
        else:
            if not isinstance(patch, dict):
                raise errors.bad_request(
                    "json: cannot unmarshal array into Go value of type map[string]interface {}"
                )
            if patch_type == APPLY_PATCH:
                self._check_apply_body(info, patch, name)
            result = merge_patch(base, patch)
        if not isinstance(result, dict):
            raise errors.bad_request("the patched object is not a JSON object")
        meta = result.get("metadata")
        if not isinstance(meta, dict):
            meta = {}
            result["metadata"] = meta
        if meta.get("name") != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name', '')}) does not match the name on the "
                f"URL ({name})"
            )
        obj = self._decode_body(info, result)
        warnings = self._check_fields(info, obj, opts, decoding=False)
        obj = self._to_storage(info, obj)
        rv = obj["metadata"].get("resourceVersion")
        if rv and str(rv) != str(current.rv):
            raise errors.conflict(info.plural, info.group, name)
        operation = "Apply" if patch_type == APPLY_PATCH else "Update"
        return self._write_update(info, key, current, obj, opts, subresource, warnings, operation)

    def _check_apply_body(self, info: ResourceInfo, patch: JSON, name: str) -> None:
        if not patch.get("apiVersion") or not patch.get("kind"):
            raise errors.bad_request("apiVersion and kind must be set in an apply patch")

    def _apply_create(
        self, info: ResourceInfo, namespace: str, name: str, patch: Any, opts: Options
    ) -> Result:
        if not isinstance(patch, dict):
            raise errors.bad_request("apply patch must be an object")
        self._check_apply_body(info, patch, name)
        body = copy.deepcopy(patch)
        body.setdefault("metadata", {})["name"] = name
        return self.create(info, namespace, body, opts, operation="Apply")

    # --- delete ----------------------------------------------------------------------------

    def delete(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        *,
        dry_run: bool = False,
        preconditions: JSON | None = None,
        propagation_policy: str | None = None,
    ) -> Result:
        """DELETE: remove the object, or mark it deleting while finalizers remain."""
        if "delete" not in info.verbs:
            raise errors.method_not_allowed()
        if propagation_policy not in (None, "", "Orphan", "Background", "Foreground"):
            raise errors.bad_request(
                f'propagationPolicy: Unsupported value: "{propagation_policy}": supported values: '
                '"Foreground", "Background", "Orphan", "nil"'
            )
        key = self._key(info, namespace, name)
        current = self.storage.get(info.bucket, key)
        if current is None:
            raise errors.not_found(info.plural, info.group, name)
        meta = current.obj["metadata"]
        pre = preconditions or {}
        # kube's rest.BeforeDelete: the Conflict names the kind, not the resource
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise errors.conflict(
                info.kind,
                info.group,
                name,
                f"the UID in the precondition ({pre['uid']}) does not match the UID in record "
                f"({meta.get('uid')}). The object might have been deleted and then recreated",
            )
        if pre.get("resourceVersion") and str(pre["resourceVersion"]) != str(current.rv):
            raise errors.conflict(
                info.kind,
                info.group,
                name,
                f"the ResourceVersion in the precondition ({pre['resourceVersion']}) does not "
                f"match the ResourceVersion in record ({current.rv}). The object might have been "
                "modified",
            )
        if info.bucket == "namespaces" and name in PROTECTED_NAMESPACES:
            raise errors.forbidden("namespaces", "", name, "this namespace may not be deleted")
        if dry_run:
            return self._dry_delete(info, current)
        ns = namespace if info.namespaced else ""
        if info.bucket == "namespaces":
            return self._delete_namespace(info, current)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                view = self._view(info, current)
                return Result(view[0], view[1], 200)
            record = self._mark_deleting(info, key, ns, current)
            if info.bucket == crds.CRD_BUCKET:
                self._start_crd_cleanup(record)
                record = self.storage.get(info.bucket, key) or record
            view = self._view(info, record)
            return Result(view[0], view[1], 200)
        final = self._remove(info, key, ns)
        assert final is not None
        if info.strategy.return_deleted_object:
            view = self._view(info, final)
            return Result(view[0], view[1], 200)
        return self._deleted_status(info, meta)

    def _deleted_status(self, info: ResourceInfo, meta: JSON) -> Result:
        """kube's ``finalizeDelete``: a Success Status naming the deleted object."""
        details: JSON = {"name": meta["name"]}
        if info.group:
            details["group"] = info.group
        details["kind"] = info.plural
        details["uid"] = meta.get("uid")
        status = errors.status_body(200, "", "", details, status="Success")
        return Result(status, dumps(status), 200)

    def _dry_delete(self, info: ResourceInfo, current: Record) -> Result:
        """What the delete would answer, with nothing stored (``dryRun=All``)."""
        meta = current.obj["metadata"]
        if info.bucket == "namespaces" or meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                view = self._view(info, current)
                return Result(view[0], view[1], 200)
            marked = self._marked_deleting(current)
            if info.bucket == "namespaces":
                marked.setdefault("status", {})["phase"] = "Terminating"
            return Result(*self._dry_view(info, marked), code=200)
        if info.strategy.return_deleted_object:
            view = self._view(info, current)
            return Result(view[0], view[1], 200)
        return self._deleted_status(info, meta)

    def _marked_deleting(self, current: Record) -> JSON:
        """A copy of ``current`` marked for deletion (``deletionTimestamp`` now, grace 0, the
        generation bumped if it has one)."""
        marked: JSON = orjson.loads(current.raw)
        meta = marked["metadata"]
        if meta.get("generation"):
            meta["generation"] = int(meta["generation"]) + 1
        meta["deletionTimestamp"] = self._now()
        meta["deletionGracePeriodSeconds"] = 0
        return marked

    def _mark_deleting(self, info: ResourceInfo, key: str, ns: str, current: Record) -> Record:
        return self.storage.put(info.bucket, key, ns, self._marked_deleting(current))

    def _remove(self, info: ResourceInfo, key: str, ns: str) -> Record | None:
        final = self.storage.remove(info.bucket, key, ns)
        if final is None:
            return None
        if info.bucket == crds.CRD_BUCKET:
            self._unserve_crd(final.obj)
        if ns:
            self._maybe_finish_namespace(ns)
        crd = self.storage.get(crds.CRD_BUCKET, info.bucket) if info.custom else None
        if crd is not None and crd.obj["metadata"].get("deletionTimestamp"):
            self._maybe_finish_crd(crd)
        return final

    def delete_collection(
        self,
        info: ResourceInfo,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        dry_run: bool = False,
    ) -> bytes:
        """DELETE on a collection: delete every selected object; answers the list of them."""
        if "deletecollection" not in info.verbs:
            raise errors.method_not_allowed()
        page = self.list_page(
            info, namespace, label_selector=label_selector, field_selector=field_selector
        )
        items: list[tuple[JSON, bytes]] = []
        for obj, _raw in page.items:
            meta = obj["metadata"]
            try:
                res = self.delete(info, meta.get("namespace", ""), meta["name"], dry_run=dry_run)
            except StatusError as exc:
                if exc.code == 404:
                    continue
                raise
            if res.obj.get("kind") == "Status":
                items.append((obj, dumps(obj)))
            else:
                items.append((res.obj, res.raw))
        return ListResult(info, items, str(self.storage.rv)).body()

    # --- namespace lifecycle ---------------------------------------------------------------

    def _delete_namespace(self, info: ResourceInfo, current: Record) -> Result:
        name = current.obj["metadata"]["name"]
        if not current.obj["metadata"].get("deletionTimestamp"):
            new = orjson.loads(current.raw)
            new["metadata"]["deletionTimestamp"] = self._now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new.setdefault("status", {})["phase"] = "Terminating"
            current = self.storage.put("namespaces", name, "", new)
            for res in self._namespaced_storage():
                for key, record in list(self.storage.iterate(res.bucket, name)):
                    del key
                    with contextlib.suppress(StatusError):
                        self.delete(res, name, record.obj["metadata"]["name"])
        self._maybe_finish_namespace(name)
        latest = self.storage.get("namespaces", name)
        view = self._view(info, latest or current)
        return Result(view[0], view[1], 200)

    def _namespaced_storage(self) -> list[ResourceInfo]:
        seen: dict[str, ResourceInfo] = {}
        for res in self.registry.all():
            if res.namespaced and res.view is None and res.bucket not in seen:
                seen[res.bucket] = res
        return list(seen.values())

    def _maybe_finish_namespace(self, namespace: str) -> None:
        record = self.storage.get("namespaces", namespace)
        if record is None or not record.obj["metadata"].get("deletionTimestamp"):
            return
        if self.storage.namespace_counts.get(namespace):
            return
        self.storage.remove("namespaces", namespace, "")

    def ensure_namespace(self, name: str) -> None:
        """Create namespace ``name`` if missing (start-up namespaces, in-process seeding)."""
        if self.storage.get("namespaces", name) is None:
            info = self.registry.get("", "v1", "namespaces")
            assert info is not None
            self.create(info, "", {"metadata": {"name": name}}, Options(user_agent="envtest"))

    # --- CRD lifecycle ---------------------------------------------------------------------

    def _after_write(self, info: ResourceInfo, record: Record, previous: Record | None) -> None:
        if info.bucket != crds.CRD_BUCKET:
            return
        crd = record.obj
        others = [
            r.obj for k, r in self.storage.iterate(crds.CRD_BUCKET) if k != crd["metadata"]["name"]
        ]
        status = crds.crd_status(crd, others, self._now())
        if status != crd.get("status"):
            new = orjson.loads(record.raw)
            new["status"] = status
            record = self.storage.put(crds.CRD_BUCKET, new["metadata"]["name"], "", new)
        self._serve_crd(record.obj)

    def _serve_crd(self, crd: JSON) -> None:
        bucket = f"{crd['spec']['names']['plural']}.{crd['spec']['group']}"
        wanted = crds.served_resources(crd) if crds.is_established(crd) else []
        wanted_keys = {(i.group, i.version, i.plural) for i in wanted}
        for existing in self.registry.by_bucket(bucket):
            if (existing.group, existing.version, existing.plural) not in wanted_keys:
                self.registry.remove(existing.group, existing.version, existing.plural)
        if wanted:
            self.storage.open_bucket(bucket)
        for info in wanted:
            self.registry.add(info)
        self._registry_changed()

    def _unserve_crd(self, crd: JSON) -> None:
        bucket = crd["metadata"]["name"]
        for existing in self.registry.by_bucket(bucket):
            self.registry.remove(existing.group, existing.version, existing.plural)
        self.storage.drop_bucket(bucket)
        self._registry_changed()

    def _registry_changed(self) -> None:
        for callback in list(self.on_registry_change):
            callback()

    def _start_crd_cleanup(self, crd_record: Record) -> None:
        crd = orjson.loads(crd_record.raw)
        others = [
            r.obj for k, r in self.storage.iterate(crds.CRD_BUCKET) if k != crd["metadata"]["name"]
        ]
        crd["status"] = crds.crd_status(crd, others, self._now())
        record = self.storage.put(crds.CRD_BUCKET, crd["metadata"]["name"], "", crd)
        bucket = crd["metadata"]["name"]
        infos = [i for i in self.registry.by_bucket(bucket) if i.view is None]
        if infos:
            info = infos[0]
            for _key, cr in list(self.storage.iterate(bucket)):
                meta = cr.obj["metadata"]
                with contextlib.suppress(StatusError):
                    self.delete(info, meta.get("namespace", ""), meta["name"])
        self._maybe_finish_crd(self.storage.get(crds.CRD_BUCKET, bucket) or record)

    def _maybe_finish_crd(self, crd_record: Record) -> None:
        bucket = crd_record.obj["metadata"]["name"]
        if self.storage.count(bucket):
            return
        new = orjson.loads(crd_record.raw)
        finalizers = [
            f for f in new["metadata"].get("finalizers") or [] if f != crds.CLEANUP_FINALIZER
        ]
        if finalizers:
            new["metadata"]["finalizers"] = finalizers
            self.storage.put(crds.CRD_BUCKET, bucket, "", new)
            return
        new["metadata"].pop("finalizers", None)
        self.storage.put(crds.CRD_BUCKET, bucket, "", new)
        info = self.registry.get(crds.CRD_GROUP, "v1", "customresourcedefinitions")
        assert info is not None
        self._remove(info, bucket, "")
