"""Fake AWS Bedrock control plane: `GET /foundation-models`, `GET /foundation-models/{id}`.

Every request must be SigV4-signed (service `bedrock`, scope region `region`) by a key in the
shared `AWSCredentialStore` — static keys (`store.add_static()`) or temporary keys the fake
STS issued — verified for real by recomputing the signature; or carry
`Authorization: Bearer <Bedrock API key>` (one of `api_keys`). Errors are Bedrock's JSON
(`{"message": ...}` with an `x-amzn-ErrorType` header): 403 `UnrecognizedClientException`,
`InvalidSignatureException`, `ExpiredTokenException`, `AccessDeniedException`; 404
`ResourceNotFoundException` for an unknown model.
"""

from __future__ import annotations

from typing import Any

import trustme
from aiohttp import web

from flokoa_controller.envtest.fakes.aws import AWSCredentialStore, AWSKey, verify_sigv4
from flokoa_controller.envtest.fakes.server import FakeEndpoint, KeySet, bearer_token

DEFAULT_BEDROCK_MODELS = (
    "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "anthropic.claude-3-haiku-20240307-v1:0",
    "amazon.titan-text-express-v1",
    "meta.llama3-70b-instruct-v1:0",
)
"""Foundation models the fake region offers by default."""


class FakeBedrock(FakeEndpoint):
    """Bedrock endpoint; `url` is what `bedrock.endpointURL` (or `AWS_ENDPOINT_URL_BEDROCK`)
    should be."""

    name = "bedrock"

    def __init__(
        self,
        store: AWSCredentialStore,
        *,
        region: str = "us-east-1",
        tls: trustme.CA | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(tls=tls, host=host)
        self.store = store
        self.region = region
        self.api_keys = KeySet("ABSKfake")
        self.models: set[str] = set(DEFAULT_BEDROCK_MODELS)
        self.denied_principals: set[str] = set()
        """Principals that authenticate but lack `bedrock:ListFoundationModels` (403)."""
        self.principals: list[str] = []
        """Principal of every authenticated request, in order (`api-key` for API keys)."""

    def error_body(self, status: int, message: str) -> Any:
        """Bedrock's error shape."""
        return {"message": message}

    def aws_error(self, status: int, code: str, message: str) -> web.Response:
        """A Bedrock error with its `x-amzn-ErrorType`."""
        return web.json_response(
            {"message": message}, status=status, headers={"x-amzn-ErrorType": code}
        )

    def routes(self) -> list[web.RouteDef]:
        """ListFoundationModels and GetFoundationModel."""
        return [
            web.get("/foundation-models", self._list),
            web.get("/foundation-models/{model}", self._get),
        ]

    async def _authenticate(self, request: web.Request) -> web.Response | None:
        token = bearer_token(request)
        if token is not None:
            if token not in self.api_keys:
                return self.aws_error(
                    403,
                    "UnrecognizedClientException",
                    "Invalid API Key format or API key not found.",
                )
            self.principals.append("api-key")
            return None
        result = verify_sigv4(
            request, await request.read(), self.store, service="bedrock", region=self.region
        )
        if not isinstance(result, AWSKey):
            return self.aws_error(result.status, result.code, result.message)
        if result.principal_arn in self.denied_principals:
            return self.aws_error(
                403,
                "AccessDeniedException",
                f"User: {result.principal_arn} is not authorized to perform: "
                "bedrock:ListFoundationModels",
            )
        self.principals.append(result.principal_arn)
        return None

    def _summary(self, model: str) -> dict[str, Any]:
        provider = model.split(".", 1)[0]
        return {
            "modelArn": f"arn:aws:bedrock:{self.region}::foundation-model/{model}",
            "modelId": model,
            "modelName": model,
            "providerName": provider.capitalize(),
            "inputModalities": ["TEXT"],
            "outputModalities": ["TEXT"],
            "responseStreamingSupported": True,
            "modelLifecycle": {"status": "ACTIVE"},
        }

    async def _list(self, request: web.Request) -> web.Response:
        denied = await self._authenticate(request)
        if denied is not None:
            return denied
        return web.json_response(
            {"modelSummaries": [self._summary(m) for m in sorted(self.models)]}
        )

    async def _get(self, request: web.Request) -> web.Response:
        denied = await self._authenticate(request)
        if denied is not None:
            return denied
        model = request.match_info["model"]
        if model not in self.models:
            return self.aws_error(
                404,
                "ResourceNotFoundException",
                "Could not resolve the foundation model from the provided model identifier.",
            )
        return web.json_response({"modelDetails": self._summary(model)})
