"""OpenAI, OpenAI-compatible servers and Azure OpenAI (classic and v1 API).

- `openai`: `GET {base}/models` and `GET {base}/models/{id}` with `Authorization: Bearer`,
  plus `OpenAI-Organization` / `OpenAI-Project` when set.
- `azure-v1` (base URL ending in `/openai/v1`): `GET {base}/models` and
  `GET {base}/models/{id}` with the `api-key` header.
- `azure-classic`: `GET {resource}/openai/models?api-version=V` and
  `GET {resource}/openai/models/{id}?api-version=V` with the `api-key` header.

For classic Azure, `{resource}` is the base URL up to its `/openai` path segment (so a
`.../openai/deployments/{name}` base URL works) and `V` is `api_version`, else an
`api-version` default header, else `DEFAULT_AZURE_API_VERSION`. The Azure model probe checks
that the model exists for the resource; Azure documents no free per-deployment check. On
the v1 API `api-version` is only added when `api_version` is set.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from flokoa_controller.providers.http import ProbeHTTP
from flokoa_controller.providers.probe import join_url, probe_get
from flokoa_controller.providers.result import ProbeResult
from flokoa_controller.providers.target import (
    DEFAULT_AZURE_API_VERSION,
    DEFAULT_OPENAI_BASE_URL,
    ProbeTarget,
    header_value,
)


def azure_api_version(target: ProbeTarget) -> str | None:
    """The `api-version` query value a request to `target` carries (None: none)."""
    if target.api_version:
        return target.api_version
    if target.flavor == "azure-v1":
        return None
    return header_value(target.default_headers, "api-version") or DEFAULT_AZURE_API_VERSION


def azure_resource_root(base_url: str) -> str:
    """`https://r.openai.azure.com/openai/deployments/d` → `https://r.openai.azure.com`."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    index = path.find("/openai")
    while index != -1 and not (len(path) == index + 7 or path[index + 7] == "/"):
        index = path.find("/openai", index + 1)
    if index != -1:
        path = path[:index]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _headers(target: ProbeTarget) -> dict[str, str]:
    headers: dict[str, str] = {}
    if target.flavor in ("azure-classic", "azure-v1"):
        if target.api_key:
            headers["api-key"] = target.api_key
        return headers
    if target.api_key:
        headers["Authorization"] = f"Bearer {target.api_key}"
    if target.organization_id:
        headers["OpenAI-Organization"] = target.organization_id
    if target.project:
        headers["OpenAI-Project"] = target.project
    return headers


def models_url(target: ProbeTarget, model: str | None = None) -> str:
    """The list URL (`model` None) or the get-model URL for `target`."""
    segments = ("models",) if model is None else ("models", model)
    base = target.base_url or DEFAULT_OPENAI_BASE_URL
    version = azure_api_version(target) if target.flavor.startswith("azure") else None
    query = urlencode({"api-version": version}) if version else ""
    if target.flavor == "azure-classic":
        return join_url(azure_resource_root(base), "openai", *segments, query=query)
    return join_url(base, *segments, query=query)


async def probe_provider(target: ProbeTarget, http: ProbeHTTP) -> ProbeResult:
    """List models: reachability plus credential check, free of charge."""
    return await probe_get(http, target, "provider", models_url(target), _headers(target))


async def probe_model(target: ProbeTarget, model: str, http: ProbeHTTP) -> ProbeResult:
    """Get one model: 404 means this account has no such model."""
    return await probe_get(
        http,
        target,
        "model",
        models_url(target, model),
        _headers(target),
        subject=f'model "{model}"',
    )
