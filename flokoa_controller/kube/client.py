"""`KubeClient`: the typed verbs of the Kubernetes REST API (get, list, create, update,
patch, delete, watch) on plain dict objects.

The layers below, as in client-go: `flokoa_controller.kube.transport` (pooled sessions,
TLS, bearer token), `flokoa_controller.kube.request` (one request with retries, metrics,
warnings and typed errors), `flokoa_controller.kube.pager` (paginated lists) and
`flokoa_controller.kube.watch` (watch streams).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self

import aiohttp

from flokoa_controller.kube.config import ClusterConfig
from flokoa_controller.kube.pager import list_all_pages
from flokoa_controller.kube.request import JSON, Requester
from flokoa_controller.kube.request import query_params as _params
from flokoa_controller.kube.resources import ResourceType
from flokoa_controller.kube.transport import DEFAULT_FIELD_MANAGER, ClientOptions, Transport
from flokoa_controller.kube.watch import WatchEvent, stream_events

__all__ = [
    "DEFAULT_FIELD_MANAGER",
    "PATCH_CONTENT_TYPES",
    "ClientOptions",
    "KubeClient",
    "PatchType",
    "WatchEvent",
]

PatchType = Literal["merge", "json", "strategic", "apply"]

PATCH_CONTENT_TYPES: Mapping[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
"""Content type of each patch type (server-side apply bodies are JSON, valid YAML)."""


class KubeClient:
    """An asyncio Kubernetes API client.

    Use as `async with KubeClient(config) as client:`; the pooled session lives as long as
    the context. Objects are plain dicts as the API server sends them.
    """

    def __init__(self, config: ClusterConfig, options: ClientOptions | None = None) -> None:
        self.config = config
        """Where and who: the cluster configuration."""
        self.options = options or ClientOptions()
        """Timeouts, pool, retries."""
        self.transport = Transport(config, self.options)
        """The pooled sessions and the bearer token."""
        self._requests = Requester(self.transport)

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Open the connection pool."""
        self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the connection pool."""
        await self.close()

    def open(self) -> None:
        """Create the pooled sessions (needs a running event loop); idempotent."""
        self.transport.open()

    async def close(self) -> None:
        """Close the pooled sessions and their connections."""
        await self.transport.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The main pooled aiohttp session (raises if the client is not open)."""
        return self.transport.session

    @property
    def watch_session(self) -> aiohttp.ClientSession:
        """The session of watches (raises if the client is not open)."""
        return self.transport.watch_session

    @property
    def lease_session(self) -> aiohttp.ClientSession:
        """The session of Lease requests (raises if the client is not open)."""
        return self.transport.lease_session

    # -- plumbing --------------------------------------------------------------------------

    def _write_params(
        self,
        dry_run: bool,
        field_manager: str | None,
        field_validation: str | None,
        force: bool | None = None,
    ) -> list[tuple[str, str]]:
        return _params(
            dryRun="All" if dry_run else None,
            fieldManager=field_manager or self.options.field_manager,
            fieldValidation=field_validation,
            force=force,
        )

    @staticmethod
    def _object_namespace(
        rt: ResourceType, body: Mapping[str, Any], namespace: str | None
    ) -> str | None:
        if namespace is not None or not rt.namespaced:
            return namespace
        metadata = body.get("metadata") or {}
        ns = metadata.get("namespace")
        if not ns:
            raise ValueError(f"{rt.plural} are namespaced: give a namespace or metadata.namespace")
        return str(ns)

    # -- verbs -----------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
    ) -> JSON:
        """Any JSON request on a raw path (discovery, `/version`...), with the client's
        authentication, retries, metrics and typed errors."""
        return await self._requests.json(method.upper(), path, params, body, content_type)

    async def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> JSON:
        """Read one object. Raises `NotFound` if it does not exist."""
        return await self._requests.json("GET", rt.path(namespace, name))

    async def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> JSON:
        """One page of a list (all namespaces when `namespace` is None for a namespaced
        type). `metadata.continue` of the result is the token of the next page, if any."""
        params = _params(
            labelSelector=label_selector,
            fieldSelector=field_selector,
            limit=limit,
            resourceVersion=resource_version,
            resourceVersionMatch=resource_version_match,
        )
        if continue_token:
            params.append(("continue", continue_token))
        return await self._requests.json("GET", rt.path(namespace), params)

    async def list_all(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
        resource_version: str | None = None,
    ) -> JSON:
        """The whole list, fetched in pages of `page_size` and returned as one list object
        (`items` of every page; `metadata.resourceVersion` of the snapshot).

        When a continue token has expired (410) the list is fetched again in one piece,
        as client-go's pager does. `resource_version` applies to the first request only
        (the API server refuses it together with a continue token).
        """

        async def page(
            *, limit: int | None, continue_token: str | None, resource_version: str | None
        ) -> JSON:
            return await self.list(
                rt,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=limit,
                continue_token=continue_token,
                resource_version=resource_version,
            )

        return await list_all_pages(
            page, page_size=page_size, resource_version=resource_version, what=rt
        )

    async def create(
        self,
        rt: ResourceType,
        body: Mapping[str, Any],
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: str | None = None,
    ) -> JSON:
        """Create an object (POST). `namespace` defaults to `metadata.namespace`.
        Raises `AlreadyExists` if the name is taken. Not retried on 5xx."""
        ns = self._object_namespace(rt, body, namespace)
        params = self._write_params(dry_run, field_manager, field_validation)
        return await self._requests.json("POST", rt.path(ns), params, body)

    async def update(
        self,
        rt: ResourceType,
        body: Mapping[str, Any],
        namespace: str | None = None,
        subresource: str | None = None,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: str | None = None,
    ) -> JSON:
        """Replace an object or a subresource (PUT). With `metadata.resourceVersion` set,
        a concurrent change makes it fail with `Conflict`."""
        ns = self._object_namespace(rt, body, namespace)
        name = (body.get("metadata") or {}).get("name")
        if not name:
            raise ValueError("update needs metadata.name")
        params = self._write_params(dry_run, field_manager, field_validation)
        return await self._requests.json("PUT", rt.path(ns, str(name), subresource), params, body)

    async def patch(
        self,
        rt: ResourceType,
        name: str,
        patch: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: str | None = None,
        force: bool | None = None,
    ) -> JSON:
        """Patch an object or a subresource (PATCH): `merge` (RFC 7386), `json` (RFC 6902,
        a list of operations), `strategic`, or `apply` (server-side apply; `force` takes
        conflicting fields over). Not retried on 5xx."""
        try:
            content_type = PATCH_CONTENT_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"unknown patch type {patch_type!r}") from None
        params = self._write_params(
            dry_run, field_manager, field_validation, force if patch_type == "apply" else None
        )
        return await self._requests.json(
            "PATCH", rt.path(namespace, name, subresource), params, patch, content_type
        )

    async def delete(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: Mapping[str, str] | None = None,
        dry_run: bool = False,
    ) -> JSON:
        """Delete an object (DELETE). Returns the object (when deletion waits on finalizers)
        or a Status. `preconditions` may hold `uid` and/or `resourceVersion`."""
        params = _params(
            propagationPolicy=propagation_policy,
            gracePeriodSeconds=grace_period_seconds,
            dryRun="All" if dry_run else None,
        )
        body = None
        if preconditions:
            body = {
                "kind": "DeleteOptions",
                "apiVersion": "v1",
                "preconditions": dict(preconditions),
            }
        return await self._requests.json("DELETE", rt.path(namespace, name), params, body)

    # -- watch -----------------------------------------------------------------------------

    async def watch(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
        send_initial_events: bool = False,
        label_selector: str | None = None,
        field_selector: str | None = None,
        inactivity_timeout: float | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Stream watch events of a collection (all namespaces when `namespace` is None).

        The request is sent on the first iteration; an HTTP error status raises the typed
        error then. `ERROR` events are yielded as they come (the caller decides: a 410 there
        means relist). The generator ends when the server closes the stream (after
        `timeout_seconds`). `inactivity_timeout`: seconds without any byte from the server
        after which `ConnectionFailed(reason="InactivityTimeout")` is raised (bookmarks
        count as activity). `send_initial_events` asks for a streaming list
        (`resourceVersionMatch=NotOlderThan`). Never retried here. Closing the generator
        (`aclose()`, or `contextlib.aclosing`) closes the connection at once.
        """
        params = _params(
            watch=1,
            resourceVersion=resource_version,
            timeoutSeconds=timeout_seconds,
            allowWatchBookmarks=True if allow_bookmarks else None,
            labelSelector=label_selector,
            fieldSelector=field_selector,
        )
        if send_initial_events:
            params += [("sendInitialEvents", "true"), ("resourceVersionMatch", "NotOlderThan")]
        path = rt.path(namespace)
        resp = await self._requests.open_stream(path, params, inactivity_timeout)
        events = stream_events(
            resp,
            path,
            tcp_keepalive=self.options.tcp_keepalive,
            inactivity_timeout=inactivity_timeout,
        )
        async with contextlib.aclosing(events):
            async for event in events:
                yield event
