"""Fake AWS Bedrock control plane: ListFoundationModels (`GET /foundation-models`),
GetFoundationModel (`GET /foundation-models/{id}`), GetFoundationModelAvailability
(`GET /foundation-model-availability/{id}`) and GetInferenceProfile
(`GET /inference-profiles/{id-or-ARN}`).

Every request must be SigV4-signed (service `bedrock`, scope region `region`) by a key in the
shared `AWSCredentialStore` — static keys (`store.add_static()`) or temporary keys the fake
STS issued — verified for real by recomputing the signature; or carry
`Authorization: Bearer <Bedrock API key>` (one of `api_keys`). Errors are Bedrock's JSON
(`{"message": ...}` with an `x-amzn-ErrorType` header): 403 `UnrecognizedClientException`,
`InvalidSignatureException`, `ExpiredTokenException`, `AccessDeniedException`; 404
`ResourceNotFoundException` for an unknown model or inference profile.

- `models`: the region's foundation models; `lifecycles` maps a model to its
  `modelLifecycle.status` (default `ACTIVE`; `LEGACY` for a deprecated one).
- `availability` maps a model to its GetFoundationModelAvailability answer's fields
  (`authorizationStatus`, `entitlementAvailability`, `regionAvailability`, `agreement`),
  by default everything available and authorized.
- `inference_profiles`: profiles by ID (system-defined ones for the default Anthropic models
  in the `us.` and `global.` geographies); `add_application_profile(name, model)` creates an
  application inference profile and returns its ARN (GetInferenceProfile takes the ARN or
  the ID).
- `denied_actions` maps a principal to the actions it is refused (403
  `AccessDeniedException`), `denied_principals` lists principals refused everything.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import trustme
from aiohttp import web

from flokoa_envtest.fakes.aws import AWSCredentialStore, AWSKey, verify_sigv4
from flokoa_envtest.fakes.server import FakeEndpoint, KeySet, bearer_token

DEFAULT_BEDROCK_MODELS = (
    "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "anthropic.claude-3-haiku-20240307-v1:0",
    "amazon.titan-text-express-v1",
    "meta.llama3-70b-instruct-v1:0",
)
"""Foundation models the fake region offers by default."""

ACCOUNT_ID = "123456789012"
"""The account the fake's ARNs name."""

PROFILE_GEOGRAPHIES = {"us": ("us-east-1", "us-east-2", "us-west-2"), "global": ()}
"""System-defined profile prefixes of the fake and their member regions (`global`: the
commercial regions, here the fake's own and two more)."""


@dataclass
class InferenceProfile:
    """One inference profile: its ID, ARN, type and member model ARNs."""

    profile_id: str
    arn: str
    name: str
    type: str
    models: list[str] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        """GetInferenceProfile's answer."""
        return {
            "inferenceProfileName": self.name,
            "inferenceProfileArn": self.arn,
            "inferenceProfileId": self.profile_id,
            "description": f"Routes requests to {self.name}",
            "status": "ACTIVE",
            "type": self.type,
            "models": [{"modelArn": arn} for arn in self.models],
            "createdAt": "2025-05-14T00:00:00Z",
            "updatedAt": "2025-05-14T00:00:00Z",
        }


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
        """Principals that authenticate but may call nothing (403)."""
        self.denied_actions: dict[str, set[str]] = {}
        """Principal → the actions (`bedrock:GetInferenceProfile`, ...) it is refused."""
        self.lifecycles: dict[str, str] = {}
        """Model → its `modelLifecycle.status` (unlisted: `ACTIVE`)."""
        self.availability: dict[str, dict[str, str]] = {}
        """Model → GetFoundationModelAvailability fields overriding the available default
        (`authorizationStatus`, `entitlementAvailability`, `regionAvailability`,
        `agreement`)."""
        self.inference_profiles: dict[str, InferenceProfile] = {}
        for model in DEFAULT_BEDROCK_MODELS:
            if model.startswith("anthropic."):
                for geography in PROFILE_GEOGRAPHIES:
                    self.add_system_profile(geography, model)
        self.principals: list[str] = []
        """Principal of every authenticated request, in order (`api-key` for API keys)."""

    def model_arn(self, model: str, region: str | None = None) -> str:
        """The foundation-model ARN of `model` in `region` (default: the fake's)."""
        return f"arn:aws:bedrock:{region or self.region}::foundation-model/{model}"

    def add_system_profile(self, geography: str, model: str) -> InferenceProfile:
        """A system-defined cross-region profile `{geography}.{model}`."""
        regions = PROFILE_GEOGRAPHIES.get(geography) or (self.region, "eu-west-1", "ap-northeast-1")
        profile_id = f"{geography}.{model}"
        profile = InferenceProfile(
            profile_id=profile_id,
            arn=f"arn:aws:bedrock:{self.region}:{ACCOUNT_ID}:inference-profile/{profile_id}",
            name=f"{geography.upper()} {model}",
            type="SYSTEM_DEFINED",
            models=[self.model_arn(model, region) for region in regions],
        )
        self.inference_profiles[profile_id] = profile
        return profile

    def add_application_profile(self, name: str, model: str) -> str:
        """An application inference profile routing to `model` in this region; its ARN."""
        profile_id = secrets.token_hex(6)
        arn = (
            f"arn:aws:bedrock:{self.region}:{ACCOUNT_ID}:application-inference-profile/{profile_id}"
        )
        self.inference_profiles[profile_id] = InferenceProfile(
            profile_id=profile_id,
            arn=arn,
            name=name,
            type="APPLICATION",
            models=[self.model_arn(model)],
        )
        return arn

    def error_body(self, status: int, message: str) -> Any:
        """Bedrock's error shape."""
        return {"message": message}

    def aws_error(self, status: int, code: str, message: str) -> web.Response:
        """A Bedrock error with its `x-amzn-ErrorType`."""
        return web.json_response(
            {"message": message}, status=status, headers={"x-amzn-ErrorType": code}
        )

    def routes(self) -> list[web.RouteDef]:
        """ListFoundationModels, GetFoundationModel, GetFoundationModelAvailability and
        GetInferenceProfile."""
        return [
            web.get("/foundation-models", self._list),
            web.get("/foundation-models/{model}", self._get),
            web.get("/foundation-model-availability/{model}", self._availability),
            web.get("/inference-profiles/{profile}", self._profile),
        ]

    async def _authenticate(
        self, request: web.Request, action: str = "bedrock:ListFoundationModels"
    ) -> web.Response | None:
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
        if result.principal_arn in self.denied_principals or action in self.denied_actions.get(
            result.principal_arn, set()
        ):
            return self.aws_error(
                403,
                "AccessDeniedException",
                f"User: {result.principal_arn} is not authorized to perform: {action}",
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
            "modelLifecycle": {"status": self.lifecycles.get(model, "ACTIVE")},
        }

    async def _list(self, request: web.Request) -> web.Response:
        denied = await self._authenticate(request)
        if denied is not None:
            return denied
        return web.json_response(
            {"modelSummaries": [self._summary(m) for m in sorted(self.models)]}
        )

    def _unknown_model(self) -> web.Response:
        return self.aws_error(
            404,
            "ResourceNotFoundException",
            "Could not resolve the foundation model from the provided model identifier.",
        )

    async def _get(self, request: web.Request) -> web.Response:
        denied = await self._authenticate(request, "bedrock:GetFoundationModel")
        if denied is not None:
            return denied
        model = request.match_info["model"]
        if model not in self.models:
            return self._unknown_model()
        return web.json_response({"modelDetails": self._summary(model)})

    async def _availability(self, request: web.Request) -> web.Response:
        denied = await self._authenticate(request, "bedrock:GetFoundationModelAvailability")
        if denied is not None:
            return denied
        model = request.match_info["model"]
        if model not in self.models:
            return self._unknown_model()
        fields = {
            "authorizationStatus": "AUTHORIZED",
            "entitlementAvailability": "AVAILABLE",
            "regionAvailability": "AVAILABLE",
            "agreement": "AVAILABLE",
            **self.availability.get(model, {}),
        }
        agreement = fields.pop("agreement")
        return web.json_response(
            {"modelId": model, "agreementAvailability": {"status": agreement}, **fields}
        )

    async def _profile(self, request: web.Request) -> web.Response:
        denied = await self._authenticate(request, "bedrock:GetInferenceProfile")
        if denied is not None:
            return denied
        wanted = request.match_info["profile"]
        for profile in self.inference_profiles.values():
            if wanted in (profile.profile_id, profile.arn):
                return web.json_response(profile.body())
        return self.aws_error(
            404, "ResourceNotFoundException", "The specified inference profile does not exist."
        )
