"""The Model reconciler: is the referenced provider ready, and does it serve this model?

One reconcile of ``namespace/name``:

1. Read the Model from the cache; validate its spec (``InvalidSpec``).
2. Find ``spec.providerRef.name`` *in the Model's namespace* in the ModelProvider cache:
   missing → ``ProviderNotFound``. While the provider's status lags its spec
   (``observedGeneration`` behind), wait: its status write brings the Model back.
   Not ready → ``ProviderNotReady`` (the message carries the provider's own reason).
3. Check the model at the provider with its free get call (OpenAI ``GET /models/{id}``,
   Anthropic ``GET /v1/models/{id}``, Gemini ``GET /v1beta/models/{id}``, the Vertex publisher
   model, Bedrock ``GetFoundationModel``): 404 → ``ModelNotFound``; other failures keep the
   probe's reason; 2xx → ``Ready=True ModelFound``. Classic Azure OpenAI deployments cannot
   be checked for free: ``Ready=True DeploymentNotVerified`` with ``ModelAvailable=Unknown``
   (no request is made; the provider's probe checked the key against the resource).
4. Write ``ready``, ``provider``, conditions ``Ready``, ``ProviderReady``,
   ``ModelAvailable`` and ``observedGeneration`` only if they differ. Events on ``Ready``
   transitions.

When to check again: Models are indexed by their provider, so every status write of the
provider re-reconciles its Models. A Model is re-checked when the provider's probe state
changed since its last check — its UID, generation, ``secretHash`` or ``lastProbeTime``,
i.e. at the provider's re-validation interval and right after a rotation — or when the Model
itself changed. Transient failures are retried with exponential backoff. This record lives in
memory; after a restart, a Model whose status is already a conclusive answer for its
generation is adopted as is and re-checked at its provider's next probe, so a restart does
not re-check every Model at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from flokoa_controller.api.model import ModelSpec
from flokoa_controller.api.modelprovider import ModelProviderSpec
from flokoa_controller.controllers.conditions import (
    FALSE,
    TRUE,
    UNKNOWN,
    ConditionStatus,
    Reason,
    Type,
    find_condition,
    set_conditions,
)
from flokoa_controller.controllers.modelprovider import (
    EventSink,
    describe_validation_error,
    provider_type_of,
    utc_now,
)
from flokoa_controller.controllers.probing import Prober
from flokoa_controller.controllers.schedule import RETRY_REASONS, Schedule
from flokoa_controller.controllers.secrets import SecretProblem
from flokoa_controller.controllers.status import StatusWriter
from flokoa_controller.controllers.targets import build_target, secret_refs
from flokoa_controller.kube.errors import Conflict
from flokoa_controller.providers.result import ProbeResult
from flokoa_controller.runtime.clock import Clock, monotonic
from flokoa_controller.runtime.controller import Request, Result
from flokoa_controller.runtime.store import Store

__all__ = ["MANAGED_MODEL_STATUS_FIELDS", "ModelReconciler", "ModelVerdict"]

log = logging.getLogger(__name__)

MANAGED_MODEL_STATUS_FIELDS: Final = ("ready", "provider", "conditions", "observedGeneration")
"""The status fields this reconciler owns."""

_NOT_CONCLUSIVE: Final = frozenset(
    {Reason.INVALID_SPEC, Reason.PROVIDER_NOT_FOUND, Reason.PROVIDER_NOT_READY} | RETRY_REASONS
)
"""Ready reasons that do not answer "does this provider serve this model?"."""

Cond = tuple[ConditionStatus, str, str]


@dataclass(frozen=True, slots=True)
class ModelVerdict:
    """The three conditions of a Model."""

    ready: Cond
    """``Ready``."""
    provider_ready: Cond
    """``ProviderReady``."""
    model_available: Cond
    """``ModelAvailable``."""

    def updates(self) -> list[tuple[str, ConditionStatus, str, str]]:
        """As ``set_conditions`` updates, Ready first."""
        return [
            (Type.READY, *self.ready),
            (Type.PROVIDER_READY, *self.provider_ready),
            (Type.MODEL_AVAILABLE, *self.model_available),
        ]


@dataclass(frozen=True, slots=True)
class _Checked:
    """The last model check of one Model (in memory)."""

    fingerprint: tuple[Any, ...]
    """The provider's probe state and the Model's generation at the check."""
    at: float
    """Monotonic time of the check."""
    failures: int
    """Consecutive transient failures (0 after a conclusive answer)."""


def _cached(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


def _not_checked(why: str) -> Cond:
    return (UNKNOWN, Reason.NOT_CHECKED, f"not checked: {why}")


def _check_verdict(result: ProbeResult, provider_ready: Cond) -> ModelVerdict:
    reason, message = result.reason, result.message
    if result.ok and reason == Reason.DEPLOYMENT_NOT_VERIFIED:
        return ModelVerdict((TRUE, reason, message), provider_ready, (UNKNOWN, reason, message))
    if result.ok and not result.rate_limited:
        return ModelVerdict(
            (TRUE, Reason.MODEL_FOUND, message),
            provider_ready,
            (TRUE, Reason.MODEL_FOUND, message),
        )
    if result.ok:
        note = f"{message} (the model's existence could not be confirmed)"
        return ModelVerdict((TRUE, reason, note), provider_ready, (UNKNOWN, reason, note))
    if reason == Reason.MODEL_NOT_FOUND:
        return ModelVerdict((FALSE, reason, message), provider_ready, (FALSE, reason, message))
    return ModelVerdict((FALSE, reason, message), provider_ready, (UNKNOWN, reason, message))


class ModelReconciler:
    """Reconciles Models (see the module docstring).

    ``models``/``providers``: the informer stores. ``writer``: status writes. ``prober``:
    Secret reads and model checks. ``recorder``: events. ``schedule``: backoff of transient
    failures. ``now``: wall clock for condition timestamps; ``clock``: monotonic time.
    ``latest_provider``: maps a cached ModelProvider to the freshest view of it — the
    provider ``StatusWriter.latest`` (``setup`` passes it), so a Model reconciled while the
    provider's status write has not reached the cache yet judges the written status, not
    its stale predecessor (which would cost a second model check once the cache catches
    up). The default is the cached object itself.
    """

    def __init__(
        self,
        *,
        models: Store,
        providers: Store,
        writer: StatusWriter,
        prober: Prober,
        recorder: EventSink,
        schedule: Schedule | None = None,
        now: Callable[[], datetime] = utc_now,
        clock: Clock = monotonic,
        latest_provider: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        """Create the reconciler (see the class docstring)."""
        self.models = models
        self.providers = providers
        self.latest_provider = latest_provider or _cached
        self.writer = writer
        self.prober = prober
        self.recorder = recorder
        self.schedule = schedule or Schedule()
        self.now = now
        self.clock = clock
        self._checked: dict[str, _Checked] = {}

    def _backoff(self, failures: int) -> float:
        cap = min(self.schedule.backoff_cap, self.schedule.interval)
        return float(min(cap, self.schedule.backoff_base * 2 ** max(0, failures - 1)))

    async def reconcile(self, request: Request) -> Result:
        """Reconcile one Model; see the module docstring for the steps.

        A status write refused because the Model changed meanwhile (``Conflict``) is
        requeued, rate limited, to reconcile the new state; it is not an error.
        """
        cached = self.models.get_by(request.name, request.namespace)
        if cached is None:
            self._checked.pop(str(request), None)
            return Result()
        try:
            return await self._reconcile(request, self.writer.latest(cached))
        except Conflict:
            log.debug("Model changed while it was reconciled; requeueing")
            return Result(requeue=True)

    async def _reconcile(self, request: Request, obj: dict[str, Any]) -> Result:
        key = str(request)
        metadata = obj.get("metadata") or {}
        generation = int(metadata.get("generation") or 0)
        raw_status = obj.get("status")
        status: Mapping[str, Any] = raw_status if isinstance(raw_status, Mapping) else {}

        try:
            spec = ModelSpec.model_validate(obj.get("spec") or {})
        except ValidationError as exc:
            self._checked.pop(key, None)
            why = _not_checked("the spec is invalid")
            verdict = ModelVerdict(
                (FALSE, Reason.INVALID_SPEC, describe_validation_error(exc)), why, why
            )
            await self._commit(obj, status, {"observedGeneration": generation}, verdict)
            return Result()

        namespace = request.namespace
        ref = f'ModelProvider "{namespace}/{spec.provider_ref.name}"'
        provider = self.providers.get_by(spec.provider_ref.name, namespace)
        if provider is not None:
            provider = self.latest_provider(provider)
        if provider is None:
            self._checked.pop(key, None)
            message = f"{ref} not found"
            verdict = ModelVerdict(
                (FALSE, Reason.PROVIDER_NOT_FOUND, message),
                (FALSE, Reason.PROVIDER_NOT_FOUND, message),
                _not_checked("no provider"),
            )
            await self._commit(obj, status, {"observedGeneration": generation}, verdict)
            return Result()

        p_meta = provider.get("metadata") or {}
        p_raw_status = provider.get("status")
        p_status: Mapping[str, Any] = p_raw_status if isinstance(p_raw_status, Mapping) else {}
        p_generation = int(p_meta.get("generation") or 0)
        if p_status.get("observedGeneration") != p_generation:
            return Result()  # the provider's status write will bring this Model back
        base: dict[str, Any] = {"observedGeneration": generation}
        p_type = p_status.get("provider") or provider_type_of(provider.get("spec"))
        if p_type:
            base["provider"] = p_type

        p_ready = find_condition(p_status.get("conditions"), Type.READY)
        try:
            p_spec = ModelProviderSpec.model_validate(provider.get("spec") or {})
        except ValidationError:
            p_spec = None
        if p_status.get("ready") is not True or p_spec is None:
            self._checked.pop(key, None)
            cause = (
                f"{p_ready.get('reason')}: {p_ready.get('message')}"
                if p_ready is not None
                else "no Ready condition yet"
            )
            message = f"{ref} is not ready: {cause}"
            verdict = ModelVerdict(
                (FALSE, Reason.PROVIDER_NOT_READY, message),
                (FALSE, Reason.PROVIDER_NOT_READY, message),
                _not_checked("the provider is not ready"),
            )
            await self._commit(obj, status, base, verdict)
            return Result()

        provider_ready: Cond = (TRUE, Reason.PROVIDER_IS_READY, f"{ref} is ready")
        fingerprint = (
            p_meta.get("uid"),
            p_generation,
            p_status.get("secretHash"),
            p_status.get("lastProbeTime"),
            generation,
        )
        entry = self._checked.get(key)
        if entry is None and self._conclusive(status, generation):
            self._checked[key] = _Checked(fingerprint, self.clock(), 0)
            return Result()
        if entry is not None and entry.fingerprint == fingerprint:
            if entry.failures == 0:
                return Result()
            remaining = entry.at + self._backoff(entry.failures) - self.clock()
            if remaining > 0:
                return Result(requeue_after=remaining)

        resolved, _ = await self.prober.resolve(namespace, secret_refs(p_spec))
        if isinstance(resolved, SecretProblem):
            verdict = ModelVerdict(
                (FALSE, resolved.reason, resolved.message),
                provider_ready,
                _not_checked(resolved.reason),
            )
            reason = resolved.reason
        else:
            timeout = spec.settings.timeout_seconds if spec.settings is not None else None
            target = build_target(p_spec, resolved, timeout_seconds=timeout)
            del resolved
            result = await self.prober.probe_model(target, spec.model)
            del target
            verdict = _check_verdict(result, provider_ready)
            reason = result.reason
            log.info(
                "Checked model: %s",
                reason,
                extra={"url": result.url, "http_status": result.http_status},
            )
        await self._commit(obj, status, base, verdict)
        transient = reason in RETRY_REASONS
        failures = 0
        if transient:
            same = entry is not None and entry.fingerprint == fingerprint
            failures = (entry.failures if same and entry is not None else 0) + 1
        self._checked[key] = _Checked(fingerprint, self.clock(), failures)
        return Result(requeue_after=self._backoff(failures)) if transient else Result()

    @staticmethod
    def _conclusive(status: Mapping[str, Any], generation: int) -> bool:
        ready = find_condition(status.get("conditions"), Type.READY)
        return (
            ready is not None
            and status.get("observedGeneration") == generation
            and ready.get("observedGeneration") == generation
            and ready.get("reason") not in _NOT_CONCLUSIVE
        )

    async def _commit(
        self,
        obj: Mapping[str, Any],
        status: Mapping[str, Any],
        base: Mapping[str, Any],
        verdict: ModelVerdict,
    ) -> None:
        generation = int(base["observedGeneration"])
        conditions = set_conditions(
            status.get("conditions"), verdict.updates(), generation, self.now()
        )
        desired = {**base, "ready": verdict.ready[0] == TRUE, "conditions": conditions}
        written = await self.writer.write(obj, desired, MANAGED_MODEL_STATUS_FIELDS)
        if written:
            self._events(obj, status, verdict)

    def _events(
        self, obj: Mapping[str, Any], old: Mapping[str, Any], verdict: ModelVerdict
    ) -> None:
        before = find_condition(old.get("conditions"), Type.READY)
        status, reason, message = verdict.ready
        if before is not None and (before.get("status"), before.get("reason")) == (
            status,
            reason,
        ):
            return
        if status == TRUE:
            if before is None or before.get("status") != TRUE:
                self.recorder.event(obj, "Normal", "ModelReady", message)
            return
        self.recorder.event(obj, "Warning", reason, message)
