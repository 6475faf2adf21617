"""Fake OpenAI-compatible API: `GET /v1/models`, `GET /v1/models/{id}` with `Bearer` keys.

- `keys`: accepted API keys (`keys.new()`, `keys.revoke(k)`).
- `organizations`: when not None, an `OpenAI-Organization` header must name one of these
  (a mismatch is 401 `mismatched_organization`, as OpenAI answers).
- `models`: model IDs the account has.

The 401 body echoes the key it got, in full: some compatible servers do, and it lets tests
prove that probes never pass a provider's echo of a secret on.
"""

from __future__ import annotations

from typing import Any

import trustme
from aiohttp import web

from flokoa_envtest.fakes.server import FakeEndpoint, KeySet, bearer_token

DEFAULT_OPENAI_MODELS = ("gpt-4o", "gpt-4o-mini", "o3-mini", "text-embedding-3-small")
"""Models the fake OpenAI account has by default."""


class FakeOpenAI(FakeEndpoint):
    """OpenAI-compatible endpoint; its base URL (`base_url`) ends in `/v1`."""

    name = "openai"

    def __init__(self, *, tls: trustme.CA | None = None, host: str = "127.0.0.1") -> None:
        super().__init__(tls=tls, host=host)
        self.keys = KeySet("sk-fake-")
        self.api_key = self.keys.new()
        """A key accepted from the start."""
        self.organizations: set[str] | None = None
        self.models: set[str] = set(DEFAULT_OPENAI_MODELS)

    @property
    def base_url(self) -> str:
        """What `openai.baseURL` should be to reach this fake."""
        return f"{self.url}/v1"

    def error_body(self, status: int, message: str) -> Any:
        """OpenAI's error shape."""
        return {"error": {"message": message, "type": "invalid_request_error", "code": None}}

    def routes(self) -> list[web.RouteDef]:
        """`/v1/models` and `/v1/models/{id}`."""
        return [
            web.get("/v1/models", self._list),
            web.get("/v1/models/{model}", self._get),
        ]

    def _authenticate(self, request: web.Request) -> web.Response | None:
        key = bearer_token(request)
        if key is None:
            return self._unauthorized(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "missing_api_key",
            )
        if key not in self.keys:
            return self._unauthorized(f"Incorrect API key provided: {key}.", "invalid_api_key")
        org = request.headers.get("OpenAI-Organization")
        if self.organizations is not None and org is not None and org not in self.organizations:
            return self._unauthorized(
                f"OpenAI-Organization header should match organization for API key ({org}).",
                "mismatched_organization",
            )
        return None

    @staticmethod
    def _unauthorized(message: str, code: str) -> web.Response:
        return web.json_response(
            {"error": {"message": message, "type": "invalid_request_error", "code": code}},
            status=401,
        )

    @staticmethod
    def _model(model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 1715367049, "owned_by": "system"}

    async def _list(self, request: web.Request) -> web.Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        data = [self._model(m) for m in sorted(self.models)]
        return web.json_response({"object": "list", "data": data})

    async def _get(self, request: web.Request) -> web.Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        model = request.match_info["model"]
        if model not in self.models:
            return web.json_response(
                {
                    "error": {
                        "message": f"The model '{model}' does not exist",
                        "type": "invalid_request_error",
                        "code": "model_not_found",
                    }
                },
                status=404,
            )
        return web.json_response(self._model(model))
