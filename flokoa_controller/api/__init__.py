"""The ``agent.flokoa.ai/v1alpha1`` resource types: ModelProvider and Model.

The pydantic models here are the single source of truth: ``crdgen`` turns them into the CRDs
in ``config/crd`` (schema, defaults, CEL rules), and the controller validates what it reads
with the same rules (``parse_model_provider``, ``parse_model``). Attributes have snake_case
names; JSON uses the camelCase aliases (``to_json()`` writes them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flokoa_controller.api.base import APIModel
from flokoa_controller.api.common import (
    PROVIDER_TYPES,
    Condition,
    ConditionStatus,
    ObjectMeta,
    ProviderType,
)
from flokoa_controller.api.meta import CATEGORY, GROUP, MODEL, MODEL_PROVIDER, VERSION, APIResource
from flokoa_controller.api.model import (
    Model,
    ModelSettings,
    ModelSpec,
    ModelStatus,
    ProviderRef,
    parse_model,
)
from flokoa_controller.api.modelprovider import (
    ANTHROPIC_DEFAULT_BASE_URL,
    ANTHROPIC_DEFAULT_VERSION,
    DEFAULT_TIMEOUT_SECONDS,
    GEMINI_DEFAULT_BASE_URL,
    OPENAI_DEFAULT_BASE_URL,
    AnthropicProvider,
    APIKeySecretRef,
    AWSCredentialsSecretRef,
    BedrockProvider,
    CASecretRef,
    GoogleProvider,
    ModelProvider,
    ModelProviderSpec,
    ModelProviderStatus,
    OpenAIProvider,
    ServiceAccountKeySecretRef,
    TLSConfig,
    VertexAI,
    parse_model_provider,
)
from flokoa_controller.api.rules import RULE_ERROR_TYPE

__all__ = [
    "ANTHROPIC_DEFAULT_BASE_URL",
    "ANTHROPIC_DEFAULT_VERSION",
    "CATEGORY",
    "DEFAULT_TIMEOUT_SECONDS",
    "GEMINI_DEFAULT_BASE_URL",
    "GROUP",
    "MODEL",
    "MODEL_PROVIDER",
    "OPENAI_DEFAULT_BASE_URL",
    "PROVIDER_TYPES",
    "RULE_ERROR_TYPE",
    "VERSION",
    "APIKeySecretRef",
    "APIModel",
    "APIResource",
    "AWSCredentialsSecretRef",
    "AnthropicProvider",
    "BedrockProvider",
    "CASecretRef",
    "Condition",
    "ConditionStatus",
    "GoogleProvider",
    "Model",
    "ModelProvider",
    "ModelProviderSpec",
    "ModelProviderStatus",
    "ModelSettings",
    "ModelSpec",
    "ModelStatus",
    "ObjectMeta",
    "OpenAIProvider",
    "ProviderRef",
    "ProviderType",
    "ServiceAccountKeySecretRef",
    "TLSConfig",
    "VertexAI",
    "parse_model",
    "parse_model_provider",
    "parse_object",
]


def parse_object(obj: Mapping[str, Any]) -> ModelProvider | Model:
    """Validate a ModelProvider or Model object, chosen by its ``kind``.

    Raises ``pydantic.ValidationError`` with the CRD's messages when it breaks a rule, and
    ``ValueError`` for any other kind.
    """
    kind = obj.get("kind")
    if kind == MODEL_PROVIDER.kind:
        return parse_model_provider(obj)
    if kind == MODEL.kind:
        return parse_model(obj)
    raise ValueError(f"not a flokoa resource: kind {kind!r}")
