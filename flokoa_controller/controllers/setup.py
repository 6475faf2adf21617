"""Wire the ModelProvider and Model controllers into a Manager (the ``run`` setup plugin).

:func:`setup_controllers` creates, on the manager:

- three shared informers: ModelProviders, Models and Secrets (Secrets transformed to
  per-key digests by ``secret_digest.secret_to_digest``, the transform handed to the
  runtime, whose floor strips any payload left: the cache never holds one; Helm release Secrets,
  ``SECRET_FIELD_SELECTOR``, are not even listed or watched);
- two indexes: ModelProviders by the Secrets they reference (``namespace/name``), Models by
  the ModelProvider they reference (``namespace/name``);
- the ``modelprovider`` controller, watching ModelProviders and — through the index — the
  Secrets they reference (a change to any other Secret maps to no request, so costs no
  work);
- the ``model`` controller, watching Models and — through the index — their ModelProviders
  (every provider status change re-reconciles its Models);
- the shared probe HTTP client (with the administrator's destination policy:
  ``--deny-destinations``/``--allow-destinations`` plus the built-in deny list and the
  Kubernetes API server's own addresses), the event recorder and the readiness gauges
  (exported by the leader only), started and stopped with the manager;
- the probes in flight (:class:`.InFlightProbes`): both reconcilers hand their probes to
  it, so probes run outside the reconcile workers, capped globally and per namespace and
  served round-robin across namespaces; it lives while leading (a leader-only runnable)
  and cancels every probe when the controllers stop.

:func:`add_flags` adds the controllers' flags to ``flokoa-controller run``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from flokoa_controller.controllers.identity import (
    AmbientPolicy,
    KubeServiceAccountTokens,
    TokenRequestClient,
)
from flokoa_controller.controllers.metrics import (
    DeprecationCollector,
    ReadinessCollector,
    register_collector,
)
from flokoa_controller.controllers.model import ModelReconciler
from flokoa_controller.controllers.modelprovider import ModelProviderReconciler
from flokoa_controller.controllers.probes_inflight import (
    DEFAULT_MAX_CONCURRENT_PROBES,
    DEFAULT_MAX_CONCURRENT_PROBES_PER_NAMESPACE,
    InFlightProbes,
)
from flokoa_controller.controllers.probing import (
    DEFAULT_MAX_PROBE_TIMEOUT,
    ModelProbe,
    Prober,
    ProviderProbe,
    SecretReader,
)
from flokoa_controller.controllers.resources import MODELPROVIDERS, MODELS
from flokoa_controller.controllers.schedule import DEFAULT_REVALIDATE_INTERVAL, Schedule
from flokoa_controller.controllers.scheduled_probe import utc_now
from flokoa_controller.controllers.secret_digest import secret_to_digest
from flokoa_controller.controllers.status import StatusPatcher, StatusWriter
from flokoa_controller.kube.resources import SECRETS
from flokoa_controller.providers import probe_model as default_probe_model
from flokoa_controller.providers import probe_provider as default_probe_provider
from flokoa_controller.providers.destinations import (
    ALLOW_FLAG,
    DEFAULT_DENIED_DESTINATIONS,
    DENY_FLAG,
    DestinationPolicy,
    kubernetes_api_hosts,
    parse_entries,
)
from flokoa_controller.providers.http import ProbeHTTP
from flokoa_controller.providers.identity import (
    ENTRA_AUTHORITY,
    GOOGLE_IAM_CREDENTIALS_URL,
    GOOGLE_STS_URL,
    GOOGLE_TOKEN_URI,
    IdentityBroker,
    IdentitySettings,
)
from flokoa_controller.runtime.controller import Controller, Request
from flokoa_controller.runtime.events import EventClient, EventRecorder
from flokoa_controller.runtime.informer import Informer
from flokoa_controller.runtime.manager import Manager, ManagerClient
from flokoa_controller.runtime.options import ManagerOptions, add_env_flag, parse_duration
from flokoa_controller.runtime.predicate import Predicate
from flokoa_controller.runtime.store import key_of

__all__ = [
    "MODELS_BY_PROVIDER",
    "PROVIDERS_BY_SECRET",
    "SECRET_FIELD_SELECTOR",
    "ControllerSettings",
    "Controllers",
    "add_flags",
    "models_by_provider",
    "providers_by_secret",
    "setup_controllers",
]

log = logging.getLogger(__name__)

PROVIDERS_BY_SECRET = "secrets"
"""Index of the ModelProvider store: ``namespace/secret-name`` of every referenced Secret."""
MODELS_BY_PROVIDER = "provider"
"""Index of the Model store: ``namespace/provider-name`` of the referenced ModelProvider."""

SECRET_FIELD_SELECTOR = "type!=helm.sh/release.v1"
"""Field selector of the Secret informer: every Secret but Helm's release records.

Helm keeps each release revision in a Secret of this type (up to ~1 MB of compressed
manifests each, often many per namespace). Watching them would download and digest all of
them for nothing, so a ModelProvider cannot reference a Secret of this type (it reports
``SecretNotFound``); see ``docs/troubleshooting.md``.
"""

EVENT_COMPONENT = "flokoa-controller"
"""``source.component`` of the events the controllers record."""


def _name_at(obj: object, *path: str) -> str | None:
    for part in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj if isinstance(obj, str) and obj else None


def providers_by_secret(obj: dict[str, Any]) -> list[str]:
    """Index function: the Secrets a ModelProvider references, as ``namespace/name``.

    Reads the raw spec (so even an invalid spec is indexed and re-reconciled when its
    Secret appears); every reference is in the provider's own namespace.
    """
    namespace = (obj.get("metadata") or {}).get("namespace") or ""
    spec = obj.get("spec")
    names = [
        _name_at(spec, "apiKeySecretRef", "name"),
        _name_at(spec, "google", "vertex", "serviceAccountKeySecretRef", "name"),
        _name_at(spec, "bedrock", "credentialsSecretRef", "name"),
        _name_at(spec, "tls", "caSecretRef", "name"),
    ]
    return [f"{namespace}/{name}" for name in dict.fromkeys(n for n in names if n)]


def models_by_provider(obj: dict[str, Any]) -> list[str]:
    """Index function: the ModelProvider a Model references, as ``namespace/name``."""
    namespace = (obj.get("metadata") or {}).get("namespace") or ""
    name = _name_at(obj.get("spec"), "providerRef", "name")
    return [f"{namespace}/{name}"] if name else []


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _positive_duration(text: str) -> float:
    value = parse_duration(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be longer than zero: {text!r}")
    return value


def _destinations(text: str) -> str:
    """Validate a destination entry (or a comma-separated list of them), returned unchanged."""
    try:
        parse_entries(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Add the controllers' flags (each also settable as ``FLOKOA_<FLAG>``)."""
    group = parser.add_argument_group("ModelProvider and Model controllers")
    add_env_flag(
        group,
        "--provider-revalidate-interval",
        type=_positive_duration,
        default="10m",
        help="Re-probe an unchanged ModelProvider (and re-check its Models) this often, plus "
        "up to 10%% jitter. Changes to the spec or a referenced Secret are probed at once.",
    )
    add_env_flag(
        group,
        "--probe-concurrency-per-host",
        type=_positive_int,
        default="8",
        help="Most probe requests in flight from one namespace to one destination (scheme, "
        "host, port).",
    )
    add_env_flag(
        group,
        "--probe-connect-timeout",
        type=_positive_duration,
        default="10s",
        help="Bound on the connect phase (TCP, TLS, proxy CONNECT) of a probe request; the "
        "whole request is bounded by the provider's timeoutSeconds.",
    )
    add_env_flag(
        group,
        "--max-probe-timeout",
        type=_positive_duration,
        default="30s",
        help="Cap on the timeoutSeconds of ModelProviders and Models (set by namespace "
        "users): one deadline for a whole probe or model check, token exchange and "
        "retries included.",
    )
    add_env_flag(
        group,
        "--max-concurrent-probes",
        type=_positive_int,
        default=str(DEFAULT_MAX_CONCURRENT_PROBES),
        help="Most probes and model checks running at once; they run outside the "
        "reconcile workers, so a slow endpoint holds a probe slot, never a worker.",
    )
    add_env_flag(
        group,
        "--max-concurrent-probes-per-namespace",
        type=_positive_int,
        default=str(DEFAULT_MAX_CONCURRENT_PROBES_PER_NAMESPACE),
        help="Most probes and model checks running at once for one namespace; free slots "
        "go to the waiting namespaces in turn (round-robin), so one namespace cannot "
        "take the capacity of the others.",
    )
    add_env_flag(
        group,
        DENY_FLAG,
        type=_destinations,
        repeatable=True,
        default=[],
        help="Destinations (CIDRs, addresses, host names, *.suffix patterns) probes and token "
        "requests must never connect to, checked on the resolved address at connect time. "
        "Added to the built-in list, which always applies: "
        + ", ".join(DEFAULT_DENIED_DESTINATIONS).replace("%", "%%")
        + " and the Kubernetes API server's own addresses. Private ranges stay allowed.",
    )
    add_env_flag(
        group,
        ALLOW_FLAG,
        type=_destinations,
        repeatable=True,
        default=[],
        help="Destinations allowed even when a deny entry (built-in or --deny-destinations) "
        "matches, e.g. 127.0.0.0/8 for local fakes or 10.20.0.0/16 for a gateway subnet.",
    )
    add_identity_flags(parser)


def add_identity_flags(parser: argparse.ArgumentParser) -> None:
    """The cloud-identity flags (``docs/security.md``: tenants never borrow the operator's
    identity unless the administrator says so)."""
    group = parser.add_argument_group("Cloud identity")
    add_env_flag(
        group,
        "--ambient-identity-namespaces",
        repeatable=True,
        help="Namespaces whose ModelProviders may use the operator's own cloud identity "
        "(botocore's default chain, Google application default credentials) when they name "
        "no credential. Elsewhere such a provider is Ready=False AmbientIdentityNotAllowed "
        "and nothing is sent. Repeat or comma-separate; none by default.",
    )
    add_env_flag(
        group,
        "--google-workload-identity-audience",
        default="",
        help="The workload identity pool provider serviceAccountName tokens are exchanged "
        "for at Google STS (//iam.googleapis.com/projects/N/locations/global/"
        "workloadIdentityPools/POOL/providers/PROVIDER). Unset: Vertex AI with "
        "serviceAccountName is WorkloadIdentityNotConfigured.",
    )
    add_env_flag(
        group,
        "--google-token-audience",
        default="",
        help="Audience of the ServiceAccount token presented to Google STS. Unset: "
        "https: followed by the pool provider (Google's default allowed audience).",
    )
    add_env_flag(
        group,
        "--google-sts-endpoint",
        default=GOOGLE_STS_URL,
        help="Google STS token-exchange endpoint.",
    )
    add_env_flag(
        group,
        "--google-iam-credentials-endpoint",
        default=GOOGLE_IAM_CREDENTIALS_URL,
        help="IAM Service Account Credentials API root (impersonation).",
    )
    add_env_flag(
        group,
        "--google-token-uris",
        repeatable=True,
        help="Service-account key token_uri values allowed besides "
        f"{GOOGLE_TOKEN_URI} (exact URLs). A key naming another is TokenEndpointNotAllowed "
        "and nothing is sent.",
    )
    add_env_flag(
        group,
        "--azure-authority-host",
        default=ENTRA_AUTHORITY,
        help="Entra ID authority for Azure workload identity (sovereign clouds: e.g. "
        "https://login.microsoftonline.us).",
    )
    add_env_flag(
        group,
        "--azure-tenant-id",
        default="",
        help="Entra tenant used when a ServiceAccount has no azure.workload.identity/tenant-id "
        "annotation. Unset: the annotation is required.",
    )
    add_env_flag(
        group,
        "--identity-allowed-hosts",
        repeatable=True,
        help="Hosts (name or *.domain) that may receive credentials obtained from a "
        "ServiceAccount or the operator's identity, besides the provider's own API hosts "
        "(e.g. a private gateway). Repeat or comma-separate; none by default.",
    )


def identity_settings_from_args(args: argparse.Namespace) -> IdentitySettings:
    """The :class:`IdentitySettings` of the parsed flags (defaults for missing ones)."""
    default = IdentitySettings()

    def listed(name: str) -> tuple[str, ...]:
        value = getattr(args, name, None) or ()
        items = [value] if isinstance(value, str) else list(value)
        return tuple(p.strip() for item in items for p in str(item).split(",") if p.strip())

    return IdentitySettings(
        google_token_uris=listed("google_token_uris"),
        google_workload_identity_audience=getattr(args, "google_workload_identity_audience", None)
        or None,
        google_token_audience=getattr(args, "google_token_audience", None) or None,
        google_sts_url=getattr(args, "google_sts_endpoint", None) or default.google_sts_url,
        google_iam_credentials_url=getattr(args, "google_iam_credentials_endpoint", None)
        or default.google_iam_credentials_url,
        azure_authority_host=getattr(args, "azure_authority_host", None)
        or default.azure_authority_host,
        azure_tenant_id=getattr(args, "azure_tenant_id", None) or None,
        allowed_hosts=listed("identity_allowed_hosts"),
    )


def _flag(args: argparse.Namespace, name: str, default: object) -> Any:
    """The flag ``name`` from ``args`` (as argparse parsed it), or ``default`` when it is
    missing or empty."""
    return getattr(args, name, None) or default


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    """The controllers' own settings (from :func:`add_flags`' flags)."""

    revalidate_interval: float = DEFAULT_REVALIDATE_INTERVAL
    """Seconds between re-validations of an unchanged provider."""
    probe_concurrency_per_host: int = 8
    """Probe requests in flight per destination."""
    probe_connect_timeout: float = 10.0
    """Seconds the connect phase of a probe request may take."""
    ambient_identity_namespaces: tuple[str, ...] = ()
    """Namespaces allowed to use the operator's own cloud identity."""
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    """Token endpoints, workload identity pool, allowed hosts."""
    max_probe_timeout: float = DEFAULT_MAX_PROBE_TIMEOUT
    """Cap on the tenant's ``timeoutSeconds``: the deadline of a whole probe."""
    max_concurrent_probes: int = DEFAULT_MAX_CONCURRENT_PROBES
    """Probes running at once (outside the reconcile workers)."""
    max_concurrent_probes_per_namespace: int = DEFAULT_MAX_CONCURRENT_PROBES_PER_NAMESPACE
    """Of them, at most this many for one namespace."""
    deny_destinations: tuple[str, ...] = ()
    """Destinations denied besides the built-in list (``--deny-destinations`` entries)."""
    allow_destinations: tuple[str, ...] = ()
    """Destinations allowed despite a deny entry (``--allow-destinations`` entries)."""

    def destination_policy(self, kubernetes_server: str | None = None) -> DestinationPolicy:
        """The probes' destination policy: the built-in deny list, these settings, and the
        API server's hosts (``kubernetes_server``, the ClusterConfig URL, plus the
        in-cluster ``KUBERNETES_SERVICE_HOST``)."""
        return DestinationPolicy.build(
            deny=self.deny_destinations,
            allow=self.allow_destinations,
            kubernetes_api=kubernetes_api_hosts(kubernetes_server),
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ControllerSettings:
        """Read the settings from parsed flags (missing flags keep their defaults)."""
        default = cls()
        return cls(
            revalidate_interval=float(
                _flag(args, "provider_revalidate_interval", default.revalidate_interval)
            ),
            probe_concurrency_per_host=int(
                _flag(args, "probe_concurrency_per_host", default.probe_concurrency_per_host)
            ),
            probe_connect_timeout=float(
                _flag(args, "probe_connect_timeout", default.probe_connect_timeout)
            ),
            ambient_identity_namespaces=tuple(
                p.strip()
                for item in getattr(args, "ambient_identity_namespaces", None) or ()
                for p in str(item).split(",")
                if p.strip()
            ),
            identity=identity_settings_from_args(args),
            max_probe_timeout=float(_flag(args, "max_probe_timeout", default.max_probe_timeout)),
            max_concurrent_probes=int(
                _flag(args, "max_concurrent_probes", default.max_concurrent_probes)
            ),
            max_concurrent_probes_per_namespace=int(
                _flag(
                    args,
                    "max_concurrent_probes_per_namespace",
                    default.max_concurrent_probes_per_namespace,
                )
            ),
            deny_destinations=tuple(_flag(args, "deny_destinations", default.deny_destinations)),
            allow_destinations=tuple(_flag(args, "allow_destinations", default.allow_destinations)),
        )


@dataclass(frozen=True)
class Controllers:
    """What :func:`setup_controllers` built (tests and ``dev`` look inside)."""

    providers: Informer
    """The ModelProvider informer."""
    models: Informer
    """The Model informer."""
    secrets: Informer
    """The Secret informer (digests only)."""
    provider_controller: Controller
    """The ``modelprovider`` controller."""
    model_controller: Controller
    """The ``model`` controller."""
    provider_reconciler: ModelProviderReconciler
    """Its reconciler."""
    model_reconciler: ModelReconciler
    """Its reconciler."""
    http: ProbeHTTP
    """The shared probe HTTP client."""
    recorder: EventRecorder
    """The event recorder."""
    probes: InFlightProbes
    """The probes in flight (shared by both reconcilers)."""


class ControllerClient(
    ManagerClient, SecretReader, StatusPatcher, TokenRequestClient, EventClient, Protocol
):
    """Every API call the controllers make, on top of the manager's (``KubeClient``
    provides them all)."""


_ClientT = TypeVar("_ClientT", bound=ControllerClient)


def setup_controllers(
    manager: Manager[_ClientT],
    options: ManagerOptions,
    *,
    settings: ControllerSettings | None = None,
    http: ProbeHTTP | None = None,
    now: Callable[[], datetime] = utc_now,
    probe_provider: ProviderProbe = default_probe_provider,
    probe_model: ModelProbe = default_probe_model,
) -> Controllers:
    """Create the informers, indexes, controllers and shared clients on ``manager``.

    ``settings`` default to those in ``options.args``. ``http``, ``now`` and the probe
    functions can be replaced (tests); an ``http`` passed in is not closed at shutdown
    (give it an ``IdentityBroker`` with ``KubeServiceAccountTokens`` for ServiceAccount
    identities).
    """
    settings = settings or ControllerSettings.from_args(options.args)
    schedule = Schedule(interval=settings.revalidate_interval)
    client = manager.client

    providers = manager.informer(
        MODELPROVIDERS, indexers={PROVIDERS_BY_SECRET: providers_by_secret}
    )
    models = manager.informer(MODELS, indexers={MODELS_BY_PROVIDER: models_by_provider})
    secrets = manager.informer(
        SECRETS, transform=secret_to_digest, field_selector=SECRET_FIELD_SELECTOR
    )

    own_http = http is None
    broker = IdentityBroker(settings.identity, KubeServiceAccountTokens(client))
    config = getattr(manager.client, "config", None)
    probe_http = http or ProbeHTTP(
        max_per_host=settings.probe_concurrency_per_host,
        connect_timeout=settings.probe_connect_timeout,
        policy=settings.destination_policy(getattr(config, "server", None)),
        identity=broker,
    )
    recorder = EventRecorder(client, EVENT_COMPONENT)
    prober = Prober(
        client,
        probe_http,
        max_timeout=settings.max_probe_timeout,
        probe_provider=probe_provider,
        probe_model=probe_model,
        ambient=AmbientPolicy.of(settings.ambient_identity_namespaces),
    )
    probes = InFlightProbes(
        max_in_flight=settings.max_concurrent_probes,
        max_per_namespace=settings.max_concurrent_probes_per_namespace,
        grace_period=options.graceful_shutdown_timeout,
    )

    def holds_leadership() -> bool:
        return manager.holds_leadership

    provider_writer = StatusWriter(client, MODELPROVIDERS, fence=holds_leadership)
    model_writer = StatusWriter(client, MODELS, fence=holds_leadership)
    providers.add_handler(provider_writer.handler)
    models.add_handler(model_writer.handler)

    provider_reconciler = ModelProviderReconciler(
        providers=providers.store,
        secrets=secrets.store,
        writer=provider_writer,
        prober=prober,
        recorder=recorder,
        schedule=schedule,
        now=now,
        probes=probes,
    )
    model_reconciler = ModelReconciler(
        models=models.store,
        providers=providers.store,
        writer=model_writer,
        prober=prober,
        recorder=recorder,
        schedule=schedule,
        now=now,
        latest_provider=provider_writer.latest,
        probes=probes,
    )
    provider_controller = manager.new_controller("modelprovider", provider_reconciler)
    model_controller = manager.new_controller("model", model_reconciler)
    # a finished probe brings its object back to the workers
    provider_reconciler.requeue = provider_controller.enqueue
    model_reconciler.requeue = model_controller.enqueue

    def providers_of_secret(secret: dict[str, Any]) -> list[Request]:
        keys = providers.store.index_keys(PROVIDERS_BY_SECRET, key_of(secret))
        return [_request(key) for key in sorted(keys)]

    def models_of_provider(provider: dict[str, Any]) -> list[Request]:
        keys = models.store.index_keys(MODELS_BY_PROVIDER, key_of(provider))
        return [_request(key) for key in sorted(keys)]

    # the watch's echo of a controller's own status write is not reconciled again
    provider_writer.requeue = lambda key: provider_controller.enqueue(_request(key))
    model_writer.requeue = lambda key: model_controller.enqueue(_request(key))
    provider_controller.watch(providers, predicates=[_not_own_write(provider_writer)])
    provider_controller.watch(secrets, providers_of_secret)
    model_controller.watch(models, predicates=[_not_own_write(model_writer)])
    model_controller.watch(providers, models_of_provider)

    def leading() -> bool:
        return manager.is_leader

    async def lifecycle() -> None:
        """Serve the readiness gauges (reported by the leader only: standbys hold the same
        caches, and one exporter lets ``sum`` count each object once); close the shared
        clients at shutdown."""
        unregister = []
        for collector in (
            ReadinessCollector(
                "flokoa_modelproviders",
                "ModelProviders in the cache by provider type and readiness.",
                providers.store.list,
                active=leading,
            ),
            ReadinessCollector(
                "flokoa_models",
                "Models in the cache by provider type and readiness.",
                models.store.list,
                active=leading,
            ),
            DeprecationCollector(models.store.list, active=leading),
        ):
            try:
                unregister.append(register_collector(collector))
            except ValueError:  # another manager in this process already reports it
                log.debug("Gauge %s already registered", collector.name)
        try:
            await asyncio.Event().wait()
        finally:
            for undo in unregister:
                undo()
            with contextlib.suppress(Exception):
                await recorder.close()
            if own_http:
                await probe_http.close()

    manager.add_runnable(lifecycle, needs_leader=False)
    manager.add_runnable(probes.serve, needs_leader=True)
    return Controllers(
        providers=providers,
        models=models,
        secrets=secrets,
        provider_controller=provider_controller,
        model_controller=model_controller,
        provider_reconciler=provider_reconciler,
        model_reconciler=model_reconciler,
        http=probe_http,
        recorder=recorder,
        probes=probes,
    )


def _not_own_write(writer: StatusWriter) -> Predicate:
    """Let through every update but the echo of ``writer``'s own status write (a resync,
    ``old is new``, always passes)."""
    return Predicate(update=lambda old, new: old is new or not writer.is_own_write(old, new))


def _request(key: str) -> Request:
    namespace, _, name = key.rpartition("/")
    return Request(namespace, name)
