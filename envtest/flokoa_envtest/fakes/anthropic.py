"""Fake Anthropic API: `GET /v1/models`, `GET /v1/models/{id}`.

Requires `x-api-key` (one of `keys`) and `anthropic-version` (one of `versions`), like the
real API: a missing version is 400 `invalid_request_error`, a bad key 401
`authentication_error`, an unknown model 404 `not_found_error`. `GET /v1/models/{alias}`
answers with the dated model an alias in `aliases` points to (as the real API does for
`claude-sonnet-4-0` and the like).
"""

from __future__ import annotations

from typing import Any

import trustme
from aiohttp import web

from flokoa_envtest.fakes.server import FakeEndpoint, KeySet

DEFAULT_ANTHROPIC_MODELS = (
    "claude-sonnet-4-20250514",
    "claude-opus-4-20250514",
    "claude-3-5-haiku-20241022",
)
"""Models the fake account has by default."""

DEFAULT_ANTHROPIC_ALIASES = {
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-opus-4-0": "claude-opus-4-20250514",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}
"""Aliases the fake resolves by default (alias → dated model ID)."""


class FakeAnthropic(FakeEndpoint):
    """Anthropic endpoint; `url` is what `anthropic.baseURL` should be."""

    name = "anthropic"

    def __init__(self, *, tls: trustme.CA | None = None, host: str = "127.0.0.1") -> None:
        super().__init__(tls=tls, host=host)
        self.keys = KeySet("sk-ant-fake-")
        self.api_key = self.keys.new()
        """A key accepted from the start."""
        self.versions: set[str] = {"2023-06-01", "2023-01-01"}
        self.models: set[str] = set(DEFAULT_ANTHROPIC_MODELS)
        self.aliases: dict[str, str] = dict(DEFAULT_ANTHROPIC_ALIASES)

    @property
    def base_url(self) -> str:
        """What `anthropic.baseURL` should be to reach this fake."""
        return self.url

    def error_body(self, status: int, message: str) -> Any:
        """Anthropic's error shape."""
        kind = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def routes(self) -> list[web.RouteDef]:
        """`/v1/models` and `/v1/models/{id}`."""
        return [
            web.get("/v1/models", self._list),
            web.get("/v1/models/{model}", self._get),
        ]

    def _authenticate(self, request: web.Request) -> web.Response | None:
        version = request.headers.get("anthropic-version")
        if version is None:
            return self.error(400, "anthropic-version: header is required")
        if version not in self.versions:
            return self.error(400, f"anthropic-version: invalid version {version!r}")
        key = request.headers.get("x-api-key")
        if key is None:
            return self.error(401, "x-api-key header is required")
        if key not in self.keys:
            return self.error(401, "invalid x-api-key")
        return None

    @staticmethod
    def _model(model: str) -> dict[str, Any]:
        return {
            "type": "model",
            "id": model,
            "display_name": model,
            "created_at": "2025-05-14T00:00:00Z",
        }

    async def _list(self, request: web.Request) -> web.Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        models = sorted(self.models)
        return web.json_response(
            {
                "data": [self._model(m) for m in models],
                "has_more": False,
                "first_id": models[0] if models else None,
                "last_id": models[-1] if models else None,
            }
        )

    async def _get(self, request: web.Request) -> web.Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        model = request.match_info["model"]
        model = self.aliases.get(model, model)
        if model not in self.models:
            return self.error(404, f"model: {request.match_info['model']}")
        return web.json_response(self._model(model))
