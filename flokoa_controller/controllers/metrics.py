"""Prometheus metrics of the ModelProvider and Model controllers.

- ``flokoa_provider_probe_total{provider,result}``: provider probes by provider type and
  outcome; ``result`` is the probe's reason (``ProbeSucceeded``, ``RateLimited``,
  ``InvalidCredentials``, ``Timeout``, ...).
- ``flokoa_provider_probe_duration_seconds{provider}``: probe durations (credential
  acquisition included).
- ``flokoa_model_check_total{provider,result}``: model existence checks, likewise.
- ``flokoa_status_updates_total{kind}``: status writes (a converged cluster adds none).
- ``flokoa_modelproviders{provider,ready}`` and ``flokoa_models{provider,ready}``: how many
  objects the cache holds per provider type and readiness, computed from the informer store
  at scrape time by :class:`ReadinessCollector` (no bookkeeping to drift). Only the leader
  reports them (standbys hold the same caches), so ``sum`` across replicas counts each
  object once.
- ``flokoa_models_deprecated{provider}``: Models whose ``Deprecated`` condition is True (the
  provider reports the model deprecated), likewise from the store at scrape time
  (:class:`DeprecationCollector`); the alert ``FlokoaModelDeprecated`` watches it.

Labels never carry object names or anything from a Secret.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "MODEL_CHECKS",
    "PROBE_DURATION",
    "PROBE_TOTAL",
    "STATUS_UPDATES",
    "DeprecationCollector",
    "ReadinessCollector",
    "register_collector",
]

PROBE_TOTAL = Counter(
    "flokoa_provider_probe_total",
    "Provider probes by provider type and result (the probe's reason).",
    ["provider", "result"],
)
PROBE_DURATION = Histogram(
    "flokoa_provider_probe_duration_seconds",
    "Duration of provider probes, credential acquisition included.",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
MODEL_CHECKS = Counter(
    "flokoa_model_check_total",
    "Model existence checks by provider type and result (the probe's reason).",
    ["provider", "result"],
)
STATUS_UPDATES = Counter(
    "flokoa_status_updates_total",
    "Status writes by kind (an unchanged object is never written).",
    ["kind"],
)
for _kind in ("ModelProvider", "Model"):
    STATUS_UPDATES.labels(_kind)

PROVIDER_TYPES = ("openai", "anthropic", "google", "bedrock")


def _readiness(obj: dict[str, Any]) -> tuple[str, str]:
    status = obj.get("status") or {}
    provider = status.get("provider") if isinstance(status, dict) else None
    ready = isinstance(status, dict) and status.get("ready") is True
    return (provider if provider in PROVIDER_TYPES else "unknown", "true" if ready else "false")


class ReadinessCollector(Collector):
    """A gauge ``<name>{provider,ready}`` counted over a store's objects at scrape time.

    ``objects`` returns the cached objects (e.g. ``informer.store.list``). Every provider
    type is reported with both readiness values, zeros included, so alerts see no gaps.
    ``active`` says whether to report at all (``setup`` passes the manager's ``is_leader``):
    an inactive collector yields nothing, so only one replica exports the gauge.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        objects: Callable[[], Iterable[dict[str, Any]]],
        *,
        active: Callable[[], bool] | None = None,
    ) -> None:
        """Count ``objects()`` into the gauge ``name`` while ``active()`` (default: always)."""
        self.name = name
        self.documentation = documentation
        self.objects = objects
        self.active = active

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The metric family without samples (lets the registry check for clashes)."""
        yield GaugeMetricFamily(self.name, self.documentation, labels=["provider", "ready"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Count the objects by (provider, ready); nothing while inactive."""
        if self.active is not None and not self.active():
            return
        counts = Tally(_readiness(obj) for obj in self.objects())
        family = GaugeMetricFamily(self.name, self.documentation, labels=["provider", "ready"])
        keys = {(p, r) for p in PROVIDER_TYPES for r in ("true", "false")} | set(counts)
        for provider, ready in sorted(keys):
            family.add_metric([provider, ready], counts.get((provider, ready), 0))
        yield family


def _deprecated_provider(obj: dict[str, Any]) -> str | None:
    status = obj.get("status")
    if not isinstance(status, dict) or not isinstance(status.get("conditions"), list):
        return None
    for condition in status["conditions"]:
        if isinstance(condition, dict) and condition.get("type") == "Deprecated":
            if condition.get("status") != "True":
                return None
            provider = status.get("provider")
            return provider if provider in PROVIDER_TYPES else "unknown"
    return None


class DeprecationCollector(Collector):
    """The gauge ``flokoa_models_deprecated{provider}``: Models whose ``Deprecated``
    condition is True, counted over ``objects()`` at scrape time (every provider type
    reported, zeros included; nothing while ``active()`` is False, like
    :class:`ReadinessCollector`)."""

    name = "flokoa_models_deprecated"
    documentation = "Models the provider reports as deprecated (Deprecated=True), by provider."

    def __init__(
        self,
        objects: Callable[[], Iterable[dict[str, Any]]],
        *,
        active: Callable[[], bool] | None = None,
    ) -> None:
        """Count the deprecated Models among ``objects()`` while ``active()``."""
        self.objects = objects
        self.active = active

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The metric family without samples."""
        yield GaugeMetricFamily(self.name, self.documentation, labels=["provider"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Count the deprecated Models by provider; nothing while inactive."""
        if self.active is not None and not self.active():
            return
        counts = Tally(p for p in map(_deprecated_provider, self.objects()) if p is not None)
        family = GaugeMetricFamily(self.name, self.documentation, labels=["provider"])
        for provider in sorted(set(PROVIDER_TYPES) | set(counts)):
            family.add_metric([provider], counts.get(provider, 0))
        yield family


def register_collector(
    collector: Collector, registry: CollectorRegistry = REGISTRY
) -> Callable[[], None]:
    """Register ``collector``; return a function that unregisters it (idempotent)."""
    registry.register(collector)
    done = False

    def unregister() -> None:
        nonlocal done
        if not done:
            done = True
            registry.unregister(collector)

    return unregister
