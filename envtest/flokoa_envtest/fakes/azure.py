"""Fake Azure OpenAI resource: the classic data-plane API and the v1 API, `api-key` auth.

- Classic: `GET /openai/models?api-version=V` and `GET /openai/models/{id}?api-version=V`.
  Without `api-version` Azure answers 404 `Resource not found`; an unknown version is 400.
- v1: `GET /openai/v1/models` and `GET /openai/v1/models/{id}`; `api-version` is optional
  (`preview`/`latest` accepted).

Authentication, as Azure OpenAI: `keys` in the `api-key` header, or `Authorization: Bearer`
with an Entra ID access token for `https://cognitiveservices.azure.com` from the shared
`EntraTokens` (FakeEntra issues them); `Authorization: Bearer KEY` with an API key is 401, as
an API key is not an Entra ID token. `entra_principals` (`TENANT/CLIENT_ID`; None: every
application) stands for the "Cognitive Services OpenAI User" role assignment: another
application's token is 401 `PermissionDenied`. `bearer_principals` records who each accepted
Bearer request came from. `models` are the resource's models; `api_versions` the classic
versions it knows.

`fine_tuned` maps fine-tuned model IDs to their base model: they are listed and fetched
with a `model` field naming the base (what the Azure OpenAI model object carries).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trustme
from aiohttp import web

from flokoa_envtest.fakes.entra import COGNITIVE_SERVICES_RESOURCE, EntraTokens
from flokoa_envtest.fakes.server import FakeEndpoint, KeySet, bearer_token

VersionCheck = Callable[[web.Request], web.Response | None]

DEFAULT_AZURE_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-35-turbo")
"""Models the fake resource has by default."""

DEFAULT_AZURE_API_VERSIONS = ("2024-02-01", "2024-06-01", "2024-10-21", "2025-01-01-preview")
"""Classic `api-version` values the fake accepts by default."""


class FakeAzureOpenAI(FakeEndpoint):
    """Azure OpenAI resource; see `classic_base_url`, `v1_base_url`."""

    name = "azure-openai"

    def __init__(
        self,
        *,
        tls: trustme.CA | None = None,
        host: str = "127.0.0.1",
        entra_tokens: EntraTokens | None = None,
    ) -> None:
        super().__init__(tls=tls, host=host)
        self.entra_tokens = entra_tokens if entra_tokens is not None else EntraTokens()
        """Entra ID access tokens accepted as `Authorization: Bearer`."""
        self.entra_principals: set[str] | None = None
        """Applications (`TENANT/CLIENT_ID`) with a role on the resource (None: all)."""
        self.bearer_principals: list[str] = []
        """`TENANT/CLIENT_ID` of each accepted Bearer request, oldest first."""
        self.keys = KeySet("azk")
        self.api_key = self.keys.new()
        """A key accepted from the start."""
        self.models: set[str] = set(DEFAULT_AZURE_MODELS)
        self.api_versions: set[str] = set(DEFAULT_AZURE_API_VERSIONS)
        self.fine_tuned: dict[str, str] = {}
        """Fine-tuned model ID → its base model."""

    @property
    def classic_base_url(self) -> str:
        """A classic deployment base URL, as the user spec's Azure example writes it."""
        return f"{self.url}/openai/deployments/gpt-4o"

    @property
    def v1_base_url(self) -> str:
        """The v1 API base URL."""
        return f"{self.url}/openai/v1"

    def error_body(self, status: int, message: str) -> Any:
        """Azure's error shape."""
        return {"error": {"code": str(status), "message": message}}

    def routes(self) -> list[web.RouteDef]:
        """Classic and v1 model routes."""
        return [
            web.get("/openai/models", self._classic_list),
            web.get("/openai/models/{model}", self._classic_get),
            web.get("/openai/v1/models", self._v1_list),
            web.get("/openai/v1/models/{model}", self._v1_get),
        ]

    def _authenticate(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("api-key")
        if key is None and request.headers.get("Authorization") is not None:
            return self._authenticate_bearer(request)
        if key is None or key not in self.keys:
            return self.error(
                401,
                "Access denied due to invalid subscription key or wrong API endpoint. Make "
                "sure to provide a valid key for an active subscription and use a correct "
                "regional API endpoint for your resource.",
            )
        return None

    def _authenticate_bearer(self, request: web.Request) -> web.Response | None:
        grant = self.entra_tokens.check(bearer_token(request), COGNITIVE_SERVICES_RESOURCE)
        if grant is None:
            return self.error(
                401,
                "Unauthorized. Access token is missing, invalid, audience is incorrect "
                f"({COGNITIVE_SERVICES_RESOURCE}), or have expired.",
            )
        if self.entra_principals is not None and grant.principal not in self.entra_principals:
            return web.json_response(
                {
                    "error": {
                        "code": "PermissionDenied",
                        "message": "Principal does not have access to API/Operation.",
                    }
                },
                status=401,
            )
        self.bearer_principals.append(grant.principal)
        return None

    def _classic_version(self, request: web.Request) -> web.Response | None:
        version = request.query.get("api-version")
        if version is None:
            return self.error(404, "Resource not found")
        if version not in self.api_versions:
            return self.error(
                400, f"Unsupported api-version {version!r}; supported: {sorted(self.api_versions)}"
            )
        return None

    def _v1_version(self, request: web.Request) -> web.Response | None:
        version = request.query.get("api-version")
        if version is not None and version not in ("preview", "latest", "v1"):
            return self.error(400, f"api-version {version!r} is not supported by the v1 API")
        return None

    def _model(self, model: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": model,
            "object": "model",
            "created_at": 1715367049,
            "status": "succeeded",
            "capabilities": {"chat_completion": True},
        }
        if model in self.fine_tuned:
            body["model"] = self.fine_tuned[model]
        return body

    def _check(self, request: web.Request, version_check: VersionCheck) -> web.Response | None:
        denied = version_check(request)
        return denied if denied is not None else self._authenticate(request)

    async def _list(self, request: web.Request, version_check: VersionCheck) -> web.Response:
        denied = self._check(request, version_check)
        if denied is not None:
            return denied
        return web.json_response(
            {
                "object": "list",
                "data": [self._model(m) for m in sorted(self.models | set(self.fine_tuned))],
            }
        )

    async def _get(self, request: web.Request, version_check: VersionCheck) -> web.Response:
        denied = self._check(request, version_check)
        if denied is not None:
            return denied
        model = request.match_info["model"]
        if model not in self.models and model not in self.fine_tuned:
            return self.error(404, f"The model '{model}' does not exist")
        return web.json_response(self._model(model))

    async def _classic_list(self, request: web.Request) -> web.Response:
        return await self._list(request, self._classic_version)

    async def _classic_get(self, request: web.Request) -> web.Response:
        return await self._get(request, self._classic_version)

    async def _v1_list(self, request: web.Request) -> web.Response:
        return await self._list(request, self._v1_version)

    async def _v1_get(self, request: web.Request) -> web.Response:
        return await self._get(request, self._v1_version)
