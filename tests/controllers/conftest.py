"""The controllers' end-to-end harness: cluster + fake providers + a running Manager.

``harness`` (or ``make_harness(**options)`` for custom settings) gives a :class:`Harness`:
the ``cluster`` fixture's API server (envtest, or the real cluster of
``$FLOKOA_TEST_KUBECONFIG``), every fake provider over plain HTTP plus an OpenAI-compatible
fake over HTTPS (certificate from ``harness.ca``), a fresh namespace, and the operator's
Manager with ``setup_controllers`` running in the background. Objects are built with the
helpers below; conditions are awaited from the controller's own informer cache (no API
calls, so the audit log only shows what the controllers did).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme
from aiohttp import web
from flokoa_envtest import APIServer
from flokoa_envtest.dev import DEV_ALLOWED_DESTINATIONS
from flokoa_envtest.fakes import FakeOpenAI, FakeProviders
from flokoa_envtest.fakes.google_sts import provider_name
from flokoa_envtest.testing import (
    Cluster,
    b64,
    closed_port,
    poll_until,
    secret_manifest,
    serve_local,
)
from prometheus_client import REGISTRY

from flokoa_controller.controllers.resources import MODELPROVIDERS, MODELS
from flokoa_controller.controllers.setup import (
    Controllers,
    ControllerSettings,
    setup_controllers,
)
from flokoa_controller.kube.client import KubeClient
from flokoa_controller.kube.config import load_kubeconfig
from flokoa_controller.kube.errors import AlreadyExists, NotFound
from flokoa_controller.kube.resources import EVENTS, NAMESPACES, SECRETS
from flokoa_controller.providers.identity import IdentitySettings
from flokoa_controller.runtime.manager import Manager
from flokoa_controller.runtime.options import ManagerOptions

TEST_AGENT = "flokoa-controllers-test"
"""User-Agent of the test's own API client (the controller's requests are the others)."""


@pytest.fixture(autouse=True)
def _hermetic(hermetic_env: None) -> None:
    """Every test here runs with the root conftest's hermetic environment."""


def ready_condition(obj: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The Ready condition of a cached object (None if absent)."""
    if obj is None:
        return None
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition
    return None


def condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    """The condition ``type_`` of ``obj`` (AssertionError if absent)."""
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if entry.get("type") == type_:
            return entry
    raise AssertionError(f"no {type_} condition in {obj.get('status')}")


class StatusServer:
    """A tiny HTTP(S) server answering every request with one status (or never answering)."""

    def __init__(self, status: int | None, *, tls: trustme.CA | None = None) -> None:
        self.status = status
        self.tls = tls
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self._stop = asyncio.Event()
        self.port = 0

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.status is None:
            await self._stop.wait()  # a black hole: the client times out
            return web.Response(status=503)
        return web.json_response(
            {"error": {"message": f"forced {self.status}"}}, status=self.status
        )

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> StatusServer:
        ssl_ctx = None
        if self.tls is not None:
            import ssl

            ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls.issue_cert("127.0.0.1").configure_cert(ssl_ctx)
        self._runner, self.port = await serve_local(
            self._handle, ssl_context=ssl_ctx, shutdown_timeout=0.1
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class Harness:
    """One running operator against a cluster, with fakes and a namespace of its own."""

    cluster: Cluster
    client: KubeClient
    namespace: str
    fakes: FakeProviders
    tls_openai: FakeOpenAI
    ca: trustme.CA
    manager: Manager
    controllers: Controllers
    options: ManagerOptions
    setup_args: dict[str, Any] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    created_namespaces: list[str] = field(default_factory=list)

    @property
    def api(self) -> APIServer | None:
        """The envtest server (None on a real cluster)."""
        return self.cluster.api

    # -- objects ------------------------------------------------------------------------

    async def put_secret(
        self, name: str, data: Mapping[str, str | bytes], namespace: str | None = None
    ) -> dict[str, Any]:
        """Create or replace the Secret ``name`` with ``data``."""
        ns = namespace or self.namespace
        body = secret_manifest(name, ns, data)
        try:
            return await self.client.create(SECRETS, body, ns)
        except AlreadyExists:
            current = await self.client.get(SECRETS, name, ns)
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return await self.client.update(SECRETS, body, ns)

    async def put_provider(self, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Create the ModelProvider ``name`` (or replace its spec)."""
        body = {
            "apiVersion": "agent.flokoa.ai/v1alpha1",
            "kind": "ModelProvider",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": dict(spec),
        }
        try:
            return await self.client.create(MODELPROVIDERS, body, self.namespace)
        except AlreadyExists:
            return await self.client.patch(
                MODELPROVIDERS, name, {"spec": dict(spec)}, self.namespace
            )

    async def put_model(self, name: str, provider: str, model: str) -> dict[str, Any]:
        """Create the Model ``name``."""
        body = {
            "apiVersion": "agent.flokoa.ai/v1alpha1",
            "kind": "Model",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"model": model, "providerRef": {"name": provider}},
        }
        return await self.client.create(MODELS, body, self.namespace)

    # -- waiting ------------------------------------------------------------------------

    def provider(self, name: str) -> dict[str, Any] | None:
        """The cached ModelProvider ``name``."""
        return self.controllers.providers.store.get_by(name, self.namespace)

    def model(self, name: str) -> dict[str, Any] | None:
        """The cached Model ``name``."""
        return self.controllers.models.store.get_by(name, self.namespace)

    async def wait_for(
        self, check: Callable[[], Any], *, within: float = 20.0, what: str = "condition"
    ) -> Any:
        """Poll ``check()`` until it returns something truthy (AssertionError on timeout)."""
        return await poll_until(check, within=within, what=what, interval=0.02)

    async def wait_reason(
        self,
        kind: str,
        name: str,
        reason: str,
        *,
        status: str | None = None,
        within: float = 20.0,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """Wait until the object's Ready condition has ``reason`` (and ``status``)."""
        get = self.provider if kind == "provider" else self.model

        def check() -> dict[str, Any] | None:
            obj = get(name)
            ready = ready_condition(obj)
            if obj is None or ready is None or ready.get("reason") != reason:
                return None
            if status is not None and ready.get("status") != status:
                return None
            meta = obj["metadata"]
            if (obj.get("status") or {}).get("observedGeneration") != meta.get("generation"):
                return None
            if where is not None and not where(obj):
                return None
            return obj

        try:
            return await self.wait_for(check, within=within, what=f"{kind} {name} {reason}")
        except AssertionError:
            obj = get(name)
            raise AssertionError(
                f"{kind} {name}: wanted Ready reason {reason}, have "
                f"{json.dumps((obj or {}).get('status'), indent=1)}"
            ) from None

    async def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Events in the namespace (about ``name`` if given)."""
        items = (await self.client.list(EVENTS, self.namespace))["items"]
        return [e for e in items if name is None or e["involvedObject"]["name"] == name]

    async def wait_event(self, name: str, reason: str, within: float = 10.0) -> dict[str, Any]:
        """Wait for an event with ``reason`` about ``name`` (Events are written async)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            await self.controllers.recorder.flush()
            found = [e for e in await self.events(name) if e["reason"] == reason]
            if found:
                return found[0]
            if loop.time() > deadline:
                raise AssertionError(f"no {reason} event about {name}")
            await asyncio.sleep(0.05)

    def reconciles(self, controller: str) -> float:
        """Reconciles run so far by ``controller`` (every result), from the metrics."""
        return sum(
            REGISTRY.get_sample_value(
                "controller_runtime_reconcile_total", {"controller": controller, "result": r}
            )
            or 0.0
            for r in ("success", "error", "requeue", "requeue_after")
        )

    def idle(self) -> bool:
        """Whether neither controller has queued or running work."""
        return all(
            len(c.queue) == 0 and c.queue.processing() == 0
            for c in (self.controllers.provider_controller, self.controllers.model_controller)
        )

    async def settle(self, minimum: dict[str, float] | None = None) -> None:
        """Wait until the controllers are idle (and ran at least ``minimum`` reconciles)."""
        minimum = minimum or {}
        await self.wait_for(
            lambda: self.idle() and all(self.reconciles(c) >= n for c, n in minimum.items()),
            what="idle controllers",
        )

    async def restart(self, while_stopped: Callable[[], Awaitable[None]] | None = None) -> None:
        """Stop the Manager and start a new one (fresh caches and reconcilers).

        ``while_stopped`` runs between the two (e.g. what a previous leader did last).
        """
        assert self.task is not None
        self.manager.stop()
        await asyncio.wait_for(self.task, 15)
        if while_stopped is not None:
            await while_stopped()
        self.manager = Manager(self.manager.client, self.options)
        self.controllers = setup_controllers(self.manager, self.options, **self.setup_args)
        self.task = asyncio.create_task(self.manager.run())
        await self.wait_for(lambda: self.manager.ready, within=30, what="caches")

    def model_checks(self) -> int:
        """Model checks the fake OpenAI endpoint received."""
        return len(self.fakes.openai.requests_to("/v1/models/"))

    def provider_probes(self) -> int:
        """Provider probes (model lists) the fake OpenAI endpoint received."""
        return len([r for r in self.fakes.openai.requests if r.path == "/v1/models"])

    def write_counts(self) -> tuple[int, int]:
        """The controller's status writes so far: (ModelProviders, Models)."""
        return len(self.status_writes()), len(self.status_writes("models"))

    def status_writes(self, resource: str = "modelproviders") -> list[Any]:
        """Status writes the controller made (envtest audit; the test's own are left out)."""
        assert self.api is not None
        return [
            e
            for e in self.api.audit.filter(resource=resource, subresource="status")
            if e.is_write and not e.user_agent.startswith(TEST_AGENT)
        ]

    # -- helpers for tests (conftest is not importable under --import-mode=importlib) ------

    ready_condition = staticmethod(ready_condition)
    condition = staticmethod(condition)
    b64 = staticmethod(b64)
    closed_port = staticmethod(closed_port)
    StatusServer = StatusServer

    # -- specs ---------------------------------------------------------------------------

    def openai_spec(self, secret: str = "openai-key", **openai: Any) -> dict[str, Any]:
        """An OpenAI provider on the plain fake."""
        return {
            "apiKeySecretRef": {"name": secret},
            "openai": {"baseURL": self.fakes.openai.base_url, "timeoutSeconds": 5, **openai},
        }


async def _start(
    cluster: Cluster,
    *,
    settings: ControllerSettings | None = None,
    all_namespaces: bool = False,
    also_watch: tuple[str, ...] = (),
    allow_loopback: bool = True,
    **setup: Any,
) -> AsyncIterator[Harness]:
    settings = settings or ControllerSettings()
    if allow_loopback:  # the fakes listen on 127.0.0.1, which the default policy denies
        allowed = (*settings.allow_destinations, *DEV_ALLOWED_DESTINATIONS)
        settings = dataclasses.replace(settings, allow_destinations=allowed)
    ca = trustme.CA()
    config = load_kubeconfig(str(cluster.kubeconfig_path))
    test_config = dataclasses.replace(config, user_agent=TEST_AGENT)
    namespace = f"ctl-{uuid.uuid4().hex[:8]}"
    async with (
        FakeProviders() as fakes,
        FakeOpenAI(tls=ca) as tls_openai,
        KubeClient(test_config) as client,
        KubeClient(config) as operator_client,
    ):
        await client.create(
            NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
        options = ManagerOptions(
            namespaces=() if all_namespaces else (namespace, *also_watch),
            metrics_bind_address="0",
            health_probe_bind_address="0",
            install_signal_handlers=False,
            graceful_shutdown_timeout=5.0,
        )
        manager = Manager(operator_client, options)
        if settings.identity == IdentitySettings():  # what an administrator would allow
            settings = dataclasses.replace(settings, identity=fake_identity_settings(fakes))
        setup_args = {"settings": settings, **setup}
        controllers = setup_controllers(manager, options, **setup_args)
        harness = Harness(
            cluster,
            client,
            namespace,
            fakes,
            tls_openai,
            ca,
            manager,
            controllers,
            options,
            setup_args=setup_args,
        )
        harness.task = asyncio.create_task(manager.run())
        try:
            await harness.wait_for(
                lambda: manager.ready or harness.task.done(), within=30, what="caches"
            )
            if harness.task.done():
                harness.task.result()
            yield harness
        finally:
            harness.manager.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(harness.task, 15)
            if cluster.api is None:  # a real cluster: clean up after ourselves
                for ns in [namespace, *harness.created_namespaces]:
                    await _delete_namespace(client, ns)


async def _delete_namespace(client: KubeClient, namespace: str) -> None:
    """Delete what a test made in ``namespace``, then the namespace, without waiting.

    The objects go first and one by one: nothing waits for (or counts on) the namespace
    controller, which a bare kube-apiserver lacks and a real cluster may run slowly, so an
    operator watching every namespace finds nothing of ours left to reconcile even while
    the namespace stays Terminating.
    """
    for rt in (MODELS, MODELPROVIDERS, SECRETS):
        with contextlib.suppress(NotFound):
            for item in (await client.list(rt, namespace))["items"]:
                with contextlib.suppress(NotFound):
                    await client.delete(rt, item["metadata"]["name"], namespace)
    with contextlib.suppress(NotFound):
        await client.delete(NAMESPACES, namespace)


def fake_identity_settings(fakes: FakeProviders, **kw: Any) -> IdentitySettings:
    """Identity settings for the fakes: their token endpoint allowed, their loopback hosts
    allowed to receive identity-derived credentials (as an administrator would by flag)."""
    kw.setdefault("google_token_uris", (fakes.google_oauth.token_uri,))
    kw.setdefault("allowed_hosts", ("127.0.0.1", "localhost"))
    kw.setdefault("google_sts_url", fakes.google_sts.token_url)
    kw.setdefault("google_iam_credentials_url", fakes.iam_credentials.url)
    kw.setdefault("google_workload_identity_audience", GOOGLE_POOL_PROVIDER)
    kw.setdefault("azure_authority_host", fakes.entra.url)
    return IdentitySettings(**kw)


GOOGLE_POOL_PROVIDER = provider_name("123456789012", "flokoa-pool", "envtest")
"""The workload identity pool provider the harness's administrator configured."""


MakeHarness = Callable[..., contextlib.AbstractAsyncContextManager[Harness]]


@pytest.fixture
def make_harness(cluster: Cluster) -> MakeHarness:
    """``async with make_harness(settings=..., all_namespaces=..., allow_loopback=...) as h:``
    (``allow_loopback``, default True, adds ``DEV_ALLOWED_DESTINATIONS`` to the settings'
    ``allow_destinations``, as ``flokoa-controller dev`` does).

    ``also_watch=(ns, ...)``: more namespaces the operator watches besides its own (the test
    creates them and lists them in ``h.created_namespaces``). Prefer it to ``all_namespaces``
    when a test counts what the operator does: on a shared real cluster every other
    namespace's objects would count too."""

    def make(**kwargs: Any) -> contextlib.AbstractAsyncContextManager[Harness]:
        return contextlib.asynccontextmanager(_start)(cluster, **kwargs)

    return make


@pytest.fixture
async def harness(make_harness: MakeHarness) -> AsyncIterator[Harness]:
    """A running operator with default settings."""
    async with make_harness() as h:
        yield h
