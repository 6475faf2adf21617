"""What a model check learnt, as Model status: resolvedModel, memberModels, Deprecated."""

from __future__ import annotations

from datetime import UTC, datetime

from flokoa_controller.controllers.conditions import desired_status as model_status
from flokoa_controller.controllers.model import _check_verdict as check_verdict
from flokoa_controller.controllers.model import (
    deprecation,
    resolved_fields,
)
from flokoa_controller.providers.models import Lifecycle, ModelDetails, camel
from flokoa_controller.providers.result import ProbeResult

NOW = datetime(2026, 1, 1, tzinfo=UTC)
READY = ("True", "ProviderIsReady", "ready")


def found(
    details: ModelDetails | None, *, ok: bool = True, reason: str = "ProbeSucceeded"
) -> ProbeResult:
    return ProbeResult(ok, reason, "model found", "https://x", 200, 0.1, model=details)


def test_reasons_come_from_the_providers_words() -> None:
    assert Lifecycle("modelLifecycle.status", "LEGACY", True).reason == "ModelLifecycleLegacy"
    assert Lifecycle("launchStage", "DEPRECATED", True).reason == "LaunchStageDeprecated"
    assert camel("PUBLIC_PREVIEW") == camel("public-preview") == "PublicPreview"
    assert camel("!!") == "Unknown"


def test_deprecation_and_resolved_fields() -> None:
    legacy = found(ModelDetails(lifecycle=Lifecycle("modelLifecycle.status", "LEGACY", True)))
    status, reason, message = deprecation(legacy)  # type: ignore[misc]
    assert (status, reason) == ("True", "ModelLifecycleLegacy")
    assert "modelLifecycle.status LEGACY" in message
    active = found(ModelDetails(lifecycle=Lifecycle("modelLifecycle.status", "ACTIVE", False)))
    assert deprecation(active) == (
        "False",
        "NotDeprecated",
        "the provider reports modelLifecycle.status ACTIVE",
    )
    assert deprecation(found(None)) is None
    profile = found(ModelDetails(resolved="m", members=("arn:a", "arn:b")))
    assert resolved_fields(profile) == {"resolvedModel": "m", "memberModels": ["arn:a", "arn:b"]}
    assert resolved_fields(found(None)) == {}


def test_deprecated_is_kept_on_failures_and_dropped_when_no_lifecycle_is_reported() -> None:
    legacy = found(ModelDetails(lifecycle=Lifecycle("launchStage", "DEPRECATED", True)))
    status = model_status({}, {}, check_verdict(legacy, READY), 1, NOW)
    types = [c["type"] for c in status["conditions"]]
    assert types == ["Ready", "ProviderReady", "ModelAvailable", "Deprecated"]
    assert status["ready"] is True
    # a transient failure says nothing about the lifecycle: the condition stays
    failing = ProbeResult(False, "Timeout", "slow", "", None, 1.0, retryable=True)
    after = model_status(status, {}, check_verdict(failing, READY), 1, NOW)
    assert "Deprecated" in [c["type"] for c in after["conditions"]]
    # found, and no lifecycle reported (another model or provider): the condition goes
    moved = model_status(status, {}, check_verdict(found(None), READY), 2, NOW)
    assert "Deprecated" not in [c["type"] for c in moved["conditions"]]
