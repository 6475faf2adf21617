"""Anthropic: `GET {base}/v1/models` and `GET {base}/v1/models/{id}`.

Auth is `x-api-key: KEY` with the required `anthropic-version` header (`anthropic_version`,
default `2023-06-01`). A base URL that already ends in `/v1` is not given a second one.
The model check reports the dated ID an alias resolves to (`ProbeResult.model`).
"""

from __future__ import annotations

from flokoa_controller.providers.endpoints import api_root
from flokoa_controller.providers.http import ProbeHTTP
from flokoa_controller.providers.models import with_resolved_id
from flokoa_controller.providers.probe import join_url, probe_get, probe_json
from flokoa_controller.providers.result import ProbeResult
from flokoa_controller.providers.target import ProbeTarget


def _headers(target: ProbeTarget) -> dict[str, str]:
    headers = {"anthropic-version": target.anthropic_version}
    if target.api_key:
        headers["x-api-key"] = target.api_key
    return headers


def models_url(target: ProbeTarget, model: str | None = None) -> str:
    """The list URL (`model` None) or the get-model URL for `target`."""
    base = api_root(target).rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    return join_url(base, "models") if model is None else join_url(base, "models", model)


async def probe_provider(target: ProbeTarget, http: ProbeHTTP) -> ProbeResult:
    """List models: reachability plus credential check, free of charge."""
    return await probe_get(http, target, "provider", models_url(target), _headers(target))


async def probe_model(target: ProbeTarget, model: str, http: ProbeHTTP) -> ProbeResult:
    """Get one model: 404 means no such model. An alias (`claude-sonnet-4-0`) is answered
    with the dated model it points to (`claude-sonnet-4-20250514`): `ModelDetails.resolved`."""
    result, body = await probe_json(
        http,
        target,
        "model",
        models_url(target, model),
        _headers(target),
        subject=f'model "{model}"',
    )
    return with_resolved_id(result, body, model)
