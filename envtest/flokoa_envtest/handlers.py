"""The HTTP face of envtest: kube-apiserver's URL space, content negotiation and verbs.

One aiohttp low-level handler parses every request like kube's ``RequestInfoFactory``
(``/api/v1/namespaces/NS/RESOURCE/NAME/SUBRESOURCE``, ``/apis/G/V/…``, the legacy ``watch/``
prefix), applies the fault knobs, authenticates the bearer token, answers discovery, OpenAPI,
``/version`` and health, and maps resource requests onto :class:`~.apistore.APIStore` —
answering JSON, a ``meta.k8s.io`` Table or PartialObjectMetadata as the ``Accept`` header asks.
Every request lands in the audit log.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from aiohttp import web

from flokoa_envtest import discovery, errors, gocodec
from flokoa_envtest.apistore import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_PATCH,
    APIStore,
    ListResult,
    Options,
)
from flokoa_envtest.audit import WRITE_VERBS, AuditEntry, AuditLog
from flokoa_envtest.errors import StatusError
from flokoa_envtest.faults import Faults
from flokoa_envtest.openapi import OpenAPICache
from flokoa_envtest.resources import Registry, ResourceInfo
from flokoa_envtest.storage import dumps
from flokoa_envtest.timefmt import Clock
from flokoa_envtest.tokenrequest import (
    JWKS_CONTENT_TYPE,
    JWKS_PATH,
    OPENID_CONFIGURATION_PATH,
    ServiceAccountIssuer,
    create_token,
)
from flokoa_envtest.watch import Watch, WatchHandle, WatchSpec, error_line, raw_json

JSON = dict[str, Any]

log = logging.getLogger(__name__)

VERSION_INFO: JSON = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T00:00:00Z",
    "goVersion": "go1.23.3",
    "compiler": "gc",
    "platform": "linux/amd64",
}
"""What ``/version`` answers (a v1.32 server: the preinstalled kubectl dispatches on it)."""

JSON_TYPE = "application/json"
PROTOBUF_TYPE = "application/vnd.kubernetes.protobuf"
YAML_TYPE = "application/yaml"
BODY_TYPES = [JSON_TYPE, YAML_TYPE, PROTOBUF_TYPE]
UNAUTHENTICATED_PATHS = frozenset(
    {"/version", "/healthz", "/livez", "/readyz", OPENID_CONFIGURATION_PATH, JWKS_PATH}
)
"""Paths served without a token (the OIDC documents as with ``system:service-account-issuer-
discovery`` bound to ``system:unauthenticated``, the usual setup for public discovery)."""
NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclass
class RequestInfo:
    """A request parsed like kube's RequestInfoFactory."""

    is_resource: bool
    verb: str
    path: str
    group: str = ""
    version: str = ""
    resource: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    legacy_watch: bool = False


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1", "yes", "t")


def parse_request(method: str, path: str, query: dict[str, str]) -> RequestInfo:
    """Classify a request path into kube's request info (verb, group, resource, …)."""
    parts = [p for p in path.strip("/").split("/") if p]
    info = RequestInfo(is_resource=False, verb=method.lower(), path=path)
    if not parts or parts[0] not in ("api", "apis"):
        return info
    if parts[0] == "api":
        if len(parts) < 3:
            return info
        info.version = parts[1]
        rest = parts[2:]
    else:
        if len(parts) < 4:
            return info
        info.group, info.version = parts[1], parts[2]
        rest = parts[3:]
    info.is_resource = True
    if rest and rest[0] == "watch":
        info.legacy_watch = True
        rest = rest[1:]
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        info.namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    if len(rest) >= 1:
        info.resource = rest[0]
    if len(rest) >= 2:
        info.name = rest[1]
    if len(rest) >= 3:
        info.subresource = rest[2]
    if len(rest) > 3:
        info.resource = ""  # unknown deeper path
    if info.resource == "namespaces" and not info.name and info.namespace:
        info.name = info.namespace
    if info.resource == "namespaces":
        info.namespace = ""
    collection = not info.name
    verbs = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    verb = verbs.get(method, method.lower())
    if method == "GET":
        if info.legacy_watch or _truthy(query.get("watch")):
            verb = "watch"
        elif collection:
            verb = "list"
    elif method == "DELETE" and collection:
        verb = "deletecollection"
    info.verb = verb
    return info


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header."""

    type: str
    params: dict[str, str]


def parse_accept(header: str) -> list[MediaRange]:
    """Parse an Accept header (order kept; q-values ignored like kube's negotiation)."""
    out: list[MediaRange] = []
    for item in header.split(","):
        fields = [f.strip() for f in item.split(";") if f.strip()]
        if not fields:
            continue
        params: dict[str, str] = {}
        for f in fields[1:]:
            if "=" in f:
                k, v = f.split("=", 1)
                params[k.strip().lower()] = v.strip().strip('"')
        out.append(MediaRange(fields[0].lower(), params))
    return out


OUTPUT_TYPES = [JSON_TYPE, YAML_TYPE, PROTOBUF_TYPE]
"""What a resource request may ask for in ``Accept`` (protobuf is answered as JSON)."""


def negotiate_output(header: str) -> tuple[str, str]:
    """(``json`` | ``yaml`` | ``table`` | ``partial``, meta.k8s.io version) from an Accept header.

    Like kube's ``NegotiateOutputMediaType``: the first acceptable media range wins; nothing
    acceptable is the 406 ``NotAcceptable``.
    """
    for media in parse_accept(header or JSON_TYPE):
        if media.type not in (JSON_TYPE, "*/*", "application/*", YAML_TYPE, PROTOBUF_TYPE):
            continue
        as_ = media.params.get("as")
        if as_ is None:
            return ("yaml" if media.type == YAML_TYPE else "json"), ""
        if media.params.get("g") != "meta.k8s.io":
            continue
        version = media.params.get("v", "v1")
        if version not in ("v1", "v1beta1"):
            continue
        if as_ == "Table":
            return "table", version
        if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList"):
            return "partial", version
    raise errors.not_acceptable(OUTPUT_TYPES)


def _yaml_body(raw: JSON | bytes) -> bytes:
    """An answer as kube's YAML serializer writes it (JSON converted, keys sorted)."""
    obj = orjson.loads(raw) if isinstance(raw, bytes) else raw
    return yaml.safe_dump(
        obj, default_flow_style=False, sort_keys=True, allow_unicode=True
    ).encode()


def _discovery_version(header: str) -> str | None:
    for media in parse_accept(header or ""):
        if (
            media.type == JSON_TYPE
            and media.params.get("g") == "apidiscovery.k8s.io"
            and media.params.get("as") == "APIGroupDiscoveryList"
            and media.params.get("v") in ("v2", "v2beta1")
        ):
            return media.params["v"]
        if media.type in (JSON_TYPE, "*/*") and not media.params:
            return None
    return None


def _table_module() -> Any:
    try:
        return importlib.import_module("flokoa_envtest.table")
    except ImportError:
        return None


def _protobuf_module() -> Any:
    try:
        return importlib.import_module("flokoa_envtest.protobuf")
    except ImportError:
        return None


DEFAULT_CR_COLUMNS: tuple[JSON, ...] = (
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)


def _json_response(
    body: JSON | bytes,
    status: int = 200,
    *,
    content_type: str = JSON_TYPE,
    warnings: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    raw = body if isinstance(body, bytes) else dumps(body)
    resp = web.Response(body=raw, status=status, headers=headers or {})
    resp.headers["Content-Type"] = content_type
    resp.headers["Cache-Control"] = "no-cache, private"
    for w in warnings or []:
        resp.headers.add("Warning", '299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return resp


def _object_response(
    body: JSON | bytes, fmt: str, status: int = 200, *, warnings: list[str] | None = None
) -> web.Response:
    """An object or list answer in the negotiated encoding (JSON or YAML)."""
    if fmt == "yaml":
        return _json_response(_yaml_body(body), status, content_type=YAML_TYPE, warnings=warnings)
    return _json_response(body, status, warnings=warnings)


def _status_response(exc: StatusError, accept: str = "") -> web.Response:
    """A failure's Status, in YAML when a resource request asked for YAML (kube's
    ``ErrorNegotiated``), else JSON."""
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    try:
        fmt = negotiate_output(accept)[0] if accept else "json"
    except StatusError:
        fmt = "json"
    if fmt == "yaml":
        body = _yaml_body(exc.body)
        return _json_response(body, exc.code, content_type=YAML_TYPE, headers=headers)
    return _json_response(exc.body, exc.code, headers=headers)


def _int_param(query: dict[str, str], name: str) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    problem = gocodec.parse_int_error(value)
    if problem is not None:  # kube's query parameter conversion quotes strconv
        raise errors.bad_request(problem)
    return int(value)


class APIHandler:
    """Answers every HTTP request of one envtest server."""

    def __init__(
        self,
        *,
        store: APIStore,
        registry: Registry,
        faults: Faults,
        audit: AuditLog,
        clock: Clock,
        token: str | None,
        server_address: Callable[[], str],
        bookmark_interval: float,
        control: Callable[[web.BaseRequest, str], Any] | None = None,
        issuer: ServiceAccountIssuer | None = None,
    ) -> None:
        self.store = store
        self.issuer = issuer
        self.registry = registry
        self.faults = faults
        self.audit = audit
        self.clock = clock
        self.token = token
        self.server_address = server_address
        self.bookmark_interval = bookmark_interval
        self.openapi = OpenAPICache(registry)
        self.watches: set[WatchHandle] = set()
        self.control = control
        self._rng = random.Random()

    # --- entry point -------------------------------------------------------------------------

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        """Handle one request (aiohttp low-level server handler)."""
        started = self.clock()
        query = {k: request.query.getone(k) for k in request.query}
        info = parse_request(request.method, request.path, query)
        entry: dict[str, Any] = {}
        try:
            response = await self._dispatch(request, info, query, entry)
        except StatusError as exc:
            accept = request.headers.get("Accept", "") if info.is_resource else ""
            response = _status_response(exc, accept)
        except errors.PageNotFound:
            response = web.Response(body=errors.PAGE_NOT_FOUND.encode(), status=404)
            response.headers["Content-Type"] = "text/plain; charset=utf-8"
            response.headers["X-Content-Type-Options"] = "nosniff"
        except ConnectionError:
            raise
        except Exception as exc:  # a bug here must still look like kube's 500, and be logged
            log.exception("envtest: unexpected error serving %s %s", request.method, request.path)
            response = _status_response(errors.internal_error(f"{type(exc).__name__}: {exc}"))
        if not entry.get("logged"):
            self._audit(request, info, query, started, response.status)
        return response

    def _audit(
        self,
        request: web.BaseRequest,
        info: RequestInfo,
        query: dict[str, str],
        started: Any,
        code: int,
    ) -> None:
        if request.path.startswith("/envtest/"):
            return
        self.audit.append(
            AuditEntry(
                time=started,
                method=request.method,
                path=request.path,
                query=query,
                verb=info.verb,
                user_agent=request.headers.get("User-Agent", ""),
                code=code,
                group=info.group,
                version=info.version,
                resource=info.resource,
                namespace=info.namespace,
                name=info.name,
                subresource=info.subresource,
                content_type=request.content_type if request.body_exists else "",
            )
        )

    async def _dispatch(
        self,
        request: web.BaseRequest,
        info: RequestInfo,
        query: dict[str, str],
        entry: dict[str, Any],
    ) -> web.StreamResponse:
        path = request.path
        if path.startswith("/envtest/") and self.control is not None:
            self._authenticate(request)
            result = await self.control(request, path[len("/envtest/") :])
            return _json_response(result)
        if path not in UNAUTHENTICATED_PATHS:
            self._authenticate(request)
        if self.faults.latency > 0:
            await asyncio.sleep(self.faults.latency)
        if path not in UNAUTHENTICATED_PATHS:
            failure = self.faults.injected_failure(info.verb)
            if failure is not None:
                raise failure
        if info.is_resource:
            response = await self._resource(request, info, query, entry)
            if self.faults.write_reply_delay > 0 and info.verb in WRITE_VERBS:
                await asyncio.sleep(self.faults.write_reply_delay)  # watchers hear it first
            return response
        return await self._non_resource(request, path)

    def _authenticate(self, request: web.BaseRequest) -> None:
        if self.token is None:
            return
        header = request.headers.get("Authorization", "")
        if header != f"Bearer {self.token}":
            raise errors.unauthorized()

    # --- non-resource paths ------------------------------------------------------------------

    async def _non_resource(self, request: web.BaseRequest, path: str) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed()
        if path == "/version":
            return _json_response(VERSION_INFO)
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok", content_type="text/plain")
        if path == OPENID_CONFIGURATION_PATH and self.issuer is not None:
            return _json_response(
                self.issuer.openid_configuration(),
                headers={"Cache-Control": "public, max-age=3600"},
            )
        if path == JWKS_PATH and self.issuer is not None:
            resp = _json_response(self.issuer.jwks(), content_type=JWKS_CONTENT_TYPE)
            resp.headers["Cache-Control"] = "public, max-age=3600"
            return resp
        if path.rstrip("/") in ("/api", "/apis"):
            core = path.rstrip("/") == "/api"
            version = _discovery_version(request.headers.get("Accept", ""))
            if version is not None:
                aggregated = discovery.aggregated(
                    self.registry, core=core, api_version=f"apidiscovery.k8s.io/{version}"
                )
                ctype = (
                    f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
                )
                return _json_response(aggregated, content_type=ctype)
            if core:
                return _json_response(discovery.api_versions(self.server_address()))
            return _json_response(discovery.api_group_list(self.registry))
        parts = [p for p in path.strip("/").split("/") if p]
        doc: JSON | None = None
        if len(parts) == 2 and parts[0] == "api":
            doc = discovery.api_resource_list(self.registry, "", parts[1])
        elif len(parts) == 2 and parts[0] == "apis":
            doc = discovery.api_group(self.registry, parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            doc = discovery.api_resource_list(self.registry, parts[1], parts[2])
        if doc is not None:
            return _json_response(doc)
        if path.rstrip("/") == "/openapi/v3":
            return _json_response(self.openapi.index())
        if path.startswith("/openapi/v3/"):
            body = self.openapi.document(path[len("/openapi/v3/") :])
            if body is not None:
                return _json_response(body)
        raise errors.path_not_found()

    # --- resources ---------------------------------------------------------------------------

    async def _resource(
        self,
        request: web.BaseRequest,
        ri: RequestInfo,
        query: dict[str, str],
        entry: dict[str, Any],
    ) -> web.StreamResponse:
        info = self.registry.get(ri.group, ri.version, ri.resource)
        if info is None:
            raise errors.path_not_found()
        if ri.subresource and ri.subresource not in info.subresources:
            if info.custom:  # kube's crdHandler: NotFound of the object
                raise errors.not_found(info.plural, info.group, ri.name)
            raise errors.path_not_found()
        if not info.namespaced and ri.namespace:
            raise errors.path_not_found()
        if info.namespaced and not ri.namespace and ri.verb not in ("list", "watch"):
            if ri.name:
                raise errors.path_not_found()
            raise errors.method_not_allowed()
        if ri.subresource == "token" and info.plural == "serviceaccounts" and not info.group:
            return await self._token_request(request, ri)
        if ri.subresource and ri.verb not in ("get", "update", "patch"):
            raise errors.method_not_allowed()
        if ri.verb == "create" and ri.name and not info.custom:
            # built-ins register no POST on an item; kube's crdHandler creates from the body
            # and ignores the name on the URL
            raise errors.method_not_allowed()
        if ri.verb not in info.verbs and ri.verb in ("deletecollection",):
            raise errors.method_not_allowed()
        namespace = ri.namespace if info.namespaced else ""
        accept = request.headers.get("Accept", "")
        out, _ = negotiate_output(accept)  # 406 before anything is done, as kube
        if ri.verb == "get":
            obj, raw = self.store.get(info, namespace, ri.name)
            return self._render_one(info, obj, raw, accept, query)
        if ri.verb == "list":
            page = self.store.list_page(
                info,
                namespace or None,
                label_selector=query.get("labelSelector"),
                field_selector=query.get("fieldSelector"),
                limit=_int_param(query, "limit"),
                continue_token=query.get("continue"),
                resource_version=query.get("resourceVersion"),
                resource_version_match=query.get("resourceVersionMatch"),
                send_initial_events=query.get("sendInitialEvents"),
            )
            return self._render_list(page, accept, query)
        if ri.verb == "watch":
            return await self._watch(request, ri, info, query, entry)
        if ri.verb == "create":
            body = await self._read_object(request, info.kind)
            res = self.store.create(info, namespace, body, self._options(request, query))
            return _object_response(res.raw, out, res.code, warnings=res.warnings)
        if ri.verb == "update":
            body = await self._read_object(request, info.kind)
            res = self.store.update(
                info,
                namespace,
                ri.name,
                body,
                self._options(request, query),
                subresource=ri.subresource,
            )
            return _object_response(res.raw, out, res.code, warnings=res.warnings)
        if ri.verb == "patch":
            patch_type, patch = await self._read_patch(request, info)
            opts = self._options(request, query)
            opts.force = _truthy(query.get("force"))
            res = self.store.patch(
                info, namespace, ri.name, patch_type, patch, opts, subresource=ri.subresource
            )
            return _object_response(res.raw, out, res.code, warnings=res.warnings)
        if ri.verb == "delete":
            options = await self._delete_options(request, query)
            res = self.store.delete(
                info,
                namespace,
                ri.name,
                dry_run=options["dry_run"],
                preconditions=options["preconditions"],
                propagation_policy=options["propagation"],
            )
            return _object_response(res.raw, out, res.code)
        if ri.verb == "deletecollection":
            options = await self._delete_options(request, query)
            body = self.store.delete_collection(
                info,
                namespace or None,
                label_selector=query.get("labelSelector"),
                field_selector=query.get("fieldSelector"),
                dry_run=options["dry_run"],
            )
            return _object_response(body, out)
        raise errors.method_not_allowed()

    async def _token_request(self, request: web.BaseRequest, ri: RequestInfo) -> web.Response:
        """``serviceaccounts/NAME/token``: create only (kube's TokenREST)."""
        if ri.verb != "create" or self.issuer is None:
            raise errors.method_not_allowed()
        body = await self._read_object(request, "TokenRequest")
        answer = create_token(self.issuer, self.get_core_object, ri.namespace, ri.name, body)
        return _json_response(answer, 201)

    def get_core_object(self, plural: str, namespace: str, name: str) -> JSON:
        info = self.registry.get("", "v1", plural)
        if info is None:
            raise errors.not_found(plural, "", name)
        obj, _ = self.store.get(info, namespace, name)
        return obj

    def _options(self, request: web.BaseRequest, query: dict[str, str]) -> Options:
        validation = query.get("fieldValidation") or "Warn"
        if validation not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(
                f"fieldValidation: Unsupported value: {validation!r}: supported values: "
                '"Ignore", "Strict", "Warn"'
            )
        return Options(
            dry_run=self._dry_run(request.query.getall("dryRun", [])),
            field_manager=query.get("fieldManager", ""),
            field_validation=validation,
            user_agent=request.headers.get("User-Agent", ""),
        )

    @staticmethod
    def _dry_run(values: list[str]) -> bool:
        for v in values:
            if v != "All":
                raise errors.bad_request(
                    f'dryRun: Unsupported value: "{v}": supported values: "All"'
                )
        return bool(values)

    async def _read_object(self, request: web.BaseRequest, kind: str) -> Any:
        raw = await request.read()
        ctype = request.content_type or JSON_TYPE
        if not request.headers.get("Content-Type"):
            ctype = JSON_TYPE
        if ctype == JSON_TYPE:
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                # kube's transformDecodeError around the JSON serializer's findKind
                problem = gocodec.json_syntax_error(raw) or str(exc)
                raise errors.bad_request(
                    f"the object provided is unrecognized (must be of type {kind}): "
                    f"couldn't get version/kind; json parse error: {problem} "
                    f"({gocodec.summarize_data(raw)})"
                ) from None
        if ctype == YAML_TYPE:
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise errors.bad_request(f"error converting YAML to JSON: {exc}") from None
        if ctype == PROTOBUF_TYPE:
            module = _protobuf_module()
            if module is None:
                raise errors.unsupported_media_type(ctype, [JSON_TYPE, YAML_TYPE])
            try:
                return module.decode_object(raw)
            except ValueError as exc:
                raise errors.bad_request(f"failed to decode protobuf body: {exc}") from None
        raise errors.unsupported_media_type(ctype, BODY_TYPES)

    async def _read_patch(self, request: web.BaseRequest, info: ResourceInfo) -> tuple[str, Any]:
        ctype = request.content_type
        accepted = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH]
        if info.strategy.smp is not None:  # no strategic merge patch for custom resources
            accepted.insert(2, STRATEGIC_PATCH)
        if ctype not in accepted:
            raise errors.unsupported_media_type(ctype, accepted)
        raw = await request.read()
        try:
            if ctype == APPLY_PATCH:
                return ctype, yaml.safe_load(raw)
            return ctype, orjson.loads(raw)
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"error decoding patch: {exc}") from None
        except orjson.JSONDecodeError as exc:
            problem = gocodec.json_syntax_error(raw) or str(exc)
            raise errors.bad_request(f"error decoding patch: {problem}") from None

    async def _delete_options(self, request: web.BaseRequest, query: dict[str, str]) -> JSON:
        body: JSON = {}
        raw = await request.read()
        if raw.strip():
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise errors.bad_request(f"couldn't decode DeleteOptions: {exc}") from None
            if isinstance(parsed, dict):
                body = parsed
        dry = list(request.query.getall("dryRun", [])) + list(body.get("dryRun") or [])
        return {
            "dry_run": self._dry_run(dry),
            "preconditions": body.get("preconditions"),
            "propagation": query.get("propagationPolicy") or body.get("propagationPolicy"),
        }

    # --- output ------------------------------------------------------------------------------

    def _columns(self, info: ResourceInfo) -> list[JSON] | None:
        if not info.custom:
            return None
        return list(info.printer_columns or DEFAULT_CR_COLUMNS)

    def _table(
        self,
        info: ResourceInfo,
        objects: list[JSON],
        version: str,
        include_object: str = "Metadata",
        *,
        include_headers: bool = True,
    ) -> JSON:
        module = _table_module()
        if module is None:
            table = _fallback_table(objects, self.clock())
        else:
            table = module.build_table(
                objects,
                self._columns(info),
                kind=info.kind,
                now=self.clock(),
                include_object=include_object,
                include_headers=include_headers,
            )
        if version != "v1":
            table["apiVersion"] = f"meta.k8s.io/{version}"
        return dict(table)

    def _render_one(
        self, info: ResourceInfo, obj: JSON, raw: bytes, accept: str, query: dict[str, str]
    ) -> web.Response:
        fmt, version = negotiate_output(accept)
        if fmt == "table":
            table = self._table(info, [obj], version, _include_object(query))
            return _json_response(
                table, content_type=f"{JSON_TYPE};as=Table;v={version};g=meta.k8s.io"
            )
        if fmt == "partial":
            partial = _partial(obj, version)
            return _json_response(
                partial,
                content_type=f"{JSON_TYPE};as=PartialObjectMetadata;v={version};g=meta.k8s.io",
            )
        return _object_response(raw, fmt)

    def _render_list(self, page: ListResult, accept: str, query: dict[str, str]) -> web.Response:
        fmt, version = negotiate_output(accept)
        meta: JSON = {"resourceVersion": page.resource_version}
        if page.continue_token:
            meta["continue"] = page.continue_token
            if page.remaining is not None:
                meta["remainingItemCount"] = page.remaining
        if fmt == "table":
            table = self._table(
                page.info, [obj for obj, _ in page.items], version, _include_object(query)
            )
            table["metadata"] = meta
            return _json_response(
                table, content_type=f"{JSON_TYPE};as=Table;v={version};g=meta.k8s.io"
            )
        if fmt == "partial":
            body = {
                "kind": "PartialObjectMetadataList",
                "apiVersion": f"meta.k8s.io/{version}",
                "metadata": meta,
                "items": [_partial(obj, version) for obj, _ in page.items],
            }
            return _json_response(
                body,
                content_type=f"{JSON_TYPE};as=PartialObjectMetadataList;v={version};g=meta.k8s.io",
            )
        return _object_response(page.body(), fmt)

    # --- watch -------------------------------------------------------------------------------

    async def _watch(
        self,
        request: web.BaseRequest,
        ri: RequestInfo,
        info: ResourceInfo,
        query: dict[str, str],
        entry: dict[str, Any],
    ) -> web.StreamResponse:
        fields_text = query.get("fieldSelector")
        if ri.name:
            fields_text = ",".join(filter(None, [fields_text, f"metadata.name={ri.name}"]))
        labels, fields = self.store.selectors(info, query.get("labelSelector"), fields_text)
        rv = query.get("resourceVersion", "")
        if rv not in ("", "0"):
            try:
                if int(rv) < 0:
                    raise ValueError(rv)
            except ValueError:
                raise errors.bad_request(
                    f'resourceVersion: Invalid value: "{rv}": invalid resource version'
                ) from None
        send_initial_raw = query.get("sendInitialEvents")
        send_initial = None if send_initial_raw is None else _truthy(send_initial_raw)
        rv_match = query.get("resourceVersionMatch") or ""
        allow_bookmarks = _truthy(query.get("allowWatchBookmarks"))
        if send_initial is not None:
            if rv_match != "NotOlderThan":
                raise self.store._invalid_options(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )
            if send_initial and not allow_bookmarks:
                raise self.store._invalid_options(
                    "allowWatchBookmarks",
                    "sendInitialEvents requires setting allowWatchBookmarks to true",
                )
        elif rv_match:
            raise self.store._invalid_options(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            )
        if send_initial and rv not in ("", "0") and int(rv) > self.store.storage.rv:
            # kube waits ~3 s for its cache to catch up, then refuses the watch itself
            raise errors.too_large_resource_version(int(rv), self.store.storage.rv)
        timeout = _int_param(query, "timeoutSeconds")
        effective_timeout = (
            float(timeout) if timeout is not None and timeout > 0 else self._rng.uniform(1800, 3600)
        )
        spec = WatchSpec(
            info=info,
            namespace=ri.namespace or None,
            labels=labels,
            fields=fields,
            resource_version=rv,
            send_initial_events=send_initial,
            allow_bookmarks=allow_bookmarks,
            timeout=effective_timeout,
            bookmark_interval=self.bookmark_interval,
        )
        fmt, version = negotiate_output(request.headers.get("Accept", ""))
        render = self._renderer(info, fmt, version, query)
        handle = WatchHandle(
            zombie_check=lambda: bool(self.faults.zombie_watches),
            max_age=lambda: self.faults.watch_max_seconds,
        )
        watch = Watch(self.store.storage, spec, render, handle)
        first: bytes | None = None
        cursor, initial = 0, False
        # kube 1.32 (WatchList on) turns a watch from "" or "0" that allows bookmarks and asks
        # no sendInitialEvents into a streaming list: refused by the fault the same way
        defaulted_streaming = (
            send_initial is None and not rv_match and rv in ("", "0") and allow_bookmarks
        )
        if (send_initial or defaulted_streaming) and self.faults.refuse_streaming_list:
            # kube-apiserver answers 200 and ends the stream with one ERROR event: a 500 Status
            # with its bare message (no "Internal error occurred" prefix) and no details
            refusal = errors.status_body(
                500,
                "InternalError",
                "a watch stream was requested by the client but the required storage feature "
                "RequestWatchProgress is disabled",
            )
            refusal.pop("details", None)
            first = error_line(refusal)
        elif rv not in ("", "0") and not send_initial and self.faults.take_expired_resume():
            first = error_line(errors.too_old_resource_version(int(rv), self.store.storage.rv).body)
        else:
            try:
                cursor, initial = watch.start_rv()
            except StatusError as exc:
                first = error_line(exc.body)
        ctype = JSON_TYPE
        if fmt == "table":
            ctype = f"{JSON_TYPE};as=Table;v={version};g=meta.k8s.io"
        resp = web.StreamResponse(
            status=200, headers={"Content-Type": ctype, "Cache-Control": "no-cache, private"}
        )
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        self._audit(request, ri, query, self.clock(), 200)
        entry["logged"] = True
        if first is not None:
            await resp.write(first)
            await resp.write_eof()
            return resp
        transport = request.transport
        if transport is not None:
            handle.abort = transport.abort
        self.watches.add(handle)
        try:
            async for chunk in watch.stream(cursor, initial):
                await resp.write(chunk)
            if handle.dropped:
                if request.transport is not None:
                    request.transport.abort()
                return resp
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.watches.discard(handle)
        return resp

    def _renderer(
        self, info: ResourceInfo, fmt: str, version: str, query: dict[str, str]
    ) -> Callable[[JSON, bytes], bytes]:
        if fmt == "table":
            include_object = _include_object(query)
            headers = [True]  # kube: columnDefinitions in the first event only, then null

            def table(obj: JSON, raw: bytes) -> bytes:
                rendered = self._table(
                    info, [obj], version, include_object, include_headers=headers[0]
                )
                headers[0] = False
                return dumps(rendered)

            return table
        if fmt == "partial":

            def partial(obj: JSON, raw: bytes) -> bytes:
                return dumps(_partial(obj, version))

            return partial
        return raw_json

    def drop_watches(self) -> int:
        """Abort every open watch connection; returns how many."""
        handles = list(self.watches)
        for handle in handles:
            handle.drop()
        return len(handles)

    def wake_watches(self) -> None:
        """Make every watch re-read the fault knobs."""
        for handle in list(self.watches):
            handle.waker.ring()


INCLUDE_OBJECT = ("Metadata", "Object", "None")
"""Values of a Table request's ``includeObject`` parameter (empty means ``Metadata``)."""


def _include_object(query: dict[str, str]) -> str:
    """The ``includeObject`` of a Table request (400 for an unknown value, as kube)."""
    value = query.get("includeObject") or "Metadata"
    if value not in INCLUDE_OBJECT:
        raise errors.bad_request(
            "Unable to convert to Table as requested: includeObject: Invalid value: "
            f"\"{value}\": must be 'Metadata', 'Object', 'None', or empty"
        )
    return value


def _partial(obj: JSON, version: str) -> JSON:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": obj.get("metadata", {}),
    }


def _fallback_table(objects: list[JSON], now: Any) -> JSON:
    """A Name-only Table (used only while the table module is absent)."""
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}
        ],
        "rows": [
            {"cells": [o.get("metadata", {}).get("name", "")], "object": _partial(o, "v1")}
            for o in objects
        ],
    }
