"""Fake Vertex AI: project model-registry list, publisher-model GET and `countTokens`,
Bearer tokens only.

Tokens must have been issued by the fake token endpoint, metadata server, IAM Credentials or
Google STS (a shared `GoogleTokens`), be unexpired and carry the `cloud-platform` scope;
anything else (an API key, an unknown token) is 401 `UNAUTHENTICATED`.

- `GET /v1/projects/{project}/locations/{location}/models`: `projects` maps a project ID to
  the principals allowed in it (None: any authenticated caller); an unknown project or a
  principal without access is 403 `PERMISSION_DENIED`, an unknown location 404.
- `GET /v1beta1/publishers/{publisher}/models/{model}` (and `/v1/...`): `publisher_models`
  holds `publisher/model` names; others are 404 `NOT_FOUND`. `launch_stages` maps a
  `publisher/model` to its `launchStage` (default `GA`).
- Federated tokens (Workload Identity Federation used directly, principal `principal://…`)
  are accepted only where granted, even in a project open to any caller:
  `grant(project, principal)` (a `principalSet://…/POOL/*` covers the pool) and
  `revoke(project, principal)`. The publisher-model GET needs a grant in some project.
- `POST /v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}
  :countTokens`: the project check of `_list`, plus `predict_denied` (principals lacking
  `aiplatform.endpoints.predict`: 403 `PERMISSION_DENIED`); a model not in
  `publisher_models` or a location not in `locations` is 404; the answer counts the
  request's text (about four characters a token).
"""

from __future__ import annotations

from typing import Any

import trustme
from aiohttp import web

from flokoa_envtest.fakes.gemini import google_error
from flokoa_envtest.fakes.google_auth import CLOUD_PLATFORM_SCOPE, GoogleTokens
from flokoa_envtest.fakes.google_sts import principal_matches
from flokoa_envtest.fakes.server import FakeEndpoint, bearer_token

DEFAULT_PUBLISHER_MODELS = (
    "google/gemini-2.0-flash",
    "google/gemini-2.0-flash-001",
    "google/gemini-2.5-pro",
    "anthropic/claude-sonnet-4",
)
"""Publisher models the fake serves by default."""

DEFAULT_LOCATIONS = ("us-central1", "europe-west4", "global")
"""Locations the fake knows by default."""


def is_federated(principal: str) -> bool:
    """Whether `principal` is a Workload Identity Federation identity."""
    return principal.startswith(("principal://", "principalSet://"))


class FakeVertex(FakeEndpoint):
    """Vertex AI endpoint; `url` is what `google.baseURL` should be for a Vertex provider."""

    name = "vertex"

    def __init__(
        self,
        tokens: GoogleTokens,
        *,
        tls: trustme.CA | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(tls=tls, host=host)
        self.tokens = tokens
        self.projects: dict[str, set[str] | None] = {"fake-project": None}
        self.locations: set[str] = set(DEFAULT_LOCATIONS)
        self.publisher_models: set[str] = set(DEFAULT_PUBLISHER_MODELS)
        self.launch_stages: dict[str, str] = {}
        """`publisher/model` → its `launchStage` (unlisted: `GA`)."""
        self.predict_denied: set[str] = set()
        """Principals refused `aiplatform.endpoints.predict` (countTokens) in every project."""
        self.grants: dict[str, set[str]] = {}
        """Project → federated principals granted Vertex AI User in it."""

    def grant(self, project: str, principal: str) -> None:
        """Grant federated `principal` (`*` suffix: a prefix) access to `project`."""
        self.grants.setdefault(project, set()).add(principal)

    def revoke(self, project: str, principal: str | None = None) -> None:
        """Remove `principal`'s grant on `project` (None: every grant there)."""
        if principal is None:
            self.grants.pop(project, None)
        else:
            self.grants.get(project, set()).discard(principal)

    def _granted(self, principal: str, project: str | None) -> bool:
        projects = [project] if project is not None else list(self.grants)
        return any(
            principal_matches(principal, p) for name in projects for p in self.grants.get(name, ())
        )

    @property
    def base_url(self) -> str:
        """What `google.baseURL` should be to reach this fake."""
        return self.url

    def error_body(self, status: int, message: str) -> Any:
        """Google's error shape."""
        return google_error(status, message)

    def routes(self) -> list[web.RouteDef]:
        """Model-registry list and publisher-model GET."""
        return [
            web.get("/v1/projects/{project}/locations/{location}/models", self._list),
            web.get("/v1beta1/publishers/{publisher}/models/{model}", self._publisher_model),
            web.get("/v1/publishers/{publisher}/models/{model}", self._publisher_model),
            web.post(
                "/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{call}",
                self._model_call,
            ),
        ]

    def _authenticate(self, request: web.Request) -> tuple[str | None, web.Response | None]:
        grant = self.tokens.check(bearer_token(request), CLOUD_PLATFORM_SCOPE)
        if grant is None:
            return None, self.error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
            )
        return grant.principal, None

    def _project_denied(
        self, request: web.Request, principal: str | None, permission: str
    ) -> web.Response | None:
        project = request.match_info["project"]
        location = request.match_info["location"]
        allowed = self.projects.get(project, set())
        if principal is not None and is_federated(principal):
            refused = project not in self.projects or not self._granted(principal, project)
        else:
            refused = project not in self.projects or (
                allowed is not None and principal not in allowed
            )
        if refused:
            return self.error(
                403,
                f"Permission '{permission}' denied on resource "
                f"'//aiplatform.googleapis.com/projects/{project}/locations/{location}' "
                "(or it may not exist).",
            )
        if location not in self.locations:
            return self.error(404, f"Location {location} is not found.")
        return None

    async def _list(self, request: web.Request) -> web.Response:
        principal, denied = self._authenticate(request)
        if denied is None:
            denied = self._project_denied(request, principal, "aiplatform.models.list")
        if denied is not None:
            return denied
        return web.json_response({"models": []})

    async def _model_call(self, request: web.Request) -> web.Response:
        principal, denied = self._authenticate(request)
        if denied is not None:
            return denied
        model, _, method = request.match_info["call"].partition(":")
        if method != "countTokens":
            return self.error(404, f"Method {method or '(none)'} is not found.")
        permission = "aiplatform.endpoints.predict"
        denied = self._project_denied(request, principal, permission)
        if denied is None and principal in self.predict_denied:
            project, location = request.match_info["project"], request.match_info["location"]
            denied = self.error(
                403,
                f"Permission '{permission}' denied on resource '//aiplatform.googleapis.com/"
                f"projects/{project}/locations/{location}/publishers/google/models/{model}' "
                "(or it may not exist).",
            )
        if denied is not None:
            return denied
        publisher = request.match_info["publisher"]
        if f"{publisher}/{model}" not in self.publisher_models:
            return self.error(
                404,
                f"Publisher Model `projects/{request.match_info['project']}/locations/"
                f"{request.match_info['location']}/publishers/{publisher}/models/{model}` "
                "not found.",
            )
        try:
            body = await request.json()
        except ValueError:
            return self.error(400, "Invalid JSON payload received.")
        contents = body.get("contents") if isinstance(body, dict) else None
        if not isinstance(contents, list) or not contents:
            return self.error(400, "contents is not specified")
        characters = len(str(contents))
        return web.json_response(
            {"totalTokens": max(1, characters // 4), "totalBillableCharacters": characters}
        )

    async def _publisher_model(self, request: web.Request) -> web.Response:
        principal, denied = self._authenticate(request)
        if denied is not None:
            return denied
        if principal is not None and is_federated(principal) and not self._granted(principal, None):
            return self.error(
                403,
                "Permission 'aiplatform.endpoints.predict' denied on resource (or it may not "
                "exist).",
            )
        publisher = request.match_info["publisher"]
        model = request.match_info["model"]
        if f"{publisher}/{model}" not in self.publisher_models:
            return self.error(
                404, f"Publisher Model `publishers/{publisher}/models/{model}` is not found."
            )
        return web.json_response(
            {
                "name": f"publishers/{publisher}/models/{model}",
                "versionId": "001",
                "openSourceCategory": "PROPRIETARY",
                "launchStage": self.launch_stages.get(f"{publisher}/{model}", "GA"),
            }
        )
