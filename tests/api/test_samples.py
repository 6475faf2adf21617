"""Every sample is accepted by the CRD (schema + CEL) and by the pydantic models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flokoa_controller.api import Model, ModelProvider, parse_object
from flokoa_controller.providers.target import is_azure

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"


def _custom_objects() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(SAMPLES.glob("*.yaml")):
        with path.open(encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if doc and doc.get("apiVersion") == "agent.flokoa.ai/v1alpha1":
                    found.append((f"{path.stem}/{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


OBJECTS = _custom_objects()
PROVIDERS = {doc["metadata"]["name"]: doc for _, doc in OBJECTS if doc["kind"] == "ModelProvider"}


@pytest.mark.parametrize(("where", "obj"), OBJECTS, ids=[w for w, _ in OBJECTS])
def test_sample_is_valid(where: str, obj: dict[str, Any], crd_validators: dict[str, Any]) -> None:
    assert crd_validators[obj["kind"]].errors(obj) == []
    parsed = parse_object(obj)
    assert parsed.metadata.name == obj["metadata"]["name"]


def test_samples_cover_every_provider_variant() -> None:
    parsed = {name: parse_object(doc) for name, doc in PROVIDERS.items()}
    specs = {name: p.spec for name, p in parsed.items() if isinstance(p, ModelProvider)}
    variants = {
        "openai": lambda s: (
            s.provider == "openai" and s.openai.base_url.startswith("https://api.openai.com")
        ),
        "openai-compatible": lambda s: (
            s.provider == "openai"
            and not is_azure(s.openai.base_url, s.openai.api_version)
            and "api.openai.com" not in s.openai.base_url
        ),
        "azure classic": lambda s: s.provider == "openai" and s.openai.api_version is not None,
        "azure v1": lambda s: (
            s.provider == "openai"
            and is_azure(s.openai.base_url, None)
            and s.openai.api_version is None
        ),
        "anthropic": lambda s: s.provider == "anthropic",
        "gemini": lambda s: s.provider == "google" and s.google.vertex is None,
        "vertex SA key": lambda s: (
            s.provider == "google"
            and s.google.vertex is not None
            and s.google.vertex.service_account_key_secret_ref is not None
        ),
        "vertex workload identity": lambda s: (
            s.provider == "google"
            and s.google.vertex is not None
            and s.service_account_name is not None
        ),
        "bedrock IRSA": lambda s: s.provider == "bedrock" and s.service_account_name is not None,
        "azure workload identity": lambda s: (
            s.provider == "openai"
            and is_azure(s.openai.base_url, s.openai.api_version)
            and s.service_account_name is not None
        ),
        "bedrock static keys": lambda s: (
            s.provider == "bedrock" and s.bedrock.credentials_secret_ref is not None
        ),
        "custom TLS CA": lambda s: s.tls is not None and s.tls.ca_secret_ref is not None,
    }
    for variant, matches in variants.items():
        assert any(matches(s) for s in specs.values()), f"no sample for {variant}"


def test_every_sample_model_references_a_sample_provider() -> None:
    models = [parse_object(doc) for _, doc in OBJECTS if doc["kind"] == "Model"]
    assert models
    for model in models:
        assert isinstance(model, Model)
        assert model.spec.provider_ref.name in PROVIDERS


def test_every_referenced_secret_and_key_exists_in_the_samples() -> None:
    secrets: dict[str, set[str]] = {}
    for path in SAMPLES.glob("*.yaml"):
        with path.open(encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if doc and doc.get("kind") == "Secret":
                    secrets[doc["metadata"]["name"]] = set(doc["stringData"])
    for name, doc in PROVIDERS.items():
        provider = parse_object(doc)
        assert isinstance(provider, ModelProvider)
        spec = provider.spec
        refs = []
        if spec.api_key_secret_ref:
            refs.append((spec.api_key_secret_ref.name, spec.api_key_secret_ref.key))
        if spec.tls and spec.tls.ca_secret_ref:
            refs.append((spec.tls.ca_secret_ref.name, spec.tls.ca_secret_ref.key))
        if spec.google and spec.google.vertex and spec.google.vertex.service_account_key_secret_ref:
            ref = spec.google.vertex.service_account_key_secret_ref
            refs.append((ref.name, ref.key))
        if spec.bedrock and spec.bedrock.credentials_secret_ref:
            ref2 = spec.bedrock.credentials_secret_ref
            refs += [(ref2.name, ref2.access_key_id_key), (ref2.name, ref2.secret_access_key_key)]
        for secret, key in refs:
            assert key in secrets.get(secret, set()), f"{name}: {secret}/{key} missing"
