"""The Bedrock model check: inference profiles, foundation models and model access.

Every call is a free, signed control-plane GET (`bedrock.bedrock_get`), no model is invoked.

- **Inference profiles**: a system-defined profile ID (`us.anthropic.claude-...`; prefixes
  `SYSTEM_PROFILE_PREFIXES`) or an inference profile ARN
  (`arn:aws:bedrock:REGION:ACCOUNT:application-inference-profile/ID`,
  `...:inference-profile/ID`) is looked up with GetInferenceProfile
  (`GET /inference-profiles/{id}`, permission `bedrock:GetInferenceProfile`): 404 is
  `ModelNotFound`; a hit gives the member models (`models[].modelArn`, in
  `ModelDetails.members`) and, when they are one foundation model, `ModelDetails.resolved`.
  That foundation model is then checked as below in the provider's region (lifecycle and
  access; one missing from the region's catalog leaves the profile found, unchecked).
- **Foundation models** (an ID, or a `foundation-model/` ARN): GetFoundationModel
  (`GET /foundation-models/{id}`) — 404 is `ModelNotFound`; its `modelLifecycle.status`
  (`LEGACY` means deprecated) — then GetFoundationModelAvailability
  (`GET /foundation-model-availability/{id}`, permission
  `bedrock:GetFoundationModelAvailability`), whose answer decides:

  | field | value | reason |
  |---|---|---|
  | `regionAvailability` | not `AVAILABLE` | `ModelNotOfferedInRegion` |
  | `authorizationStatus` | not `AUTHORIZED` | `ModelAccessNotGranted` |
  | `entitlementAvailability` | not `AVAILABLE` | `ModelAccessNotGranted` |
  | `agreementAvailability.status` | not `AVAILABLE` | `ModelAgreementNotAccepted` |

  each message quoting the field and the API's own word. An identity not allowed to call
  GetFoundationModelAvailability (403), or an endpoint without it (404), leaves the model
  found, with a message saying access was not checked; a transient failure (5xx, timeout)
  is the check's outcome, retried with backoff.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flokoa_controller.providers.bedrock import bedrock_get
from flokoa_controller.providers.http import ProbeHTTP
from flokoa_controller.providers.models import (
    DEPRECATED_BEDROCK_LIFECYCLES,
    Lifecycle,
    ModelDetails,
    clean_word,
    lifecycle_of,
    members_of,
)
from flokoa_controller.providers.result import ProbeResult, Reason
from flokoa_controller.providers.target import ProbeTarget

SYSTEM_PROFILE_PREFIXES: tuple[str, ...] = (
    "us",
    "us-gov",
    "eu",
    "apac",
    "jp",
    "au",
    "ca",
    "global",
)
"""Geography prefixes of Bedrock's system-defined (cross-region) inference profile IDs."""

PROFILE_RESOURCE_TYPES = frozenset({"inference-profile", "application-inference-profile"})
"""ARN resource types GetInferenceProfile answers for."""


def _arn_resource(model: str) -> tuple[str, str] | None:
    """`(type, id)` of a Bedrock ARN (`arn:PARTITION:bedrock:REGION:ACCOUNT:TYPE/ID`)."""
    parts = model.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "bedrock":
        return None
    kind, _, ident = parts[5].partition("/")
    return (kind, ident) if ident else None


def profile_identifier(model: str) -> str | None:
    """The GetInferenceProfile identifier `model` names (itself), or None when it is not
    an inference profile ID or ARN."""
    arn = _arn_resource(model)
    if arn is not None:
        return model if arn[0] in PROFILE_RESOURCE_TYPES else None
    prefix, dot, rest = model.partition(".")
    return model if dot and rest and prefix in SYSTEM_PROFILE_PREFIXES else None


def foundation_model_id(model: str) -> str:
    """The model ID of a `foundation-model/` ARN; any other name as it is."""
    arn = _arn_resource(model)
    if arn is not None and arn[0] == "foundation-model":
        return arn[1]
    return model


_AVAILABILITY_ADVICE: dict[str, tuple[Reason, str]] = {
    "regionAvailability": (
        Reason.MODEL_NOT_OFFERED_IN_REGION,
        "{subject} is not offered in region {region} (regionAvailability {word})",
    ),
    "authorizationStatus": (
        Reason.MODEL_ACCESS_NOT_GRANTED,
        "{subject} exists but this account has no access to it "
        "(authorizationStatus {word}): request model access in the Bedrock "
        "console, or allow the identity to use the model",
    ),
    "entitlementAvailability": (
        Reason.MODEL_ACCESS_NOT_GRANTED,
        "{subject} exists but this account is not entitled to it "
        "(entitlementAvailability {word}): request model access in the Bedrock "
        "console",
    ),
    "agreementAvailability.status": (
        Reason.MODEL_AGREEMENT_NOT_ACCEPTED,
        "{subject} exists but its offer agreement is not accepted "
        "(agreementAvailability.status {word}): accept the model's EULA in the "
        "Bedrock console's model access page",
    ),
}
"""GetFoundationModelAvailability's fields, in the order they are judged: the reason and the
message (`{subject}`, `{region}`, `{word}`) when one holds a word other than the allowed one."""


def availability_verdict(
    body: dict[str, Any], subject: str, region: str
) -> tuple[Reason, str] | None:
    """The reason GetFoundationModelAvailability's answer forbids using the model, with a
    message quoting the field and its word; None when the answer allows it."""
    agreement = body.get("agreementAvailability")
    words = (
        ("regionAvailability", body.get("regionAvailability"), "AVAILABLE"),
        ("authorizationStatus", body.get("authorizationStatus"), "AUTHORIZED"),
        ("entitlementAvailability", body.get("entitlementAvailability"), "AVAILABLE"),
        (
            "agreementAvailability.status",
            agreement.get("status") if isinstance(agreement, dict) else None,
            "AVAILABLE",
        ),
    )
    for field, value, allowed in words:
        word = clean_word(value)
        if word is not None and word != allowed:
            reason, advice = _AVAILABILITY_ADVICE[field]
            return reason, advice.format(subject=subject, region=region, word=word)
    return None


async def _access(
    target: ProbeTarget, http: ProbeHTTP, model_id: str, subject: str
) -> tuple[ProbeResult | None, str]:
    """GetFoundationModelAvailability: a refusal (or a transient failure) as a result to
    report, else None and a note for the success message."""
    assert target.bedrock is not None
    result, body = await bedrock_get(
        target, http, "model", ("foundation-model-availability", model_id), subject=subject
    )
    if result.ok and not result.rate_limited and body is not None:
        verdict = availability_verdict(body, subject, target.bedrock.region)
        if verdict is None:
            return None, "access granted"
        reason, message = verdict
        return replace(result, ok=False, reason=reason.value, message=message, retryable=False), ""
    if result.retryable and not result.rate_limited:
        return result, ""
    why = f"HTTP {result.http_status}" if result.http_status else result.reason
    return None, f"access not checked (GetFoundationModelAvailability: {why})"


async def _foundation_model(
    target: ProbeTarget, http: ProbeHTTP, model_id: str, subject: str
) -> tuple[ProbeResult, Lifecycle | None, str]:
    """GetFoundationModel, then its availability: the result, the model's lifecycle and,
    for a usable model, a note on access and lifecycle for the message."""
    result, body = await bedrock_get(
        target, http, "model", ("foundation-models", model_id), subject=subject
    )
    if not result.ok or result.rate_limited:
        return result, None, ""
    details = (body or {}).get("modelDetails")
    life = details.get("modelLifecycle") if isinstance(details, dict) else None
    lifecycle = lifecycle_of(
        "modelLifecycle.status",
        life.get("status") if isinstance(life, dict) else None,
        DEPRECATED_BEDROCK_LIFECYCLES,
    )
    refused, note = await _access(target, http, model_id, subject)
    if refused is not None:
        return refused, lifecycle, ""
    if lifecycle is not None and lifecycle.deprecated:
        note += f"; deprecated (modelLifecycle.status {lifecycle.word})"
    return result, lifecycle, note


async def _profile(
    target: ProbeTarget, http: ProbeHTTP, model: str, identifier: str
) -> ProbeResult:
    subject = f'inference profile "{model}"'
    result, body = await bedrock_get(
        target, http, "model", ("inference-profiles", identifier), subject=subject
    )
    if not result.ok or result.rate_limited or body is None:
        return result
    raw = body.get("models")
    members = (
        members_of(m.get("modelArn") for m in raw if isinstance(m, dict))
        if isinstance(raw, list)
        else ()
    )
    ids = list(dict.fromkeys(foundation_model_id(arn) for arn in members))
    resolved = ids[0] if len(ids) == 1 else None
    kind = clean_word(body.get("type"))
    what = f"{kind.replace('_', '-').lower()} profile, " if kind else ""
    routes = f"routes to {resolved}" if resolved else f"{len(members)} member models"
    details = ModelDetails(resolved=resolved, members=members)
    if resolved is None:
        return replace(result, message=f"{result.message} ({what}{routes})", model=details)
    # the model it routes to, in the provider's region: lifecycle and access
    checked, lifecycle, note = await _foundation_model(
        target, http, resolved, f'{subject} (model "{resolved}")'
    )
    details = replace(details, lifecycle=lifecycle)
    if checked.reason == Reason.MODEL_NOT_FOUND.value:
        note = f"{resolved} is not in this region's catalog: lifecycle and access not checked"
    elif not checked.ok or checked.rate_limited:
        return replace(checked, model=details)
    return replace(result, message=f"{result.message} ({what}{routes}; {note})", model=details)


async def check_model(target: ProbeTarget, model: str, http: ProbeHTTP) -> ProbeResult:
    """Check `model` (a foundation model or an inference profile) for `target`'s account."""
    identifier = profile_identifier(model)
    if identifier is not None:
        return await _profile(target, http, model, identifier)
    model_id = foundation_model_id(model)
    result, lifecycle, note = await _foundation_model(target, http, model_id, f'model "{model}"')
    resolved = model_id if model_id != model else None
    details = ModelDetails(resolved=resolved, lifecycle=lifecycle)
    message = f"{result.message} ({note})" if note else result.message
    return replace(result, message=message, model=None if details.empty else details)
