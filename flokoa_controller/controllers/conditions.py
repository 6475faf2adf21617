"""Condition maths: the ``status.conditions`` list of ModelProviders and Models.

Conditions are kept as plain JSON dictionaries (what the API server stores), so a desired
status can be compared with the observed one by equality and written as a merge patch.

Rules (metav1.Condition semantics):

- one entry per ``type``; ``status`` is ``"True"``, ``"False"`` or ``"Unknown"``;
- ``lastTransitionTime`` changes only when ``status`` flips, never when only the reason,
  message or observedGeneration change;
- ``reason`` is a CamelCase word naming the cause, never the condition type itself when the
  status is not True (``Ready=False reason=Ready`` tells the reader nothing);
- ``observedGeneration`` is the ``metadata.generation`` the condition was computed from.

The condition types and reasons used by the two reconcilers are listed here, so status,
events, metrics and docs share one vocabulary.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol, TypedDict

__all__ = [
    "FALSE",
    "TRUE",
    "UNKNOWN",
    "Cond",
    "Condition",
    "ConditionStatus",
    "ConditionVerdict",
    "Reason",
    "Type",
    "desired_status",
    "find_condition",
    "format_time",
    "is_camel_case",
    "parse_time",
    "set_condition",
    "set_conditions",
    "status_consistent",
]

ConditionStatus = Literal["True", "False", "Unknown"]
"""The three values of a condition's ``status``."""

TRUE: Final[ConditionStatus] = "True"
"""The condition holds."""
FALSE: Final[ConditionStatus] = "False"
"""The condition does not hold."""
UNKNOWN: Final[ConditionStatus] = "Unknown"
"""Not known (yet), e.g. credentials cannot be judged while the Secret is missing."""

Cond = tuple[ConditionStatus, str, str]
"""``(status, reason, message)`` of one condition."""


class Condition(TypedDict):
    """One entry of ``status.conditions`` (the fields of metav1.Condition)."""

    type: str
    status: ConditionStatus
    observedGeneration: int
    lastTransitionTime: str
    reason: str
    message: str


class Type:
    """Condition types."""

    READY: Final = "Ready"
    """Summary: the resource can be used (ModelProvider and Model)."""
    SECRET_RESOLVED: Final = "SecretResolved"
    """ModelProvider: every referenced Secret key exists and holds a well-formed value."""
    CREDENTIALS_VALID: Final = "CredentialsValid"
    """ModelProvider: the provider accepted the credentials on the last probe."""
    ENDPOINT_REACHABLE: Final = "EndpointReachable"
    """ModelProvider: the endpoint answered the last probe over the configured network path."""
    PROVIDER_READY: Final = "ProviderReady"
    """Model: the referenced ModelProvider exists and is Ready."""
    MODEL_AVAILABLE: Final = "ModelAvailable"
    """Model: the provider reports that the model exists for these credentials."""
    DEPRECATED: Final = "Deprecated"
    """Model: the provider reports the model as deprecated (True) or not (False); absent
    where the provider reports no lifecycle. Ready stays True for a deprecated model."""


class Reason:
    """Condition reasons (CamelCase). Failure reasons double as the ``Ready=False`` reason."""

    # -- success ------------------------------------------------------------------------
    PROBE_SUCCEEDED: Final = "ProbeSucceeded"
    """Ready=True: the authenticated probe succeeded."""
    RATE_LIMITED: Final = "RateLimited"
    """Ready=True: the probe was answered 429; reachable and authenticated, but throttled."""
    SECRET_FOUND: Final = "SecretFound"
    """SecretResolved=True: every referenced Secret key was found and is well formed."""
    NO_SECRET_REFERENCED: Final = "NoSecretReferenced"
    """SecretResolved=True: nothing to resolve (ambient identity such as IRSA or ADC)."""
    CREDENTIALS_ACCEPTED: Final = "CredentialsAccepted"
    """CredentialsValid=True."""
    ENDPOINT_RESPONDED: Final = "EndpointResponded"
    """EndpointReachable=True: the endpoint answered with an HTTP response."""
    MODEL_FOUND: Final = "ModelFound"
    """ModelAvailable=True / Model Ready=True."""
    PROVIDER_IS_READY: Final = "ProviderIsReady"
    """ProviderReady=True (a Model's provider)."""
    DEPLOYMENT_NOT_VERIFIED: Final = "DeploymentNotVerified"
    """Model Ready=True, ModelAvailable=Unknown: a classic Azure OpenAI deployment, which
    cannot be checked for free; the provider (key and resource) was checked."""
    MODEL_ACCESS_NOT_VERIFIED: Final = "ModelAccessNotVerified"
    """Model Ready=True, ModelAvailable=Unknown: a Vertex AI partner model found in the
    catalog, whose use by the project has no free check."""
    NOT_DEPRECATED: Final = "NotDeprecated"
    """Deprecated=False: the provider's lifecycle word (in the message) is not a deprecation.
    Deprecated=True reasons are the provider's own words, e.g. ``ModelLifecycleLegacy``
    (Bedrock ``modelLifecycle.status: LEGACY``), ``LaunchStageDeprecated`` (Vertex)."""

    # -- not evaluated ------------------------------------------------------------------
    NOT_PROBED: Final = "NotProbed"
    """Unknown: no probe could be made because an earlier step failed."""
    NOT_CHECKED: Final = "NotChecked"
    """Unknown: the model could not be checked because an earlier step failed."""
    NOT_VERIFIED: Final = "NotVerified"
    """CredentialsValid=Unknown: the endpoint failed before it could judge the credentials."""

    # -- failures: spec and Secrets -----------------------------------------------------
    INVALID_SPEC: Final = "InvalidSpec"
    """The spec breaks a validation rule (the message quotes the rule)."""
    SECRET_NOT_FOUND: Final = "SecretNotFound"
    """A referenced Secret does not exist in the resource's namespace."""
    SECRET_KEY_NOT_FOUND: Final = "SecretKeyNotFound"
    """A referenced Secret exists but lacks the referenced key."""
    INVALID_SECRET: Final = "InvalidSecret"
    """A referenced value is empty, whitespace or malformed."""
    INVALID_CA_CERTIFICATE: Final = "InvalidCACertificate"
    """The CA Secret's value is not a PEM bundle of X.509 certificates."""
    SECRET_ACCESS_DENIED: Final = "SecretAccessDenied"
    """The API server refused to let the controller read a referenced Secret (RBAC)."""

    # -- failures: probe ----------------------------------------------------------------
    INVALID_CREDENTIALS: Final = "InvalidCredentials"
    """The provider answered 401/403: wrong, revoked or insufficient credentials."""
    CREDENTIALS_UNAVAILABLE: Final = "CredentialsUnavailable"
    """No ambient credentials were found (AWS default chain or Google ADC came up empty)."""
    ENDPOINT_NOT_FOUND: Final = "EndpointNotFound"
    """The provider's list endpoint answered 404: wrong base URL or deployment path."""
    PROVIDER_UNAVAILABLE: Final = "ProviderUnavailable"
    """The provider answered 5xx (or an unexpected status): retried with backoff."""
    TIMEOUT: Final = "Timeout"
    """The probe did not complete within ``timeoutSeconds``."""
    TLS_VERIFICATION_FAILED: Final = "TLSVerificationFailed"
    """The endpoint's certificate was not trusted by the configured CAs."""
    UNREACHABLE: Final = "Unreachable"
    """DNS failure, connection refused or reset, proxy failure."""
    DESTINATION_NOT_ALLOWED: Final = "DestinationNotAllowed"
    """EndpointReachable=False: the administrator's destination policy
    (``--deny-destinations``, ``--allow-destinations``) refuses the endpoint, a token
    endpoint or the proxy's CONNECT target; nothing was sent."""
    UNEXPECTED_RESPONSE: Final = "UnexpectedResponse"
    """A redirect, another 4xx, or a 2xx that is not the provider's JSON: wrong base URL?"""
    PROBE_ERROR: Final = "ProbeError"
    """The probe could not be run (unexpected local error); retried with backoff."""

    # -- failures: cloud identity (nothing reached the provider's API) -----------------
    AMBIENT_IDENTITY_NOT_ALLOWED: Final = "AmbientIdentityNotAllowed"
    """The spec needs the operator's own cloud identity (no credential Secret, no
    serviceAccountName) and the namespace is not in ``--ambient-identity-namespaces``."""
    SERVICE_ACCOUNT_NOT_FOUND: Final = "ServiceAccountNotFound"
    """``serviceAccountName`` names no ServiceAccount in the ModelProvider's namespace."""
    SERVICE_ACCOUNT_ANNOTATION_MISSING: Final = "ServiceAccountAnnotationMissing"
    """The ServiceAccount lacks (or has a malformed) cloud annotation: IRSA role ARN, Azure
    client/tenant ID, Google service-account email."""
    TOKEN_REQUEST_FORBIDDEN: Final = "TokenRequestForbidden"
    """RBAC refused the ServiceAccount read or its TokenRequest (``serviceaccounts`` get,
    ``serviceaccounts/token`` create)."""
    TOKEN_REQUEST_FAILED: Final = "TokenRequestFailed"
    """The TokenRequest failed otherwise; retried with backoff."""
    TOKEN_EXCHANGE_FAILED: Final = "TokenExchangeFailed"
    """The cloud refused to exchange the token (AWS STS, Google STS/IAM, Entra ID); the
    message quotes its error code, never its body."""
    TOKEN_ENDPOINT_NOT_ALLOWED: Final = "TokenEndpointNotAllowed"
    """A service-account key's ``token_uri`` is not Google's token endpoint (nothing sent;
    ``--google-token-uris``)."""
    IDENTITY_ENDPOINT_NOT_ALLOWED: Final = "IdentityEndpointNotAllowed"
    """A credential from a ServiceAccount or the operator's identity would go to a host that
    is not the provider's own API (nothing sent; ``--identity-allowed-hosts``)."""
    WORKLOAD_IDENTITY_NOT_CONFIGURED: Final = "WorkloadIdentityNotConfigured"
    """A workload identity setting the administrator must give is unset
    (``--google-workload-identity-audience``)."""

    # -- failures: Model ----------------------------------------------------------------
    PROVIDER_NOT_FOUND: Final = "ProviderNotFound"
    """The Model's providerRef names no ModelProvider in the Model's namespace."""
    PROVIDER_NOT_READY: Final = "ProviderNotReady"
    """The Model's ModelProvider exists but is not Ready."""
    MODEL_NOT_FOUND: Final = "ModelNotFound"
    """The provider answered 404 for the model."""
    MODEL_ACCESS_NOT_GRANTED: Final = "ModelAccessNotGranted"
    """Bedrock: the model exists but the account has no access to it
    (``authorizationStatus``/``entitlementAvailability`` of GetFoundationModelAvailability)."""
    MODEL_AGREEMENT_NOT_ACCEPTED: Final = "ModelAgreementNotAccepted"
    """Bedrock: the model exists but its offer agreement (EULA) is not accepted."""
    MODEL_NOT_OFFERED_IN_REGION: Final = "ModelNotOfferedInRegion"
    """Bedrock: the model exists but is not offered in the provider's region."""


_CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]*$")


def is_camel_case(reason: str) -> bool:
    """Whether ``reason`` is a CamelCase word as Kubernetes condition reasons must be."""
    return bool(_CAMEL.match(reason))


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC at second precision (metav1.Time's wire format), e.g. ``...T10:30:00Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _format_second(int(moment.replace(microsecond=0).timestamp()))


@functools.lru_cache(maxsize=8)
def _format_second(second: int) -> str:
    # a status carries the same second up to five times, and a burst of reconciles too
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp written by :func:`format_time` (or any ISO 8601 with zone).

    Returns ``None`` for anything that is not a parsable string, so a status edited by hand
    cannot break the reconciler.
    """
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def find_condition(conditions: object, type_: str) -> Mapping[str, Any] | None:
    """Return the condition of type ``type_`` in an observed ``status.conditions`` (or None).

    Tolerates malformed input (not a list, entries that are not objects).
    """
    if not isinstance(conditions, list):
        return None
    for entry in conditions:
        if isinstance(entry, Mapping) and entry.get("type") == type_:
            return entry
    return None


def set_condition(
    conditions: Iterable[Mapping[str, Any]] | None,
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Return ``conditions`` with the ``type_`` entry set; the input is not modified.

    ``lastTransitionTime`` is kept from the existing entry when ``status`` is unchanged and
    set to ``now`` otherwise (new entry, or a flip). Entries of other types are kept as they
    are (another writer's), in their order; a new type is appended. Raises ``ValueError``
    for a reason that is not CamelCase or a non-True condition whose reason is its own type.
    """
    if not is_camel_case(reason):
        raise ValueError(f"condition reason must be CamelCase, got {reason!r}")
    if status != TRUE and reason == type_:
        raise ValueError(f"a {type_}={status} condition needs a reason other than {type_!r}")

    def entry(transition: str) -> dict[str, Any]:
        return dict(
            Condition(
                type=type_,
                status=status,
                observedGeneration=generation,
                lastTransitionTime=transition,
                reason=reason,
                message=message,
            )
        )

    result: list[dict[str, Any]] = []
    replaced = False
    for existing in conditions or ():
        if not isinstance(existing, Mapping):
            continue
        if existing.get("type") != type_:
            result.append(dict(existing))
            continue
        if replaced:
            continue  # a duplicate entry of the same type: drop it
        transition = existing.get("lastTransitionTime")
        keep = existing.get("status") == status and isinstance(transition, str) and transition
        result.append(entry(str(transition) if keep else format_time(now)))
        replaced = True
    if not replaced:
        result.append(entry(format_time(now)))
    return result


def set_conditions(
    conditions: object,
    updates: Sequence[tuple[str, ConditionStatus, str, str]],
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Apply several ``(type, status, reason, message)`` updates with :func:`set_condition`.

    ``conditions`` may be anything read from an object (not a list: treated as empty).
    """
    result: list[dict[str, Any]] = (
        [dict(c) for c in conditions if isinstance(c, Mapping)]
        if isinstance(conditions, list)
        else []
    )
    for type_, status, reason, message in updates:
        result = set_condition(result, type_, status, reason, message, generation, now)
    return result


class ConditionVerdict(Protocol):
    """The conditions a reconcile decided on (each reconciler's verdict type has them)."""

    @property
    def ready(self) -> Cond:
        """``Ready``: the summary; its status decides ``status.ready``."""
        ...

    def updates(self) -> list[tuple[str, ConditionStatus, str, str]]:
        """Every condition as a ``set_conditions`` update, Ready first."""
        ...

    def removed(self) -> Collection[str]:
        """Condition types to drop from the status (e.g. a ``Deprecated`` no longer known)."""
        ...


def desired_status(
    status: Mapping[str, Any],
    base: Mapping[str, Any],
    verdict: ConditionVerdict,
    generation: int,
    now: datetime,
) -> dict[str, Any]:
    """``base`` plus ``conditions`` (the observed ``status``'s, updated by ``verdict`` for
    ``generation`` at ``now``, without those ``verdict`` removes) and ``ready`` (whether
    ``verdict.ready`` is True)."""
    conditions = set_conditions(status.get("conditions"), verdict.updates(), generation, now)
    removed = verdict.removed()
    if removed:
        conditions = [c for c in conditions if c.get("type") not in removed]
    return {**base, "ready": verdict.ready[0] == TRUE, "conditions": conditions}


def status_consistent(status: Mapping[str, Any], base: Mapping[str, Any]) -> bool:
    """Whether ``status`` is what the controller would have written: the ``base`` fields
    (provider, observedGeneration, and a provider's endpoint and secretHash) as computed,
    and ``ready`` in line with the Ready condition. Not so after somebody else edited the
    status: the next reconcile probes (or checks) and writes it afresh instead of waiting
    for the re-validation."""
    ready = find_condition(status.get("conditions"), Type.READY)
    if status.get("ready") is not (ready is not None and ready.get("status") == TRUE):
        return False
    return all(status.get(k) == v for k, v in base.items() if k != "lastProbeTime")
