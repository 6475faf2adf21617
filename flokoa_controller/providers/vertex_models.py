"""The Vertex AI model check: the catalog, then the project and location.

1. The publisher-model GET (`GET {base}/v1beta1/publishers/{publisher}/models/{model}`)
   proves the model exists in the catalog (404: `ModelNotFound`) and gives its
   `launchStage` (`DEPRECATED` marks a deprecated model; see `providers/models.py`).
2. For Google's own models (publisher `google`, the Gemini family), `countTokens` in the
   provider's project and location
   (`POST {base}/v1/projects/{project}/locations/{location}/publishers/google/models/
   {model}:countTokens`; free, nothing is generated) proves that this project may use the
   model there with this identity: 403 is `InvalidCredentials` (the identity lacks
   `aiplatform.endpoints.predict` on the project, or the API is disabled), 404
   `ModelNotFound` (the model is not served in that location).
3. Partner models (any other publisher: `anthropic/...`, `meta/...`) have no free
   project-scoped call (their token counting goes through `rawPredict`, a billed
   prediction endpoint), so the check ends at the catalog with `ModelAccessNotVerified`:
   usable (`Ready=True`), with a message saying what was and was not checked.
"""

from __future__ import annotations

from dataclasses import replace

from flokoa_controller.providers.google import (
    COUNT_TOKENS_BODY,
    count_tokens_url,
    publisher_model,
    vertex_call,
    vertex_model_url,
)
from flokoa_controller.providers.http import ProbeHTTP
from flokoa_controller.providers.models import (
    DEPRECATED_VERTEX_LAUNCH_STAGES,
    ModelDetails,
    lifecycle_of,
)
from flokoa_controller.providers.result import ProbeResult, Reason
from flokoa_controller.providers.target import ProbeTarget


async def check_model(target: ProbeTarget, model: str, http: ProbeHTTP) -> ProbeResult:
    """Check `model` in the catalog and, for Google models, in the project and location."""
    assert target.vertex is not None
    project, location = target.vertex.project_id, target.vertex.location
    publisher, name = publisher_model(model)
    subject = f'model "{model}"'
    result, body = await vertex_call(
        target, http, vertex_model_url(target, model), "model", subject
    )
    if not result.ok or result.rate_limited or body is None:
        return result
    lifecycle = lifecycle_of(
        "launchStage", body.get("launchStage"), DEPRECATED_VERTEX_LAUNCH_STAGES
    )
    details = ModelDetails(lifecycle=lifecycle) if lifecycle is not None else None
    where = f'project "{project}" in location {location}'
    if publisher != "google":
        return replace(
            result,
            reason=Reason.MODEL_ACCESS_NOT_VERIFIED.value,
            message=(
                f"{subject} exists in the Vertex AI catalog (publisher {publisher}), but "
                f"whether {where} may use it cannot be checked for free: partner models "
                "have no free project-scoped call (enable it in Model Garden)"
            ),
            model=details,
        )
    counted, _ = await vertex_call(
        target,
        http,
        count_tokens_url(target, name),
        "model",
        subject,
        method="POST",
        data=COUNT_TOKENS_BODY,
    )
    if counted.reason == Reason.MODEL_NOT_FOUND.value:
        return replace(
            counted,
            message=f"{subject} is in the catalog but not available to {where}: {counted.message}",
        )
    if counted.reason == Reason.INVALID_CREDENTIALS.value:
        return replace(
            counted,
            message=(
                f"{subject}: {where} refused countTokens (missing "
                f"aiplatform.endpoints.predict, or the Vertex AI API disabled): {counted.message}"
            ),
        )
    if not counted.ok:
        return counted
    return replace(counted, message=f"{counted.message} ({where})", model=details)
