"""Model: one model of a ModelProvider, with its invocation settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from flokoa_controller.api.base import APIModel
from flokoa_controller.api.common import (
    Conditions,
    HeaderMap,
    ObjectMeta,
    ObjectName,
    ProviderType,
    Time,
    TimeoutSeconds,
)
from flokoa_controller.api.meta import MODEL


class ProviderRef(APIModel):
    """A ModelProvider in the Model's own namespace.

    There is no namespace field on purpose: a Model can only use credentials that its own
    namespace already holds.
    """

    name: ObjectName
    """The ModelProvider's name."""


class ModelSettings(APIModel):
    """Default invocation parameters for this model. Every field is optional: unset means the
    provider's own default. The operator validates them; the agents that call the model use
    them."""

    max_tokens: Annotated[int, Field(ge=1)] | None = Field(default=None, alias="maxTokens")
    """The maximum number of tokens to generate (at least 1)."""
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    """Sampling temperature, 0 to 2 (Anthropic and Bedrock models accept up to 1)."""
    top_p: Annotated[float, Field(ge=0, le=1)] | None = Field(default=None, alias="topP")
    """Nucleus sampling: the cumulative probability mass to sample from, 0 to 1."""
    top_k: Annotated[int, Field(ge=1)] | None = Field(default=None, alias="topK")
    """Sample only from the K most likely tokens (at least 1; not supported by OpenAI)."""
    timeout_seconds: TimeoutSeconds | None = Field(default=None, alias="timeoutSeconds")
    """Timeout in seconds (1-600) of the model check, overriding the provider's
    timeoutSeconds; capped by the operator's `--max-probe-timeout` (default 30)."""
    stop_sequences: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=8)]
        | None
    ) = Field(default=None, alias="stopSequences")
    """Strings that end generation. At most 8 (OpenAI accepts at most 4)."""
    extra_headers: HeaderMap = Field(default_factory=dict, alias="extraHeaders")
    """HTTP headers added to this model's requests, on top of the provider's defaultHeaders
    (same rules: RFC 7230 names, no CR/LF, no credential headers)."""


class ModelSpec(APIModel):
    """Which model, served by which ModelProvider, with which default settings."""

    model: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[!-~]+$")]
    """The provider's model identifier, e.g. `gpt-4o-mini`, `claude-sonnet-4-5`,
    `gemini-2.0-flash` or `anthropic.claude-3-5-sonnet-20241022-v2:0`. Required."""
    provider_ref: ProviderRef = Field(alias="providerRef")
    """The ModelProvider that serves this model, in the same namespace. Required."""
    settings: ModelSettings | None = None
    """Optional."""


class ModelStatus(APIModel):
    """Whether the model can be used, and why: the provider's readiness and the model's
    availability to its credentials."""

    ready: bool = False
    """True when the provider is ready and the model exists for its credentials."""
    provider: ProviderType | None = None
    """The type of the referenced ModelProvider."""
    conditions: Conditions = Field(default_factory=list)
    """`Ready` and the conditions it sums up (e.g. `ProviderReady`, `ModelAvailable`)."""
    observed_generation: Annotated[int, Field(ge=0)] | None = Field(
        default=None, alias="observedGeneration", json_schema_extra={"format": "int64"}
    )
    """The `metadata.generation` the status describes."""
    last_check_time: Time | None = Field(default=None, alias="lastCheckTime")
    """When a check of the model at its provider last changed this status. A re-check
    whose outcome is unchanged writes nothing, so this time does not move on every check."""
    provider_hash: Annotated[str, Field(max_length=128)] | None = Field(
        default=None, alias="providerHash"
    )
    """A hash of the ModelProvider state that check relied on: its UID, generation,
    `secretHash` and `lastProbeTime`. When the provider changes, or a probe of it changes its
    status, it no longer matches and the model is checked again."""
    resolved_model: Annotated[str, Field(max_length=512)] | None = Field(
        default=None, alias="resolvedModel"
    )
    """The model `spec.model` resolves to, when the provider says so and it differs: the
    dated ID of an Anthropic alias, the foundation model of a Bedrock inference profile,
    the model behind an Azure OpenAI v1 name."""
    member_models: (
        Annotated[list[Annotated[str, Field(max_length=512)]], Field(max_length=32)] | None
    ) = Field(default=None, alias="memberModels")
    """A Bedrock inference profile's member models (foundation-model ARNs, one per region
    the profile routes to)."""


class Model(APIModel):
    """A model served by a ModelProvider, with default invocation settings."""

    api_version: str = Field(default=MODEL.api_version, alias="apiVersion")
    """`agent.flokoa.ai/v1alpha1`."""
    kind: str = MODEL.kind
    """`Model`."""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    """Standard object metadata."""
    spec: ModelSpec
    """The desired state."""
    status: ModelStatus = Field(default_factory=ModelStatus)
    """The observed state, written by the operator."""


def parse_model(obj: Mapping[str, Any]) -> Model:
    """Validate a Model object (as read from the API server or a manifest).

    Raises `pydantic.ValidationError` with the CRD's messages when it breaks a rule.
    """
    return Model.model_validate(obj)
