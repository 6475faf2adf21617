"""Fake Gemini API (generativelanguage): `GET /v1beta/models`, `GET /v1beta/models/{id}`.

Keys (`keys`) arrive as `x-goog-api-key` or `?key=`. Like the real API: no key is 403
`PERMISSION_DENIED`, an unknown key 400 `INVALID_ARGUMENT` with reason `API_KEY_INVALID`, and
a key sent as `Authorization: Bearer` is 401 `UNAUTHENTICATED` (it is not an OAuth token). The
list is `models[]` with `models/`-prefixed names. `/v1/...` is served too.
"""

from __future__ import annotations

from typing import Any

import trustme
from aiohttp import web

from flokoa_envtest.fakes.server import FakeEndpoint, KeySet, bearer_token

DEFAULT_GEMINI_MODELS = ("gemini-2.0-flash", "gemini-2.5-pro", "gemini-2.5-flash")
"""Models the fake serves by default."""

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def google_error(status: int, message: str, reason: str | None = None) -> dict[str, Any]:
    """A Google API error body (`error.code`, `error.message`, `error.status`)."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _STATUS.get(status, "UNKNOWN"),
    }
    if reason is not None:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
            }
        ]
    return {"error": error}


class FakeGemini(FakeEndpoint):
    """Gemini API endpoint; `url` is what `google.baseURL` should be."""

    name = "gemini"

    def __init__(self, *, tls: trustme.CA | None = None, host: str = "127.0.0.1") -> None:
        super().__init__(tls=tls, host=host)
        self.keys = KeySet("AIzaFake")
        self.api_key = self.keys.new()
        """A key accepted from the start."""
        self.models: set[str] = set(DEFAULT_GEMINI_MODELS)

    @property
    def base_url(self) -> str:
        """What `google.baseURL` should be to reach this fake."""
        return self.url

    def error_body(self, status: int, message: str) -> Any:
        """Google's error shape."""
        return google_error(status, message)

    def routes(self) -> list[web.RouteDef]:
        """`/v1beta/models[/{id}]` and `/v1/models[/{id}]`."""
        routes: list[web.RouteDef] = []
        for version in ("v1beta", "v1"):
            routes.append(web.get(f"/{version}/models", self._list))
            routes.append(web.get(f"/{version}/models/{{model}}", self._get))
        return routes

    def _authenticate(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if key is None:
            if bearer_token(request) is not None:
                return web.json_response(
                    google_error(
                        401,
                        "Request had invalid authentication credentials. Expected OAuth 2 "
                        "access token, login cookie or other valid authentication credential.",
                        "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                    ),
                    status=401,
                )
            return web.json_response(
                google_error(403, "Method doesn't allow unregistered callers."), status=403
            )
        if key not in self.keys:
            return web.json_response(
                google_error(
                    400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID"
                ),
                status=400,
            )
        return None

    @staticmethod
    def _model(model: str) -> dict[str, Any]:
        return {
            "name": f"models/{model}",
            "version": "001",
            "displayName": model,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }

    async def _list(self, request: web.Request) -> web.Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        return web.json_response({"models": [self._model(m) for m in sorted(self.models)]})

    async def _get(self, request: web.Request) -> web.Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        model = request.match_info["model"]
        if model not in self.models:
            return web.json_response(
                google_error(404, f"models/{model} is not found for API version v1beta"),
                status=404,
            )
        return web.json_response(self._model(model))
