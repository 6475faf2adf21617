"""The ModelProvider reconciler: cached state → (maybe a probe) → desired status → patch.

One reconcile of ``namespace/name``:

1. Read the ModelProvider from the informer cache (gone: nothing to do, no finalizer).
2. Validate the spec with the API types (the same rules as the CRD's CEL). Invalid →
   ``Ready=False InvalidSpec`` with the rule's message; not requeued (a spec change brings
   the object back).
3. Resolve the referenced Secrets against the digest cache (own namespace only) and compute
   ``secretHash``. A missing Secret or key, or an empty value → ``SecretNotFound`` /
   ``SecretKeyNotFound`` / ``InvalidSecret`` without any API call; a Secret event brings the
   object back.
4. Decide whether a probe is due (:mod:`.schedule`): on a spec or ``secretHash`` change
   (read from status), after the jittered re-validation interval or after the backoff of a
   transient failure (counted from the last probe, remembered in memory; after a restart,
   an overdue provider is due at a point within one interval). Not due → requeue for when
   it is; nothing written.
5. Probe, outside the reconcile workers (:mod:`.probes_inflight`): the reconcile hands
   the probe to the in-flight table and returns; the probe GETs the Secrets, validates the
   values (``InvalidSecret``, ``InvalidCACertificate``), builds the
   :class:`~flokoa_controller.providers.target.ProbeTarget` with the cloud identity the spec
   uses (:mod:`.identity`: its ServiceAccount, its Secrets, or the operator's own only where
   allowed), runs the provider's free authenticated list call (credentials from an identity
   obtained first; identity reasons such as ``AmbientIdentityNotAllowed`` mean nothing was
   sent) and drops the values; its completion re-queues the provider, and the next
   reconcile takes the result — only if the UID, generation and ``secretHash`` it was
   started with are still the current ones (else it starts anew).
6. Compute the desired status — ``provider``, ``ready``, conditions ``Ready``,
   ``SecretResolved``, ``CredentialsValid``, ``EndpointReachable``, ``observedGeneration``,
   ``secretHash``, ``endpoint``, ``identity`` — and merge-patch ``/status`` only if it
   differs from the cached one, with ``lastProbeTime`` set to this probe's time. A probe
   whose outcome changes nothing writes nothing (``lastProbeTime`` is the time of the last
   probe that changed the status). Events on transitions of ``Ready`` only.

Steps 4 to 6 are the pipeline both reconcilers share (:func:`.scheduled_probe.probe_when_due`);
this module supplies what a provider probe is and how its outcome reads as conditions.

The in-flight table holds at most one probe per provider; it caps the probes running at
once globally and per namespace and serves namespaces round-robin; ``ProbeHTTP`` bounds the
probes in flight per destination host.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

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
from flokoa_controller.controllers.identity import identity_status
from flokoa_controller.controllers.probes_inflight import InlineProbes, ProbeRunner
from flokoa_controller.controllers.probing import Prober
from flokoa_controller.controllers.schedule import (
    Decision,
    DueTimes,
    LastProbe,
    Schedule,
    decide,
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
from flokoa_controller.controllers.secrets import (
    SecretKeyRef,
    SecretProblem,
    resolve_from_cache,
)
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
from flokoa_controller.controllers.targets import build_target, endpoint, secret_refs
from flokoa_controller.providers.result import IDENTITY_REASONS, ProbeResult
from flokoa_controller.runtime.controller import Request, Result
from flokoa_controller.runtime.meta import metadata_of, uid_of
from flokoa_controller.runtime.store import Store

__all__ = [
    "INSECURE_NOTE",
    "MANAGED_STATUS_FIELDS",
    "ModelProviderReconciler",
    "Verdict",
    "last_probe",
]

log = logging.getLogger(__name__)

MANAGED_STATUS_FIELDS: Final = (
    "provider",
    "ready",
    "conditions",
    "observedGeneration",
    "secretHash",
    "lastProbeTime",
    "endpoint",
    "identity",
)
"""The status fields this reconciler owns."""

INSECURE_NOTE: Final = (
    "WARNING: TLS certificate verification is disabled (tls.insecureSkipVerify): "
    "credentials are exposed to any man-in-the-middle"
)
"""Appended to the Ready message of a provider that skips certificate verification."""

_SECRET_REASONS: Final = frozenset(
    {
        Reason.SECRET_NOT_FOUND,
        Reason.SECRET_KEY_NOT_FOUND,
        Reason.INVALID_SECRET,
        Reason.INVALID_CA_CERTIFICATE,
        Reason.SECRET_ACCESS_DENIED,
    }
)
_CREDENTIAL_REASONS: Final = frozenset(
    {Reason.INVALID_CREDENTIALS, Reason.CREDENTIALS_UNAVAILABLE, *IDENTITY_REASONS}
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The four conditions of a ModelProvider."""

    ready: Cond
    """``Ready``: the summary (its reason is the specific cause when not True)."""
    secret_resolved: Cond
    """``SecretResolved``."""
    credentials_valid: Cond
    """``CredentialsValid``."""
    endpoint_reachable: Cond
    """``EndpointReachable``."""

    def updates(self) -> list[tuple[str, ConditionStatus, str, str]]:
        """As ``set_conditions`` updates, Ready first."""
        return [
            (Type.READY, *self.ready),
            (Type.SECRET_RESOLVED, *self.secret_resolved),
            (Type.CREDENTIALS_VALID, *self.credentials_valid),
            (Type.ENDPOINT_REACHABLE, *self.endpoint_reachable),
        ]

    def removed(self) -> tuple[str, ...]:
        """None: a ModelProvider keeps all four conditions."""
        return ()


def _invalid_spec_verdict(message: str) -> Verdict:
    unknown: Cond = (UNKNOWN, Reason.NOT_PROBED, "not checked: the spec is invalid")
    return Verdict((FALSE, Reason.INVALID_SPEC, message), unknown, unknown, unknown)


def _secret_verdict(problem: SecretProblem) -> Verdict:
    unknown: Cond = (UNKNOWN, Reason.NOT_PROBED, f"not probed: {problem.reason}")
    return Verdict(
        (FALSE, problem.reason, problem.message),
        (FALSE, problem.reason, problem.message),
        unknown,
        unknown,
    )


def _probe_verdict(
    result: ProbeResult,
    secrets_referenced: bool,
    insecure: bool,
    service_account: str | None = None,
) -> Verdict:
    resolved: Cond = (
        (TRUE, Reason.SECRET_FOUND, "every referenced Secret key was found and is well formed")
        if secrets_referenced
        else (
            TRUE,
            Reason.NO_SECRET_REFERENCED,
            f'no Secret referenced: the identity of ServiceAccount "{service_account}" is used'
            if service_account
            else "no Secret referenced: the controller's ambient cloud identity is used",
        )
    )
    reason, message = result.reason, result.message
    if result.ok:
        ready_message = f"Provider is configured and ready: {message}"
        if insecure:
            ready_message = f"{ready_message}; {INSECURE_NOTE}"
        return Verdict(
            (TRUE, reason, ready_message),
            resolved,
            (TRUE, Reason.CREDENTIALS_ACCEPTED, message),
            (TRUE, Reason.ENDPOINT_RESPONDED, message),
        )
    if reason in _CREDENTIAL_REASONS:
        endpoint_cond: Cond = (
            (TRUE, Reason.ENDPOINT_RESPONDED, message)
            if result.http_status is not None
            else (UNKNOWN, Reason.NOT_PROBED, f"not reached: {reason}")
        )
        return Verdict((FALSE, reason, message), resolved, (FALSE, reason, message), endpoint_cond)
    if reason == Reason.INVALID_CA_CERTIFICATE:
        unknown: Cond = (UNKNOWN, Reason.NOT_PROBED, f"not probed: {reason}")
        return Verdict((FALSE, reason, message), (FALSE, reason, message), unknown, unknown)
    return Verdict(
        (FALSE, reason, message),
        resolved,
        (UNKNOWN, Reason.NOT_VERIFIED, f"not verified: {reason}"),
        (FALSE, reason, message),
    )


def last_probe(status: Mapping[str, Any]) -> LastProbe | None:
    """What ``status`` says about the last check (``None``: it never completed one)."""
    probed = parse_time(status.get("lastProbeTime"))
    generation = status.get("observedGeneration")
    secret_hash = status.get("secretHash")
    ready = find_condition(status.get("conditions"), Type.READY)
    if probed is None or not isinstance(generation, int) or not isinstance(secret_hash, str):
        return None
    if ready is None or ready.get("reason") in (None, Reason.INVALID_SPEC):
        return None
    reason = str(ready.get("reason"))
    failing = Type.SECRET_RESOLVED if reason in _SECRET_REASONS else Type.ENDPOINT_REACHABLE
    condition = find_condition(status.get("conditions"), failing)
    since = parse_time(condition.get("lastTransitionTime")) if condition is not None else None
    return LastProbe(probed, generation, secret_hash, reason, since)


_ProviderOutcome = tuple[ProbeResult | SecretProblem, str | None]
"""What a provider probe hands back: its result (or the Secret problem found), and the
``secretHash`` of the bytes it read."""


class ModelProviderReconciler:
    """Reconciles ModelProviders (see the module docstring).

    ``providers``/``secrets``: the informer stores (Secrets as digests). ``writer``: status
    writes. ``prober``: Secret reads and probes. ``recorder``: events. ``schedule``: probe
    timing. ``now``: wall clock (UTC) for status timestamps and the probe schedule.
    ``probes``: where probes run (``setup`` passes the shared :class:`.InFlightProbes`;
    the default runs them inside the reconcile). ``requeue``: called with the request when
    its probe finishes (``setup`` sets the controller's ``enqueue``).
    The due time of each provider's next probe is kept in memory (:class:`.DueTimes`).
    """

    def __init__(
        self,
        *,
        providers: Store,
        secrets: Store,
        writer: StatusWriter,
        prober: Prober,
        recorder: EventSink,
        schedule: Schedule | None = None,
        now: Callable[[], datetime] = utc_now,
        probes: ProbeRunner | None = None,
        requeue: Callable[[Request], None] = no_requeue,
    ) -> None:
        """Create the reconciler (see the class docstring)."""
        self.probes: ProbeRunner = probes if probes is not None else InlineProbes()
        self.requeue = requeue
        self.providers = providers
        self.secrets = secrets
        self.writer = writer
        self.prober = prober
        self.recorder = recorder
        self.schedule = schedule or Schedule()
        self.now = now
        self._specs = SpecCache(ModelProviderSpec.model_validate)
        self.due = DueTimes()
        """When each provider's next probe is due (dropped when the provider is gone)."""
        self._rules = StatusRules(
            "ModelProvider", MANAGED_STATUS_FIELDS, "lastProbeTime", "secretHash", self._events
        )

    def _lookup_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.secrets.get_by(name, namespace)

    async def reconcile(self, request: Request) -> Result:
        """Reconcile one ModelProvider; see the module docstring for the steps.

        A status write refused because the object changed meanwhile (``Conflict``: edited,
        or deleted and re-created while the probe ran) is requeued, rate limited, to
        reconcile the new state; it is not an error (:func:`.status.reconcile_latest`).
        """
        return await reconcile_scheduled(
            self, self._rules, request, self.providers, self._reconcile
        )

    async def _probe(
        self, namespace: str, refs: list[SecretKeyRef], spec: ModelProviderSpec, name: str
    ) -> _ProviderOutcome:
        """Read the Secrets and probe (runs in the in-flight table, not in a worker)."""
        resolved, read_hash = await self.prober.resolve(namespace, refs)
        if isinstance(resolved, SecretProblem):
            return resolved, read_hash
        target = build_target(
            spec,
            resolved,
            identity=self.prober.identity(namespace, spec),
            namespace=namespace,
            name=name,
        )
        del resolved
        return await self.prober.probe_provider(target), read_hash

    async def _reconcile(self, request: Request, obj: dict[str, Any]) -> Result:
        generation, status = generation_of(obj), status_of(obj)
        namespace = request.namespace

        try:
            spec = self._specs.parse(uid_of(obj), obj.get("spec") or {})
        except ValidationError as exc:
            message = describe_validation_error(exc)
            base: dict[str, Any] = {"observedGeneration": generation}
            if status.get("lastProbeTime"):
                base["lastProbeTime"] = status["lastProbeTime"]
            provider = provider_type_of(obj.get("spec"))
            if provider is not None:
                base["provider"] = provider
            verdict = _invalid_spec_verdict(message)
            return await write_unchecked(self, self._rules, request, obj, base, verdict)

        refs = secret_refs(spec)
        cached = resolve_from_cache(namespace, refs, self._lookup_secret)
        base = {
            "provider": spec.provider,
            "observedGeneration": generation,
            "endpoint": endpoint(spec),
            "secretHash": cached.secret_hash,
            "identity": identity_status(spec),
        }
        if status.get("lastProbeTime"):
            base["lastProbeTime"] = status["lastProbeTime"]
        if cached.problem is not None:
            verdict = _secret_verdict(cached.problem)
            return await write_unchecked(self, self._rules, request, obj, base, verdict)

        uid = str(metadata_of(obj).get("uid") or request)

        def due(
            now: datetime, recorded: Mapping[str, Any], digest: str, at: datetime | None
        ) -> Decision:
            last = last_probe(recorded)
            if last is not None and at is not None:
                last = replace(last, time=at)
            return decide(
                now,
                last,
                generation=generation,
                secret_hash=digest,
                schedule=self.schedule,
                seed=uid,
            )

        def judge(outcome: _ProviderOutcome) -> tuple[Verdict, Mapping[str, Any]]:
            result, read_hash = outcome
            learnt = {"secretHash": read_hash or cached.secret_hash}
            if isinstance(result, SecretProblem):
                return _secret_verdict(result), learnt
            insecure = bool(spec.tls and spec.tls.insecure_skip_verify)
            verdict = _probe_verdict(result, bool(refs), insecure, spec.service_account_name)
            log_outcome(log, "Probed provider", status, verdict.ready, result)
            return verdict, learnt

        check = Check(
            uid=uid,
            digest=cached.secret_hash,
            run=lambda: self._probe(namespace, refs, spec, request.name),
            judge=judge,
            due=due,
        )
        return await probe_when_due(self, self._rules, check, request, obj, base)

    def _events(self, obj: Mapping[str, Any], old: Mapping[str, Any], verdict: Verdict) -> None:
        before = find_condition(old.get("conditions"), Type.READY)
        was_ready = before is not None and before.get("status") == TRUE
        status, reason, message = verdict.ready
        if status == TRUE:
            if before is not None and not was_ready:
                # a recovery; becoming Ready at the first probe is news for the status
                # only (10,000 providers created at once would cost 10,000 Event writes)
                self.recorder.event(obj, "Normal", "ProviderReady", message)
            insecure_before = (
                before is not None and was_ready and INSECURE_NOTE in str(before.get("message"))
            )
            if INSECURE_NOTE in message and not insecure_before:
                self.recorder.event(obj, "Warning", "InsecureTLS", INSECURE_NOTE)
            return
        if same_condition(before, verdict.ready):
            return
        if reason in _SECRET_REASONS or reason == Reason.INVALID_SPEC:
            self.recorder.event(obj, "Warning", reason, message)
        else:
            self.recorder.event(obj, "Warning", "ProbeFailed", f"{reason}: {message}")
