"""The pydantic types: names, defaults, serialisation and the helpers others rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from flokoa_controller.api import (
    MODEL,
    MODEL_PROVIDER,
    Condition,
    Model,
    ModelProvider,
    ModelProviderStatus,
    ModelStatus,
    parse_model,
    parse_model_provider,
    parse_object,
)
from flokoa_controller.providers.target import is_azure


def provider(spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "agent.flokoa.ai/v1alpha1",
        "kind": "ModelProvider",
        "metadata": {"name": "p", "namespace": "team", "generation": 3},
        "spec": spec,
        **extra,
    }


def test_resource_constants() -> None:
    assert MODEL_PROVIDER.api_version == "agent.flokoa.ai/v1alpha1"
    assert (MODEL_PROVIDER.plural, MODEL_PROVIDER.kind) == ("modelproviders", "ModelProvider")
    assert (MODEL.plural, MODEL.kind, MODEL.list_kind) == ("models", "Model", "ModelList")
    assert MODEL.crd_name == "models.agent.flokoa.ai"


def test_defaults_per_provider() -> None:
    openai = parse_model_provider(provider({"apiKeySecretRef": {"name": "c"}, "openai": {}}))
    assert openai.spec.provider == "openai"
    assert openai.spec.api_key_secret_ref is not None
    assert openai.spec.api_key_secret_ref.key == "api-key"
    assert openai.spec.openai is not None
    assert openai.spec.openai.base_url == "https://api.openai.com/v1"
    assert openai.spec.openai.timeout_seconds == 60
    assert openai.spec.default_headers == {}
    assert openai.spec.tls is None
    assert openai.metadata.generation == 3

    anthropic = parse_model_provider(
        provider({"apiKeySecretRef": {"name": "c"}, "anthropic": {}})
    ).spec.anthropic
    assert anthropic is not None
    assert (anthropic.base_url, anthropic.version) == ("https://api.anthropic.com", "2023-06-01")

    vertex = parse_model_provider(
        provider(
            {
                "google": {
                    "vertex": {
                        "projectID": "my-project",
                        "location": "us-east5",
                        "serviceAccountKeySecretRef": {"name": "sa"},
                    }
                }
            }
        )
    ).spec.google
    assert vertex is not None
    assert vertex.vertex is not None
    assert vertex.base_url is None
    assert vertex.vertex.service_account_key_secret_ref is not None
    assert vertex.vertex.service_account_key_secret_ref.key == "credentials.json"

    bedrock = parse_model_provider(
        provider(
            {
                "bedrock": {"region": "us-east-1", "credentialsSecretRef": {"name": "aws"}},
                "tls": {"caSecretRef": {"name": "ca"}},
            }
        )
    ).spec
    assert bedrock.bedrock is not None
    assert bedrock.bedrock.credentials_secret_ref is not None
    ref = bedrock.bedrock.credentials_secret_ref
    assert (ref.access_key_id_key, ref.secret_access_key_key, ref.session_token_key) == (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        None,
    )
    assert bedrock.tls is not None
    assert bedrock.tls.ca_secret_ref is not None
    assert bedrock.tls.ca_secret_ref.key == "ca.crt"
    assert (bedrock.tls.use_system_cas, bedrock.tls.insecure_skip_verify) == (False, False)


@pytest.mark.parametrize(
    ("openai", "azure"),
    [
        ({}, False),
        ({"baseURL": "http://vllm:8000/v1"}, False),
        ({"baseURL": "https://res.openai.azure.com/openai/v1"}, True),
        ({"baseURL": "https://RES.OpenAI.Azure.com/openai/v1"}, True),
        ({"baseURL": "https://res.cognitiveservices.azure.com/openai"}, True),
        ({"baseURL": "https://res.services.ai.azure.com/models"}, True),
        ({"baseURL": "https://openai.azure.com.evil.example/v1"}, False),
        ({"baseURL": "https://gateway.internal/azure", "apiVersion": "2024-10-21"}, True),
    ],
)
def test_azure_detection(openai: dict[str, str], azure: bool) -> None:
    spec = parse_model_provider(provider({"apiKeySecretRef": {"name": "c"}, "openai": openai}))
    block = spec.spec.openai
    assert block is not None
    # the one Azure rule lives in providers (the api layer cannot import it)
    assert is_azure(block.base_url, block.api_version) is azure


def test_json_names_round_trip_and_python_names_are_accepted() -> None:
    obj = provider(
        {
            "apiKeySecretRef": {"name": "c", "key": "k"},
            "openai": {"baseURL": "https://x/v1", "organizationID": "org-1", "project": "p"},
            "defaultHeaders": {"X-Tenant": "t"},
            "tls": {"useSystemCAs": True, "caSecretRef": {"name": "ca"}},
        }
    )
    parsed = parse_model_provider(obj)
    again = parse_model_provider(parsed.to_json())
    assert again == parsed
    spec_json = parsed.to_json()["spec"]
    assert spec_json["openai"]["organizationID"] == "org-1"
    assert spec_json["tls"] == {
        "caSecretRef": {"name": "ca", "key": "ca.crt"},
        "useSystemCAs": True,
        "insecureSkipVerify": False,
    }
    by_name = ModelProvider.model_validate(
        {"spec": {"api_key_secret_ref": {"name": "c"}, "openai": {"base_url": "https://x/v1"}}}
    )
    assert by_name.spec.openai is not None
    assert by_name.spec.openai.base_url == "https://x/v1"


def test_unknown_fields_are_ignored_like_pruning() -> None:
    obj = provider({"apiKeySecretRef": {"name": "c"}, "openai": {"futureField": 1}, "x": {}})
    assert "futureField" not in parse_model_provider(obj).to_json()["spec"]["openai"]


def test_status_reads_api_server_json_and_writes_it_back_identically() -> None:
    status = {
        "provider": "openai",
        "ready": False,
        "observedGeneration": 3,
        "secretHash": "sha256:abc",
        "lastProbeTime": "2026-01-15T10:30:00Z",
        "endpoint": "https://api.openai.com/v1",
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "SecretNotFound",
                "message": 'Secret "team/c" not found',
                "lastTransitionTime": "2026-01-15T10:30:00Z",
                "observedGeneration": 3,
            }
        ],
    }
    obj = provider({"apiKeySecretRef": {"name": "c"}, "openai": {}}, status=status)
    parsed = parse_model_provider(obj)
    assert parsed.status.conditions[0].last_transition_time == datetime(
        2026, 1, 15, 10, 30, tzinfo=UTC
    )
    assert parsed.status.to_json() == status


def test_times_are_written_like_metav1_time() -> None:
    cet = timezone(timedelta(hours=1))
    condition = Condition(
        type="Ready",
        status="True",
        reason="ProbeSucceeded",
        message="",
        last_transition_time=datetime(2026, 1, 15, 11, 30, 0, 987654, tzinfo=cet),
    )
    assert condition.to_json()["lastTransitionTime"] == "2026-01-15T10:30:00Z"
    naive = ModelProviderStatus(last_probe_time=datetime(2026, 1, 15, 10, 30, 5))
    assert naive.to_json()["lastProbeTime"] == "2026-01-15T10:30:05Z"


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "true"), ("reason", "not a reason"), ("reason", ""), ("type", "-Ready")],
)
def test_condition_shape_is_enforced(field: str, value: str) -> None:
    data = {
        "type": "Ready",
        "status": "True",
        "reason": "Ok",
        "message": "",
        "lastTransitionTime": "2026-01-15T10:30:00Z",
        field: value,
    }
    with pytest.raises(ValidationError):
        Condition.model_validate(data)


def test_model_parses_and_defaults() -> None:
    model = parse_model(
        {
            "apiVersion": "agent.flokoa.ai/v1alpha1",
            "kind": "Model",
            "metadata": {"name": "m"},
            "spec": {"model": "gpt-4o-mini", "providerRef": {"name": "openai"}},
        }
    )
    assert isinstance(model, Model)
    assert model.spec.provider_ref.name == "openai"
    assert model.spec.settings is None
    assert model.status == ModelStatus()
    assert model.status.ready is False


def test_model_status_reads_api_server_json_and_writes_it_back_identically() -> None:
    status = {
        "ready": True,
        "provider": "openai",
        "observedGeneration": 2,
        "lastCheckTime": "2026-01-15T10:30:00Z",
        "providerHash": "0" * 64,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "ModelFound",
                "message": "GET https://api.openai.com/v1/models/gpt-4o returned HTTP 200",
                "lastTransitionTime": "2026-01-15T10:30:00Z",
                "observedGeneration": 2,
            }
        ],
    }
    model = parse_model(
        {
            "apiVersion": "agent.flokoa.ai/v1alpha1",
            "kind": "Model",
            "metadata": {"name": "m", "generation": 2},
            "spec": {"model": "gpt-4o", "providerRef": {"name": "openai"}},
            "status": status,
        }
    )
    assert model.status.last_check_time == datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
    assert model.status.provider_hash == "0" * 64
    assert model.status.to_json() == status
    naive = ModelStatus(last_check_time=datetime(2026, 1, 15, 10, 30, 5, 999))
    assert naive.to_json()["lastCheckTime"] == "2026-01-15T10:30:05Z"
    with pytest.raises(ValidationError):
        ModelStatus.model_validate({"providerHash": "x" * 129})


def test_parse_object_dispatches_on_kind() -> None:
    obj = provider({"apiKeySecretRef": {"name": "c"}, "anthropic": {}})
    assert isinstance(parse_object(obj), ModelProvider)
    with pytest.raises(ValueError, match="not a flokoa resource"):
        parse_object({"kind": "Secret"})


def test_rule_errors_are_typed_and_carry_only_the_message() -> None:
    with pytest.raises(ValidationError) as raised:
        parse_model_provider(provider({"openai": {}, "anthropic": {}}))
    (error,) = raised.value.errors()
    assert error["type"] == "crd_rule"
    assert error["loc"] == ("spec",)
    assert error["msg"] == "exactly one of openai, anthropic, google or bedrock must be set"


def test_a_credential_in_a_header_is_not_echoed_by_the_rule_message() -> None:
    with pytest.raises(ValidationError) as raised:
        parse_model_provider(
            provider(
                {
                    "apiKeySecretRef": {"name": "c"},
                    "openai": {},
                    "defaultHeaders": {"Authorization": "Bearer sk-canary"},
                }
            )
        )
    assert "sk-canary" not in raised.value.errors()[0]["msg"]
