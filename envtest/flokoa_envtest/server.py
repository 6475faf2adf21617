"""``APIServer``: the in-memory kube-apiserver stand-in, as an async context manager.

    async with APIServer(crds=["config/crd"]) as api:
        api.url, api.kubeconfig_path          # point kubectl / clients here
        api.create_object({...})               # fast in-process seeding (same admission)
        api.faults.zombie_watches = True       # fault knobs
        api.audit.writes()                     # what clients did
        api.create_token("team-a", "agent", ["sts.amazonaws.com"])  # a ServiceAccount token
        api.service_account_issuer, api.jwks()  # what verifiers trust

Plain HTTP on 127.0.0.1 by default; ``tls=True`` serves HTTPS with a throwaway CA
(``api.ca_path``) and requires a bearer token (``api.token``; 401 without it).
ServiceAccount tokens (TokenRequest, ``/.well-known/openid-configuration``, ``/openid/v1/jwks``)
are described in :mod:`flokoa_envtest.tokenrequest`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import orjson
import yaml
from aiohttp import web

from flokoa_envtest import crds as crdlib
from flokoa_envtest.apistore import INITIAL_NAMESPACES, MERGE_PATCH, APIStore, Options
from flokoa_envtest.audit import DEFAULT_AUDIT_LIMIT, AuditLog
from flokoa_envtest.builtins import builtin_resources
from flokoa_envtest.errors import StatusError
from flokoa_envtest.faults import Faults
from flokoa_envtest.handlers import APIHandler
from flokoa_envtest.kubeconfig import TLSMaterial, make_tls, write_kubeconfig
from flokoa_envtest.resources import Registry, ResourceInfo
from flokoa_envtest.storage import DEFAULT_WATCH_HISTORY, Storage
from flokoa_envtest.timefmt import Clock, utcnow
from flokoa_envtest.tokenrequest import (
    DEFAULT_EXPIRATION_SECONDS,
    JWKS_PATH,
    ServiceAccountIssuer,
    create_token,
)

JSON = dict[str, Any]

PATCH_TYPES = {
    "merge": MERGE_PATCH,
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
"""Short names accepted by :meth:`APIServer.patch_object`."""

IN_PROCESS_AGENT = "envtest"


def load_manifests(items: Iterable[str | Path | JSON]) -> list[JSON]:
    """Objects from YAML files (multi-document), directories of them, or dicts."""
    out: list[JSON] = []
    for item in items:
        if isinstance(item, dict):
            out.append(item)
            continue
        path = Path(item)
        files = (
            sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
            if path.is_dir()
            else [path]
        )
        for file in files:
            for doc in yaml.safe_load_all(file.read_text()):
                if isinstance(doc, dict) and doc.get("kind"):
                    out.append(doc)
    return out


class APIServer:
    """An in-memory Kubernetes API server (aiohttp) for tests, benchmarks and ``dev``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        token: str | None = None,
        crds: Iterable[str | Path | JSON] = (),
        kubeconfig_path: str | Path | None = None,
        watch_history: int = DEFAULT_WATCH_HISTORY,
        bookmark_interval: float = 60.0,
        clock: Clock = utcnow,
        seed: int | None = None,
        audit_limit: int = DEFAULT_AUDIT_LIMIT,
        service_account_issuer: str | None = None,
    ) -> None:
        """Build the server (objects can be seeded before ``start``).

        - ``host``, ``port``: where to listen (port 0: an ephemeral port, kept across outages).
        - ``tls``: HTTPS with a generated CA; a bearer token is then required.
        - ``token``: the bearer token clients must send (generated when ``tls`` and None).
        - ``crds``: CRD manifests (files, directories, dicts) installed before serving.
        - ``kubeconfig_path``: where to write the kubeconfig (default: a temporary directory).
        - ``watch_history``: changes kept per resource for watch resumption (older → 410).
        - ``bookmark_interval``: seconds between BOOKMARKs on watches that allow them.
        - ``clock``: the time source for timestamps and Table ages.
        - ``seed``: seeds the random failure injection.
        - ``audit_limit``: requests the audit log keeps (oldest dropped first; 0 keeps none),
          so a long benchmark runs in bounded memory.
        - ``service_account_issuer``: the ``iss`` of ServiceAccount tokens and their default
          audience (kube's ``--service-account-issuer``; default: the server's URL, so
          verifiers find ``/.well-known/openid-configuration`` under it).
        """
        self.host = host
        self.port = port
        self.tls = tls
        self.token = token if token is not None else (secrets.token_urlsafe(24) if tls else None)
        self.clock = clock
        self.storage = Storage(history_limit=watch_history)
        self.registry = Registry()
        for info in builtin_resources():
            self.registry.add(info)
        self.registry.add(crdlib.crd_resource())
        self.store = APIStore(self.storage, self.registry, clock=clock)
        for ns in INITIAL_NAMESPACES:
            self.store.ensure_namespace(ns)
        self.faults = Faults(seed=seed)
        self.audit = AuditLog(audit_limit)
        self._issuer_arg = service_account_issuer
        self.issuer = ServiceAccountIssuer(
            lambda: self.service_account_issuer, lambda: self.url + JWKS_PATH, clock
        )
        """Signs ServiceAccount tokens (``issuer.minted`` counts them)."""
        self.handler = APIHandler(
            store=self.store,
            registry=self.registry,
            faults=self.faults,
            audit=self.audit,
            clock=clock,
            token=self.token,
            server_address=lambda: f"{self.host}:{self.port}",
            bookmark_interval=bookmark_interval,
            control=self._control,
            issuer=self.issuer,
        )
        self.faults._drop = self.handler.drop_watches
        self.faults._outage_begin = self._outage_begin
        self.faults._outage_end = self._outage_end
        self.faults._notify = self.handler.wake_watches
        self._kubeconfig_arg = Path(kubeconfig_path) if kubeconfig_path is not None else None
        self._tmpdir: Path | None = None
        self._tls: TLSMaterial | None = None
        self._web: web.Server | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: list[asyncio.TimerHandle] = []
        self._stopped = False
        self._outage_until = 0.0  # loop time until which the listener stays closed
        self.install_crds(crds)

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server URL (``http://127.0.0.1:PORT`` or ``https://…``)."""
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def service_account_issuer(self) -> str:
        """The ``iss`` of ServiceAccount tokens (the URL unless set; the server must be started)."""
        if self._issuer_arg is not None:
            return self._issuer_arg
        if not self.port:
            raise RuntimeError("the API server's issuer is its URL: start it first")
        return self.url

    def jwks(self) -> JSON:
        """The public keys that verify ServiceAccount tokens (what ``/openid/v1/jwks`` serves)."""
        return self.issuer.jwks()

    def create_token(
        self,
        namespace: str,
        name: str,
        audiences: Iterable[str] = (),
        expiration_seconds: int = DEFAULT_EXPIRATION_SECONDS,
    ) -> str:
        """A token for ServiceAccount ``namespace/name`` exactly as the TokenRequest API mints it.

        ``audiences`` empty: the issuer. StatusError as over HTTP (404 for a missing
        ServiceAccount, 422 below 600 s). In-process: not in the audit log.
        """
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"audiences": list(audiences), "expirationSeconds": expiration_seconds},
        }
        answer = create_token(self.issuer, self.handler.get_core_object, namespace, name, body)
        return str(answer["status"]["token"])

    @property
    def kubeconfig_path(self) -> Path:
        """The kubeconfig written at start (server URL, CA, token)."""
        if self._kubeconfig_arg is not None:
            return self._kubeconfig_arg
        return self._workdir() / "kubeconfig"

    @property
    def ca_path(self) -> Path | None:
        """The CA certificate clients must trust (TLS only)."""
        return self._tls.ca_path if self._tls else None

    def _workdir(self) -> Path:
        if self._tmpdir is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="envtest-"))
        return self._tmpdir

    def _bind(self) -> socket.socket:
        try:
            family = (
                socket.AF_INET6 if ipaddress.ip_address(self.host).version == 6 else socket.AF_INET
            )
        except ValueError:
            family = socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.listen(1024)
        sock.setblocking(False)
        return sock

    async def _listen(self) -> None:
        assert self._web is not None
        sock = self._bind()
        self.port = sock.getsockname()[1]
        loop = asyncio.get_running_loop()
        ssl_context = self._tls.server_context if self._tls else None
        self._server = await loop.create_server(self._web, sock=sock, ssl=ssl_context)

    async def start(self) -> None:
        """Listen and write the kubeconfig."""
        self._stopped = False
        if self.tls and self._tls is None:
            self._tls = make_tls(self._workdir(), self.host)
        self._web = web.Server(self.handler, handler_cancellation=True, access_log=None)
        await self._listen()
        write_kubeconfig(
            self.kubeconfig_path,
            self.url,
            ca_pem=self._tls.ca_pem if self._tls else None,
            token=self.token,
        )

    def _close_connections(self) -> None:
        self.handler.drop_watches()
        if self._web is None:
            return
        for conn in self._web.connections:
            conn.force_close()
            transport = conn.transport
            if transport is not None:
                transport.abort()

    async def stop(self) -> None:
        """Close every connection and the listening socket; remove temporary files."""
        self._stopped = True  # an outage ending now must not listen again
        for timer in self._timers:
            timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
        self._close_connections()
        if self._web is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._web.shutdown(1.0), 2.0)
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _outage_begin(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self._close_connections()

    async def _outage_end(self, seconds: float) -> None:
        """Listen again once every outage begun so far is over (unless stopped meanwhile)."""
        task = asyncio.current_task()
        if task is not None:  # stop() cancels it
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        loop = asyncio.get_running_loop()
        self._outage_until = max(self._outage_until, loop.time() + seconds)
        while (remaining := self._outage_until - loop.time()) > 0:  # noqa: ASYNC110 (later outages move it)
            await asyncio.sleep(remaining)
        for _attempt in range(50):
            if self._stopped or self._server is not None:
                return  # stopped, or an overlapping outage already reopened
            try:
                await self._listen()
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError(f"could not listen again on port {self.port}")

    async def _control(self, request: web.BaseRequest, action: str) -> Any:
        """``/envtest/…`` control endpoints for servers run as a separate process."""
        if action == "faults":
            if request.method == "POST":
                values = orjson.loads(await request.read() or b"{}")
                try:
                    self.faults.update(values)
                except (ValueError, TypeError) as exc:
                    raise StatusError(
                        {"kind": "Status", "code": 400, "reason": "BadRequest", "message": str(exc)}
                    ) from None
            return self.faults.snapshot()
        if action == "drop-watches" and request.method == "POST":
            return {"dropped": self.faults.drop_watches()}
        if action == "outage" and request.method == "POST":
            seconds = float(request.query.get("seconds", "1"))
            loop = asyncio.get_running_loop()
            # begin right after this reply has been written
            handle = loop.call_later(0.1, self._spawn_outage, seconds)
            self._timers.append(handle)
            return {"outage_seconds": seconds}
        if action == "compact" and request.method == "POST":
            self.compact()
            return {"resourceVersion": str(self.storage.rv)}
        raise StatusError(
            {
                "kind": "Status",
                "code": 404,
                "reason": "NotFound",
                "message": "unknown control action",
            }
        )

    def _spawn_outage(self, seconds: float) -> None:
        task = self.faults.start_outage(seconds)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- conveniences ------------------------------------------------------------------------

    def compact(self) -> None:
        """Forget all watch history: resuming from any older resourceVersion gets 410."""
        self.storage.compact()

    def drop_watches(self) -> int:
        """Reset every open watch connection (same as ``faults.drop_watches()``)."""
        return self.faults.drop_watches()

    def install_crds(self, items: Iterable[str | Path | JSON]) -> list[str]:
        """Create (or update) CRDs from files, directories or dicts; returns their names."""
        names: list[str] = []
        info = self.registry.get(crdlib.CRD_GROUP, "v1", "customresourcedefinitions")
        assert info is not None
        for crd in load_manifests(items):
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            name = crd["metadata"]["name"]
            existing = self.storage.get(crdlib.CRD_BUCKET, name)
            opts = Options(field_manager=IN_PROCESS_AGENT, user_agent=IN_PROCESS_AGENT)
            if existing is None:
                self.store.create(info, "", crd, opts)
            else:
                body = dict(crd)
                body["metadata"] = {**crd["metadata"], "resourceVersion": str(existing.rv)}
                self.store.update(info, "", name, body, opts)
            names.append(name)
        return names

    async def wait_established(self, name: str, deadline: float = 10.0) -> None:
        """Return once CRD ``name`` is Established (TimeoutError after ``deadline`` seconds)."""
        async with asyncio.timeout(deadline):
            while True:
                record = self.storage.get(crdlib.CRD_BUCKET, name)
                if record is not None and crdlib.is_established(record.obj):
                    return
                await asyncio.sleep(0.01)

    def resource(self, api_version: str, kind: str) -> ResourceInfo:
        """The served resource of ``apiVersion``/``kind`` (LookupError if not served)."""
        info = self.registry.by_kind(api_version, kind)
        if info is None:
            raise LookupError(f"no resource serves {kind} in {api_version}")
        return info

    def _ns(self, info: ResourceInfo, namespace: str | None, obj: JSON | None = None) -> str:
        if not info.namespaced:
            return ""
        return namespace or ((obj or {}).get("metadata") or {}).get("namespace") or "default"

    def create_object(
        self, obj: JSON, *, namespace: str | None = None, dry_run: bool = False
    ) -> JSON:
        """Create through full admission, bypassing HTTP (StatusError on failure)."""
        info = self.resource(obj["apiVersion"], obj["kind"])
        opts = Options(dry_run=dry_run, field_manager=IN_PROCESS_AGENT, user_agent=IN_PROCESS_AGENT)
        result = self.store.create(info, self._ns(info, namespace, obj), obj, opts)
        return dict(orjson.loads(result.raw))

    def get_object(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> JSON:
        """The object (a copy); StatusError 404 if absent."""
        info = self.resource(api_version, kind)
        _, raw = self.store.get(info, self._ns(info, namespace), name)
        return dict(orjson.loads(raw))

    def list_objects(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[JSON]:
        """Every matching object (copies); all namespaces when ``namespace`` is None."""
        info = self.resource(api_version, kind)
        page = self.store.list_page(
            info, namespace, label_selector=label_selector, field_selector=field_selector
        )
        return [dict(orjson.loads(raw)) for _, raw in page.items]

    def update_object(self, obj: JSON, *, subresource: str = "") -> JSON:
        """PUT semantics (resourceVersion checked when set) through full admission."""
        info = self.resource(obj["apiVersion"], obj["kind"])
        opts = Options(field_manager=IN_PROCESS_AGENT, user_agent=IN_PROCESS_AGENT)
        ns = self._ns(info, None, obj)
        result = self.store.update(
            info, ns, obj["metadata"]["name"], obj, opts, subresource=subresource
        )
        return dict(orjson.loads(result.raw))

    def patch_object(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: str = "merge",
        subresource: str = "",
    ) -> JSON:
        """PATCH (``merge``, ``json``, ``strategic`` or ``apply``) through full admission."""
        info = self.resource(api_version, kind)
        opts = Options(field_manager=IN_PROCESS_AGENT, user_agent=IN_PROCESS_AGENT)
        result = self.store.patch(
            info,
            self._ns(info, namespace),
            name,
            PATCH_TYPES.get(patch_type, patch_type),
            patch,
            opts,
            subresource=subresource,
        )
        return dict(orjson.loads(result.raw))

    def delete_object(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> JSON:
        """DELETE (finalizers honoured); returns the object or the Success Status."""
        info = self.resource(api_version, kind)
        result = self.store.delete(info, self._ns(info, namespace), name)
        return dict(orjson.loads(result.raw))
