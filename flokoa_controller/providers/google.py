"""Google: the Gemini API (API key) and Vertex AI (OAuth2 access token).

Gemini (`flavor == "gemini"`): `GET {base}/v1beta/models` and `GET {base}/v1beta/models/{id}`
with `x-goog-api-key` (never `Bearer`, which Gemini rejects); the list is `models[]`. Gemini
answers an unknown key with 400 `API_KEY_INVALID`, reported as `InvalidCredentials`.

Vertex AI (`flavor == "vertex"`): an access token for scope `cloud-platform` from
`http.identity` (`providers.identity`): the service-account key (`service_account_info`: an
RS256 JWT grant, signed with google-auth's `crypt`, POSTed through `ProbeHTTP` to the key's
`token_uri`, which must be Google's), the ModelProvider's ServiceAccount (Workload Identity
Federation) or, in an allowed namespace, the operator's Application Default Credentials.
Tokens are cached in memory; a provider probe always obtains a fresh one (so a revoked key or
trust shows at the next re-validation), model checks reuse it until shortly before expiry.
Nothing is sent when the identity policy refuses the target (`check_identity`).

- Provider probe: `GET {base}/v1/projects/{project}/locations/{location}/models?pageSize=1`,
  the project's model-registry list. It is free and checks the token, the project, the region
  and the `aiplatform.models.list` permission at once (a wrong project or region is 403/404).
  For location `global`, which has no model registry, it is `countTokens` of
  `VERTEX_PROBE_MODEL` in the project instead (`POST .../projects/{project}/locations/global/
  publishers/google/models/{model}:countTokens`: free, no generation; it checks the token,
  the project and the `aiplatform.endpoints.predict` permission).
- Model probe: `providers/vertex_models.py` (the publisher-model GET, then `countTokens` in
  the project for Google models); `model` may be `gemini-2.0-flash` (publisher `google`),
  `anthropic/claude-...` or the full `publishers/{publisher}/models/{model}` name.

`{base}` is `base_url`, else `https://{location}-aiplatform.googleapis.com`
(`https://aiplatform.googleapis.com` for `global`): `endpoints.api_root`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flokoa_controller.providers.endpoints import api_root
from flokoa_controller.providers.http import ProbeHTTP
from flokoa_controller.providers.identity import CLOUD_PLATFORM_SCOPE as CLOUD_PLATFORM_SCOPE
from flokoa_controller.providers.identity import IdentityError, check_identity, identity_failure
from flokoa_controller.providers.probe import join_url, probe_get, probe_json
from flokoa_controller.providers.result import Check, ProbeResult, Reason, failure
from flokoa_controller.providers.target import ProbeTarget

VERTEX_PROBE_MODEL = "gemini-2.0-flash-001"
"""Publisher model fetched by the provider probe when the location is `global`."""

GEMINI_INVALID_KEY_MARKERS: tuple[bytes, ...] = (b"API_KEY_INVALID", b"API key not valid")
"""Body fragments of Gemini's 400 answer to a bad API key."""

ADC_DESCRIPTION = "application default credentials"
"""What messages call the keyless credential source."""

# google-auth logs every request and response at DEBUG (headers as they are, bodies with
# only some fields hashed). Secrets never reach the logs, even when the operator runs at
# debug level: google-auth's loggers stay at INFO or above.
for _name in ("google.auth", "google.oauth2"):
    _logger = logging.getLogger(_name)
    if _logger.level == logging.NOTSET or _logger.level < logging.INFO:
        _logger.setLevel(logging.INFO)


class CredentialError(Exception):
    """No access token could be obtained; carries the probe reason and where it failed."""

    def __init__(self, reason: Reason, message: str, url: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.url = url


# --- Gemini --------------------------------------------------------------------------------


def _gemini_base(target: ProbeTarget) -> str:
    base = api_root(target).rstrip("/")
    last = base.rsplit("/", 1)[-1]
    if last.startswith("v1"):
        return base
    return base + "/v1beta"


def gemini_models_url(target: ProbeTarget, model: str | None = None) -> str:
    """The Gemini list URL (`model` None) or get-model URL (`models/` prefix accepted)."""
    base = _gemini_base(target)
    if model is None:
        return join_url(base, "models")
    return join_url(base, "models", model.removeprefix("models/"))


def _gemini_headers(target: ProbeTarget) -> dict[str, str]:
    return {"x-goog-api-key": target.api_key} if target.api_key else {}


# --- Vertex --------------------------------------------------------------------------------


def vertex_base(target: ProbeTarget) -> str:
    """The Vertex AI API root for `target`."""
    assert target.base_url or target.vertex is not None
    return api_root(target).rstrip("/")


def publisher_model(model: str) -> tuple[str, str]:
    """`(publisher, model)` from `name`, `publisher/name` or `publishers/p/models/name`."""
    parts = model.split("/")
    if len(parts) == 4 and parts[0] == "publishers" and parts[2] == "models":
        return parts[1], parts[3]
    if len(parts) == 2:
        return parts[0], parts[1]
    return "google", model


def vertex_model_url(target: ProbeTarget, model: str) -> str:
    """The publisher-model GET URL for `model`."""
    publisher, name = publisher_model(model)
    return join_url(vertex_base(target), "v1beta1", "publishers", publisher, "models", name)


def vertex_location_url(target: ProbeTarget, *segments: str, query: str = "") -> str:
    """`{vertex_base}/v1/projects/{project}/locations/{location}/{segments}` of `target`."""
    assert target.vertex is not None
    return join_url(
        vertex_base(target),
        "v1",
        "projects",
        target.vertex.project_id,
        "locations",
        target.vertex.location,
        *segments,
        query=query,
    )


def count_tokens_url(target: ProbeTarget, model: str) -> str:
    """The project-scoped `countTokens` URL of Google model `model` (no generation, free)."""
    return vertex_location_url(target, "publishers", "google", "models", model) + ":countTokens"


COUNT_TOKENS_BODY = b'{"contents":[{"role":"user","parts":[{"text":"ping"}]}]}'
"""The request body of a `countTokens` check (one short user turn)."""


def vertex_provider_url(target: ProbeTarget) -> str:
    """The provider-probe URL: the project's model-registry list, or for `global` (no
    registry) `countTokens` of `VERTEX_PROBE_MODEL` in the project (POST)."""
    assert target.vertex is not None
    if target.vertex.location == "global":
        return count_tokens_url(target, VERTEX_PROBE_MODEL)
    return vertex_location_url(target, "models", query="pageSize=1")


async def access_token(target: ProbeTarget, http: ProbeHTTP, *, fresh: bool = False) -> str:
    """A valid access token for `target` from `http.identity` (cached in memory; `fresh`
    exchanges anew). Raises `CredentialError`."""
    try:
        return await http.identity.google_token(target, http, fresh)
    except IdentityError as exc:
        raise CredentialError(exc.reason, exc.message, exc.url) from None


async def vertex_call(
    target: ProbeTarget,
    http: ProbeHTTP,
    url: str,
    check: Check,
    subject: str,
    *,
    method: str = "GET",
    data: bytes | None = None,
) -> tuple[ProbeResult, dict[str, Any] | None]:
    """One Vertex AI request with the target's access token, and the JSON object of a
    successful answer."""
    started = time.monotonic()
    try:
        check_identity(target, url, http.identity.settings)
        token = await access_token(target, http, fresh=check == "provider")
    except IdentityError as exc:
        return identity_failure(exc, target, subject=subject, started=started), None
    except CredentialError as exc:
        return failure(
            exc.reason,
            f"{subject + ': ' if subject else ''}{exc.message}",
            url=exc.url if "://" in exc.url else "",
            duration=time.monotonic() - started,
            secrets=target.secret_values(),
        ), None
    result, body = await probe_json(
        http,
        target,
        check,
        url,
        {"Authorization": f"Bearer {token}"},
        method=method,
        data=data,
        subject=subject,
        started=started,
        extra_secrets=(token,),
    )
    return result, body


# --- probes --------------------------------------------------------------------------------


async def probe_provider(target: ProbeTarget, http: ProbeHTTP) -> ProbeResult:
    """Gemini: list models with the API key. Vertex: token, then the project model list."""
    if target.flavor == "vertex":
        assert target.vertex is not None
        url = vertex_provider_url(target)
        if target.vertex.location == "global":
            result, _ = await vertex_call(
                target, http, url, "provider", "", method="POST", data=COUNT_TOKENS_BODY
            )
        else:
            result, _ = await vertex_call(target, http, url, "provider", "")
        return result
    return await probe_get(
        http,
        target,
        "provider",
        gemini_models_url(target),
        _gemini_headers(target),
        invalid_key_markers=GEMINI_INVALID_KEY_MARKERS,
    )


async def probe_model(target: ProbeTarget, model: str, http: ProbeHTTP) -> ProbeResult:
    """Gemini: get `models/{model}`. Vertex: `providers/vertex_models.py`."""
    subject = f'model "{model}"'
    if target.flavor == "vertex":
        from flokoa_controller.providers.vertex_models import check_model

        return await check_model(target, model, http)
    return await probe_get(
        http,
        target,
        "model",
        gemini_models_url(target, model),
        _gemini_headers(target),
        subject=subject,
        invalid_key_markers=GEMINI_INVALID_KEY_MARKERS,
    )
