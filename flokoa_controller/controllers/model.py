"""The Model reconciler: is the referenced provider ready, and does it serve this model?

One reconcile of ``namespace/name``:

1. Read the Model from the cache; validate its spec (``InvalidSpec``).
2. Find ``spec.providerRef.name`` *in the Model's namespace* in the ModelProvider cache:
   missing → ``ProviderNotFound``. While the provider's status lags its spec
   (``observedGeneration`` behind), wait: its status write brings the Model back.
   Not ready → ``ProviderNotReady`` (the message carries the provider's own reason).
3. Check the model at the provider — outside the reconcile workers, as providers are probed
   (:mod:`.probes_inflight`; the result is taken only while the Model's UID and generation
   and the ``providerHash`` it was started with are current) — with its free get call
   (OpenAI ``GET /models/{id}``,
   Anthropic ``GET /v1/models/{id}``, Gemini ``GET /v1beta/models/{id}``, Vertex's
   publisher model and ``countTokens`` in the project, Bedrock's inference profile or
   foundation model and its availability): 404 → ``ModelNotFound``; a Bedrock model the
   account may not use → ``ModelAccessNotGranted``/``ModelAgreementNotAccepted``/
   ``ModelNotOfferedInRegion``; other failures keep the probe's reason; 2xx →
   ``Ready=True ModelFound``. Classic Azure OpenAI deployments cannot be checked for free:
   ``Ready=True DeploymentNotVerified`` with ``ModelAvailable=Unknown`` (no request is made;
   the provider's probe checked the key against the resource); Vertex partner models:
   ``Ready=True ModelAccessNotVerified``. What the check learnt goes to
   ``status.resolvedModel`` / ``status.memberModels`` (:func:`resolved_fields`) and the
   ``Deprecated`` condition (:func:`deprecation`; a Warning ``ModelDeprecated`` event when
   it turns True, Ready stays True).
4. Write ``ready``, ``provider``, conditions ``Ready``, ``ProviderReady``,
   ``ModelAvailable``, ``observedGeneration`` and, after a check, ``providerHash`` only if
   they differ, with ``lastCheckTime`` set to this check's time. A check whose outcome
   changes nothing writes nothing (``lastCheckTime`` is the time of the last check that
   changed the status). Events on ``Ready`` transitions.

Steps 3 to 4 run the pipeline the ModelProvider reconciler runs too
(:func:`.scheduled_probe.probe_when_due`).

When to check again (:func:`.schedule.decide_check`, :func:`.schedule.revalidation`):
changes are read from status, so a restarted controller or a new leader sees them as the
one before it did; the time of the last check is kept in memory. Models are indexed by
their provider, so every status write of the provider re-reconciles its Models. A check
records ``providerHash``, a hash of the provider state it relied on (UID, generation,
``secretHash``, ``lastProbeTime`` — the last moves only when a probe changed the provider's
status). A Model is checked again when that hash no longer matches the provider — right
after a rotation, a spec change or a changed probe outcome, even one within the same
second — when the Model's own generation changed, when its status is not the outcome of a
check (the provider was missing or not ready), at its own jittered re-validation interval
after a conclusive answer, or after a transient failure once the backoff (the outage length
so far) has passed. After a restart, a Model overdue by its ``lastCheckTime`` is due at a
point within one interval, so a restart costs no check and no write at once, and a provider
whose status changed while the controller was down still brings its Models' checks.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from flokoa_controller.api.model import ModelSpec
from flokoa_controller.api.modelprovider import ModelProviderSpec
from flokoa_controller.controllers.conditions import (
    FALSE,
    TRUE,
    UNKNOWN,
    Cond,
    ConditionStatus,
    Reason,
    Type,
    find_condition,
    parse_time,
)
from flokoa_controller.controllers.probes_inflight import InlineProbes, ProbeRunner
from flokoa_controller.controllers.probing import Prober
from flokoa_controller.controllers.schedule import (
    Decision,
    DueTimes,
    LastCheck,
    Schedule,
    decide_check,
)
from flokoa_controller.controllers.scheduled_probe import (
    Check,
    EventSink,
    StatusRules,
    log_outcome,
    no_requeue,
    probe_when_due,
    reconcile_scheduled,
    same_condition,
    utc_now,
    write_unchecked,
)
from flokoa_controller.controllers.secrets import SecretProblem
from flokoa_controller.controllers.specs import (
    SpecCache,
    describe_validation_error,
    provider_type_of,
)
from flokoa_controller.controllers.status import (
    StatusWriter,
    generation_of,
    status_of,
)
from flokoa_controller.controllers.targets import build_target, secret_refs
from flokoa_controller.providers.result import ProbeResult
from flokoa_controller.runtime.controller import Request, Result
from flokoa_controller.runtime.meta import metadata_of, uid_of
from flokoa_controller.runtime.store import Store

__all__ = [
    "MANAGED_MODEL_STATUS_FIELDS",
    "ModelReconciler",
    "ModelVerdict",
    "last_check",
    "provider_hash",
]

log = logging.getLogger(__name__)

MANAGED_MODEL_STATUS_FIELDS: Final = (
    "ready",
    "provider",
    "conditions",
    "observedGeneration",
    "lastCheckTime",
    "providerHash",
    "resolvedModel",
    "memberModels",
)
"""The status fields this reconciler owns."""

_LAST_CHECK_FIELDS: Final = ("lastCheckTime", "providerHash")
"""Kept as they are when a reconcile makes no check (they describe the last one)."""

_NOT_A_CHECK: Final = frozenset(
    {Reason.INVALID_SPEC, Reason.PROVIDER_NOT_FOUND, Reason.PROVIDER_NOT_READY}
)
"""Ready reasons that are not the outcome of a check of the model at its provider."""


@dataclass(frozen=True, slots=True)
class ModelVerdict:
    """The conditions of a Model."""

    ready: Cond
    """``Ready``."""
    provider_ready: Cond
    """``ProviderReady``."""
    model_available: Cond
    """``ModelAvailable``."""
    deprecated: Cond | None = None
    """``Deprecated``, when the check learnt the model's lifecycle (else left as it is)."""
    drop_deprecated: bool = False
    """Remove ``Deprecated``: the model was found, and its provider reports no lifecycle
    (e.g. ``spec.model`` or the provider changed)."""

    def updates(self) -> list[tuple[str, ConditionStatus, str, str]]:
        """As ``set_conditions`` updates, Ready first."""
        updates: list[tuple[str, ConditionStatus, str, str]] = [
            (Type.READY, *self.ready),
            (Type.PROVIDER_READY, *self.provider_ready),
            (Type.MODEL_AVAILABLE, *self.model_available),
        ]
        if self.deprecated is not None:
            updates.append((Type.DEPRECATED, *self.deprecated))
        return updates

    def removed(self) -> tuple[str, ...]:
        """``Deprecated`` when :attr:`drop_deprecated`."""
        return (Type.DEPRECATED,) if self.drop_deprecated else ()


def provider_hash(provider: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the provider state a model check relies on.

    Its UID (a re-created provider), ``metadata.generation`` (a spec change),
    ``status.secretHash`` (a rotation) and ``status.lastProbeTime`` (a probe that changed
    the provider's status): any of them changing means the provider's state changed, so its
    Models are checked again. The hash covers what the provider's status already shows; it
    reveals nothing new.
    """
    meta, status = metadata_of(provider), status_of(provider)
    parts = (
        meta.get("uid"),
        meta.get("generation"),
        status.get("secretHash"),
        status.get("lastProbeTime"),
    )
    text = "\0".join("" if part is None else str(part) for part in parts)
    return hashlib.sha256(text.encode()).hexdigest()


def last_check(
    status: Mapping[str, Any], *, provider_ready_since: datetime | None = None
) -> LastCheck | None:
    """What a Model's ``status`` says about its last check (``None``: not a check outcome).

    ``provider_ready_since`` (when the provider last turned Ready) bounds the start of an
    outage of the check: the model could not be checked before its provider was ready.
    """
    checked = parse_time(status.get("lastCheckTime"))
    generation = status.get("observedGeneration")
    p_hash = status.get("providerHash")
    conditions = status.get("conditions")
    ready = find_condition(conditions, Type.READY)
    if checked is None or not isinstance(generation, int) or not isinstance(p_hash, str):
        return None
    if ready is None or ready.get("observedGeneration") != generation:
        return None
    reason = ready.get("reason")
    if not isinstance(reason, str) or reason in _NOT_A_CHECK:
        return None
    available = find_condition(conditions, Type.MODEL_AVAILABLE)
    since = parse_time((available or ready).get("lastTransitionTime"))
    if provider_ready_since is not None and (since is None or since < provider_ready_since):
        since = provider_ready_since
    return LastCheck(checked, generation, p_hash, reason, since)


def _cached(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


def _not_checked(why: str) -> Cond:
    return (UNKNOWN, Reason.NOT_CHECKED, f"not checked: {why}")


def _provider_verdict(reason: str, message: str, why: str) -> ModelVerdict:
    """The provider is missing or not ready: ``Ready`` and ``ProviderReady`` say why, and the
    model is not checked."""
    failed: Cond = (FALSE, reason, message)
    return ModelVerdict(failed, failed, _not_checked(why))


_UNVERIFIED: Final = frozenset({Reason.DEPLOYMENT_NOT_VERIFIED, Reason.MODEL_ACCESS_NOT_VERIFIED})
"""Ready=True reasons of a check that could not verify the model (ModelAvailable=Unknown)."""

_UNUSABLE: Final = frozenset(
    {
        Reason.MODEL_NOT_FOUND,
        Reason.MODEL_ACCESS_NOT_GRANTED,
        Reason.MODEL_AGREEMENT_NOT_ACCEPTED,
        Reason.MODEL_NOT_OFFERED_IN_REGION,
    }
)
"""Check reasons that say the model is not available (ModelAvailable=False)."""


def _check_verdict(result: ProbeResult, provider_ready: Cond) -> ModelVerdict:
    verdict = _availability_verdict(result, provider_ready)
    deprecated = deprecation(result)
    found = result.ok and not result.rate_limited
    return replace(verdict, deprecated=deprecated, drop_deprecated=found and deprecated is None)


def deprecation(result: ProbeResult) -> Cond | None:
    """The ``Deprecated`` condition from the lifecycle a check reported (None: none)."""
    lifecycle = result.model.lifecycle if result.model is not None else None
    if lifecycle is None:
        return None
    said = f"the provider reports {lifecycle.field} {lifecycle.word}"
    if lifecycle.deprecated:
        return (
            TRUE,
            lifecycle.reason,
            f"{said}: the model is deprecated and will be retired; move agents to a "
            "successor model",
        )
    return (FALSE, Reason.NOT_DEPRECATED, said)


def resolved_fields(result: ProbeResult) -> dict[str, Any]:
    """``resolvedModel`` and ``memberModels`` from a check's ``ModelDetails``."""
    details = result.model
    fields: dict[str, Any] = {}
    if details is not None and details.resolved:
        fields["resolvedModel"] = details.resolved
    if details is not None and details.members:
        fields["memberModels"] = list(details.members)
    return fields


def _availability_verdict(result: ProbeResult, provider_ready: Cond) -> ModelVerdict:
    reason, message = result.reason, result.message
    if result.ok and reason in _UNVERIFIED:
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
    if reason in _UNUSABLE:
        return ModelVerdict((FALSE, reason, message), provider_ready, (FALSE, reason, message))
    return ModelVerdict((FALSE, reason, message), provider_ready, (UNKNOWN, reason, message))


class ModelReconciler:
    """Reconciles Models (see the module docstring).

    ``models``/``providers``: the informer stores. ``writer``: status writes. ``prober``:
    Secret reads and model checks. ``recorder``: events. ``schedule``: re-validation
    interval and backoff of transient failures. ``now``: wall clock (UTC) for
    ``lastCheckTime``, condition timestamps and the check schedule. The due time of each
    Model's next check is kept in memory (:class:`.DueTimes`).
    ``latest_provider``: maps a cached ModelProvider to the freshest view of it — the
    provider ``StatusWriter.latest`` (``setup`` passes it), so a Model reconciled while the
    provider's status write has not reached the cache yet judges the written status, not
    its stale predecessor (which would cost a second model check once the cache catches
    up). The default is the cached object itself. ``probes``/``requeue``: where checks run
    and how their completion re-queues the Model, as for :class:`.ModelProviderReconciler`.
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
        latest_provider: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        probes: ProbeRunner | None = None,
        requeue: Callable[[Request], None] = no_requeue,
    ) -> None:
        """Create the reconciler (see the class docstring)."""
        self.probes: ProbeRunner = probes if probes is not None else InlineProbes()
        self.requeue = requeue
        self.models = models
        self.providers = providers
        self.latest_provider = latest_provider or _cached
        self.writer = writer
        self.prober = prober
        self.recorder = recorder
        self.schedule = schedule or Schedule()
        self.now = now
        self._specs = SpecCache(ModelSpec.model_validate)
        self._provider_specs = SpecCache(ModelProviderSpec.model_validate)
        self.due = DueTimes()
        """When each Model's next check is due (dropped when the Model is gone)."""
        self._rules = StatusRules(
            "Model",
            MANAGED_MODEL_STATUS_FIELDS,
            "lastCheckTime",
            "providerHash",
            self._write_events,
            floor_at_backoff=False,
        )

    async def reconcile(self, request: Request) -> Result:
        """Reconcile one Model; see the module docstring for the steps.

        A status write refused because the Model changed meanwhile (``Conflict``) is
        requeued, rate limited, to reconcile the new state; it is not an error
        (:func:`.status.reconcile_latest`).
        """
        return await reconcile_scheduled(self, self._rules, request, self.models, self._reconcile)

    async def _check(
        self, namespace: str, p_spec: ModelProviderSpec, spec: ModelSpec
    ) -> ProbeResult | SecretProblem:
        """Read the provider's Secrets and check the model (in the in-flight table)."""
        resolved, _ = await self.prober.resolve(namespace, secret_refs(p_spec))
        if isinstance(resolved, SecretProblem):
            return resolved
        timeout = spec.settings.timeout_seconds if spec.settings is not None else None
        target = build_target(
            p_spec,
            resolved,
            timeout_seconds=timeout,
            identity=self.prober.identity(namespace, p_spec),
            namespace=namespace,
            name=spec.provider_ref.name,
        )
        del resolved
        return await self.prober.probe_model(target, spec.model)

    async def _reconcile(self, request: Request, obj: dict[str, Any]) -> Result:
        generation, status = generation_of(obj), status_of(obj)
        kept = {name: status[name] for name in _LAST_CHECK_FIELDS if status.get(name)}

        try:
            spec = self._specs.parse(uid_of(obj), obj.get("spec") or {})
        except ValidationError as exc:
            why = _not_checked("the spec is invalid")
            verdict = ModelVerdict(
                (FALSE, Reason.INVALID_SPEC, describe_validation_error(exc)), why, why
            )
            base = {"observedGeneration": generation, **kept}
            return await write_unchecked(self, self._rules, request, obj, base, verdict)

        namespace = request.namespace
        ref = f'ModelProvider "{namespace}/{spec.provider_ref.name}"'
        provider = self.providers.get_by(spec.provider_ref.name, namespace)
        if provider is not None:
            provider = self.latest_provider(provider)
        if provider is None:
            verdict = _provider_verdict(
                Reason.PROVIDER_NOT_FOUND, f"{ref} not found", "no provider"
            )
            base = {"observedGeneration": generation, **kept}
            return await write_unchecked(self, self._rules, request, obj, base, verdict)

        p_status = status_of(provider)
        if p_status.get("observedGeneration") != generation_of(provider):
            self.probes.forget(self._rules.key(request))
            return Result()  # the provider's status write will bring this Model back
        base = {"observedGeneration": generation, **kept}
        p_type = p_status.get("provider") or provider_type_of(provider.get("spec"))
        if p_type:
            base["provider"] = p_type

        p_ready = find_condition(p_status.get("conditions"), Type.READY)
        try:
            p_spec = self._provider_specs.parse(uid_of(provider), provider.get("spec") or {})
        except ValidationError:
            p_spec = None
        if p_status.get("ready") is not True or p_spec is None:
            cause = (
                f"{p_ready.get('reason')}: {p_ready.get('message')}"
                if p_ready is not None
                else "no Ready condition yet"
            )
            verdict = _provider_verdict(
                Reason.PROVIDER_NOT_READY,
                f"{ref} is not ready: {cause}",
                "the provider is not ready",
            )
            return await write_unchecked(self, self._rules, request, obj, base, verdict)

        provider_ready: Cond = (TRUE, Reason.PROVIDER_IS_READY, f"{ref} is ready")
        digest = provider_hash(provider)
        ready_since = parse_time(p_ready.get("lastTransitionTime")) if p_ready else None
        uid = str(metadata_of(obj).get("uid") or request)

        def due(
            now: datetime, recorded: Mapping[str, Any], digest: str, at: datetime | None
        ) -> Decision:
            last = last_check(recorded, provider_ready_since=ready_since)
            if last is not None and at is not None:
                last = replace(last, time=at)
            return decide_check(
                now,
                last,
                generation=generation,
                provider_hash=digest,
                schedule=self.schedule,
                seed=uid,
            )

        def judge(result: ProbeResult | SecretProblem) -> tuple[ModelVerdict, Mapping[str, Any]]:
            if isinstance(result, SecretProblem):
                failed: Cond = (FALSE, result.reason, result.message)
                return ModelVerdict(failed, provider_ready, _not_checked(result.reason)), {
                    "providerHash": digest
                }
            verdict = _check_verdict(result, provider_ready)
            log_outcome(log, "Checked model", status, verdict.ready, result)
            return verdict, {**resolved_fields(result), "providerHash": digest}

        checked_spec = p_spec
        check = Check(
            uid=uid,
            digest=digest,
            run=lambda: self._check(namespace, checked_spec, spec),
            judge=judge,
            due=due,
        )
        return await probe_when_due(self, self._rules, check, request, obj, base)

    def _write_events(
        self, obj: Mapping[str, Any], old: Mapping[str, Any], verdict: ModelVerdict
    ) -> None:
        self._events(obj, old, verdict)
        self._deprecation_event(obj, old, verdict)

    def _deprecation_event(
        self, obj: Mapping[str, Any], old: Mapping[str, Any], verdict: ModelVerdict
    ) -> None:
        """One Warning ``ModelDeprecated`` when ``Deprecated`` turns True (not on re-checks)."""
        if verdict.deprecated is None or verdict.deprecated[0] != TRUE:
            return
        before = find_condition(old.get("conditions"), Type.DEPRECATED)
        if before is not None and before.get("status") == TRUE:
            return
        self.recorder.event(obj, "Warning", "ModelDeprecated", verdict.deprecated[2])

    def _events(
        self, obj: Mapping[str, Any], old: Mapping[str, Any], verdict: ModelVerdict
    ) -> None:
        before = find_condition(old.get("conditions"), Type.READY)
        status, reason, message = verdict.ready
        if same_condition(before, verdict.ready):
            return
        if status == TRUE:
            if before is not None and before.get("status") != TRUE:
                # a recovery only, as for providers: a first Ready is in the status
                self.recorder.event(obj, "Normal", "ModelReady", message)
            return
        self.recorder.event(obj, "Warning", reason, message)
