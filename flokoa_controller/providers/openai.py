"""OpenAI, OpenAI-compatible servers and Azure OpenAI (classic and v1 API).

- `openai`: `GET {base}/models` and `GET {base}/models/{id}` with `Authorization: Bearer`,
  plus `OpenAI-Organization` / `OpenAI-Project` when set.
- `azure-v1` (base URL ending in `/openai/v1`): `GET {base}/models` and
  `GET {base}/models/{id}` with the `api-key` header; a 404 on the model check is
  `DeploymentNotVerified` (see `v1_deployment_not_verified`), not `ModelNotFound`.
- `azure-classic`: `GET {resource}/openai/models?api-version=V` with the `api-key` header;
  the model check makes no request (see below).
- Azure (classic and v1) with `spec.serviceAccountName`: an Entra ID token for scope
  `https://cognitiveservices.azure.com/.default` (Entra Workload ID, `providers.identity`)
  as `Authorization: Bearer` instead of the `api-key` header.

For classic Azure, `{resource}` is the base URL up to its `/openai` path segment (so a
`.../openai/deployments/{name}` base URL works) and `V` is `api_version`, else an
`api-version` default header, else `DEFAULT_AZURE_API_VERSION`. On the v1 API `api-version`
is only added when `api_version` is set.

Classic Azure deployments cannot be checked for free. A Model's `spec.model` names a
*deployment* there (the client puts it in the request path), but `/openai/models/{id}`
answers about the resource's base models, so a deployment named differently from its model
would be reported missing. The data-plane deployments API (`/openai/deployments`) is absent
from the api-versions since 2023-05-15 (Microsoft retired it in favour of the ARM management
API, which needs an Entra ID token, not the key). So the classic model check sends nothing
and answers `DeploymentNotVerified` (usable, not verified); the provider probe already
checked the key against the resource.
"""

from __future__ import annotations

import time
from dataclasses import replace
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from flokoa_controller.providers.endpoints import api_root
from flokoa_controller.providers.http import ProbeHTTP
from flokoa_controller.providers.identity import IdentityError, check_identity, identity_failure
from flokoa_controller.providers.models import with_resolved_id
from flokoa_controller.providers.probe import join_url, probe_get, probe_json
from flokoa_controller.providers.result import Check, ProbeResult, Reason, redact_url
from flokoa_controller.providers.target import (
    DEFAULT_AZURE_API_VERSION,
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
    base = api_root(target)
    version = azure_api_version(target) if target.flavor.startswith("azure") else None
    query = urlencode({"api-version": version}) if version else ""
    if target.flavor == "azure-classic":
        return join_url(azure_resource_root(base), "openai", *segments, query=query)
    return join_url(base, *segments, query=query)


async def _authorized(
    target: ProbeTarget, http: ProbeHTTP, url: str, check: Check, subject: str = ""
) -> dict[str, str] | ProbeResult:
    """The request headers; with a ServiceAccount identity (Azure OpenAI), an Entra ID token
    as `Authorization: Bearer` — or the failure that kept it from being obtained."""
    headers = _headers(target)
    if target.identity is None:
        return headers
    started = time.monotonic()
    try:
        check_identity(target, url, http.identity.settings)
        token = await http.identity.azure_token(target, http, check == "provider")
    except IdentityError as exc:
        return identity_failure(exc, target, subject=subject, started=started)
    headers["Authorization"] = f"Bearer {token}"
    return headers


async def probe_provider(target: ProbeTarget, http: ProbeHTTP) -> ProbeResult:
    """List models: reachability plus credential check, free of charge."""
    url = models_url(target)
    headers = await _authorized(target, http, url, "provider")
    if isinstance(headers, ProbeResult):
        return headers
    token = headers.get("Authorization", "").removeprefix("Bearer ")
    return await probe_get(
        http, target, "provider", url, headers, extra_secrets=(token,) if token else ()
    )


def azure_deployment(base_url: str) -> str | None:
    """The deployment a `.../openai/deployments/{name}` base URL is scoped to, else None."""
    root = azure_resource_root(base_url)
    rest = urlsplit(base_url).path.rstrip("/")[len(urlsplit(root).path) :].split("/")
    if len(rest) >= 4 and rest[1:3] == ["openai", "deployments"] and rest[3]:
        return unquote(rest[3])
    return None


def classic_deployment_not_verified(target: ProbeTarget, model: str) -> ProbeResult:
    """The classic Azure model check: no request, `DeploymentNotVerified` (usable).

    The URL reported is the deployment's API root; the message says what was and was not
    checked, and which deployment a deployment-scoped base URL pins requests to.
    """
    base = target.base_url or ""
    pinned = azure_deployment(base)
    deployment = pinned or model
    url = join_url(azure_resource_root(base), "openai", "deployments", deployment)
    message = (
        f'deployment "{model}" not verified: classic Azure OpenAI offers no free '
        "per-deployment check; the provider's key and resource were checked"
    )
    if pinned is not None and pinned != model:
        message += f' (the baseURL pins requests to deployment "{pinned}")'
    return ProbeResult(
        ok=True,
        reason=Reason.DEPLOYMENT_NOT_VERIFIED.value,
        message=message,
        url=redact_url(url),
        http_status=None,
        duration=0.0,
    )


async def probe_model(target: ProbeTarget, model: str, http: ProbeHTTP) -> ProbeResult:
    """Get one model: 404 means this account has no such model.

    Classic Azure: no request (see the module docstring), `DeploymentNotVerified`.
    """
    if target.flavor == "azure-classic":
        return classic_deployment_not_verified(target, model)
    url = models_url(target, model)
    subject = f'model "{model}"'
    headers = await _authorized(target, http, url, "model", subject)
    if isinstance(headers, ProbeResult):
        return headers
    token = headers.get("Authorization", "").removeprefix("Bearer ")
    result, body = await probe_json(
        http,
        target,
        "model",
        url,
        headers,
        subject=subject,
        extra_secrets=(token,) if token else (),
    )
    if target.flavor == "azure-v1" and result.reason == Reason.MODEL_NOT_FOUND.value:
        return v1_deployment_not_verified(result, model)
    if target.flavor == "azure-v1":
        # the v1 API answers a listed name with the model behind it (`model`, else `id`)
        return with_resolved_id(result, body, model, fields=("model", "id"))
    return result


def v1_deployment_not_verified(result: ProbeResult, model: str) -> ProbeResult:
    """The Azure v1 API's 404 on a model: usable but not verified (`DeploymentNotVerified`).

    On the v1 API a request's `model` names a *deployment*, while `/openai/v1/models/{id}`
    answers about the resource's models. A hit proves the name; a miss does not disprove it
    (a deployment may be named unlike its model), so it is reported as not verified rather
    than `ModelNotFound`.
    """
    message = (
        f'deployment "{model}" not verified: it is not a model of this Azure OpenAI '
        "resource (HTTP 404), and deployments cannot be checked for free; "
        "the provider's key and resource were checked"
    )
    return replace(result, ok=True, reason=Reason.DEPLOYMENT_NOT_VERIFIED.value, message=message)
