"""A table of invalid objects: each is rejected by the CRD (schema + CEL, as kube-apiserver
would) AND by the pydantic models, with the CRD's message.

For CEL rules both sides must report the very same message. For plain schema keywords
(bounds, patterns, required) the CRD has no message of its own: the API server's wording and
pydantic's differ, so each side is checked against its own wording of the same fact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from flokoa_controller.api import parse_object

KEY = {"name": "creds"}


@dataclass(frozen=True)
class Case:
    """One invalid object and the errors both validators must report."""

    id: str
    kind: str
    spec: dict[str, Any]
    crd: str
    """Substring of one of the CRD validation errors (``path: message``)."""
    pydantic: str | None = None
    """Substring of the pydantic error (default: the message part of ``crd``)."""

    def obj(self) -> dict[str, Any]:
        return {
            "apiVersion": "agent.flokoa.ai/v1alpha1",
            "kind": self.kind,
            "metadata": {"name": "x", "namespace": "default"},
            "spec": self.spec,
        }

    def pydantic_message(self) -> str:
        return self.pydantic if self.pydantic is not None else self.crd.split(": ", 1)[1]


def mp(**spec: Any) -> dict[str, Any]:
    return spec


def openai(**extra: Any) -> dict[str, Any]:
    return {"apiKeySecretRef": KEY, "openai": {}, **extra}


def model(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "providerRef": {"name": "openai"}, **extra}


ONE = "spec: exactly one of openai, anthropic, google or bedrock must be set"
URL = (
    "must be an http:// or https:// URL with a host and an optional path, without "
    "credentials (user@), query string, fragment or whitespace"
)
TOKEN = "header names must be RFC 7230 tokens (letters, digits and !#$%&'*+-.^_`|~)"
RESERVED = "must not set Authorization, Proxy-Authorization, api-key, x-api-key"
CRLF = "header values must not contain carriage returns or line feeds"
SKIP = (
    "spec.tls.insecureSkipVerify: insecureSkipVerify disables certificate verification: it "
    "cannot be combined with caSecretRef or useSystemCAs"
)
VERTEX = {"projectID": "my-project", "location": "us-central1"}

CASES = [
    # --- CEL rules: identical message on both sides ---
    Case("no-provider-block", "ModelProvider", mp(apiKeySecretRef=KEY), ONE),
    Case("two-provider-blocks", "ModelProvider", openai(anthropic={}), ONE),
    Case(
        "openai-without-key",
        "ModelProvider",
        mp(openai={}),
        "spec.apiKeySecretRef: apiKeySecretRef is required with openai (or serviceAccountName "
        "for Azure OpenAI)",
    ),
    Case(
        "anthropic-without-key",
        "ModelProvider",
        mp(anthropic={"version": "2023-06-01"}),
        "spec.apiKeySecretRef: apiKeySecretRef is required with anthropic",
    ),
    Case(
        "gemini-without-key",
        "ModelProvider",
        mp(google={}),
        "spec.apiKeySecretRef: apiKeySecretRef is required with google unless google.vertex is set",
    ),
    Case(
        "vertex-with-api-key",
        "ModelProvider",
        mp(apiKeySecretRef=KEY, google={"vertex": VERTEX}),
        "spec.apiKeySecretRef: apiKeySecretRef must not be set with google.vertex: Vertex AI "
        "authenticates with OAuth2 (vertex.serviceAccountKeySecretRef or workload identity)",
    ),
    Case(
        "vertex-without-location",
        "ModelProvider",
        mp(google={"vertex": {"projectID": "my-project"}}),
        "spec.google.vertex: vertex requires projectID and location",
    ),
    Case(
        "vertex-without-project",
        "ModelProvider",
        mp(google={"vertex": {"location": "us-central1"}}),
        "spec.google.vertex: vertex requires projectID and location",
    ),
    Case(
        "bedrock-api-key-and-static-keys",
        "ModelProvider",
        mp(apiKeySecretRef=KEY, bedrock={"region": "us-east-1", "credentialsSecretRef": KEY}),
        "spec.apiKeySecretRef: apiKeySecretRef (a Bedrock API key) and "
        "bedrock.credentialsSecretRef (SigV4 access keys) are mutually exclusive",
    ),
    Case(
        "bedrock-api-key-and-role",
        "ModelProvider",
        mp(
            apiKeySecretRef=KEY,
            bedrock={"region": "us-east-1", "roleARN": "arn:aws:iam::123456789012:role/r"},
        ),
        "spec.apiKeySecretRef: bedrock.roleARN needs SigV4 credentials: it cannot be used "
        "with apiKeySecretRef",
    ),
    # --- serviceAccountName: one credential per cloud, clouds with workload identity only ---
    Case(
        "service-account-and-bedrock-static-keys",
        "ModelProvider",
        mp(
            serviceAccountName="agent", bedrock={"region": "us-east-1", "credentialsSecretRef": KEY}
        ),
        "spec.serviceAccountName: serviceAccountName and bedrock.credentialsSecretRef are "
        "mutually exclusive: pick one credential",
    ),
    Case(
        "service-account-and-bedrock-api-key",
        "ModelProvider",
        mp(serviceAccountName="agent", apiKeySecretRef=KEY, bedrock={"region": "us-east-1"}),
        "spec.serviceAccountName: serviceAccountName and apiKeySecretRef are mutually "
        "exclusive: pick one credential",
    ),
    Case(
        "service-account-and-vertex-key",
        "ModelProvider",
        mp(
            serviceAccountName="agent",
            google={"vertex": {**VERTEX, "serviceAccountKeySecretRef": KEY}},
        ),
        "spec.serviceAccountName: serviceAccountName and "
        "google.vertex.serviceAccountKeySecretRef are mutually exclusive: pick one credential",
    ),
    Case(
        "service-account-and-azure-key",
        "ModelProvider",
        mp(
            serviceAccountName="agent",
            apiKeySecretRef=KEY,
            openai={"baseURL": "https://r.openai.azure.com/openai/v1"},
        ),
        "spec.serviceAccountName: serviceAccountName and apiKeySecretRef are mutually "
        "exclusive: pick one credential",
    ),
    Case(
        "service-account-with-openai",
        "ModelProvider",
        mp(serviceAccountName="agent", openai={}),
        "spec.serviceAccountName: serviceAccountName is a cloud workload identity: it works "
        "with bedrock, google.vertex and Azure OpenAI (an Azure baseURL or apiVersion) only",
    ),
    Case(
        "service-account-with-a-lookalike-azure-host",
        "ModelProvider",
        mp(serviceAccountName="agent", openai={"baseURL": "https://openai.azure.com.evil.io/v1"}),
        "spec.serviceAccountName: serviceAccountName is a cloud workload identity",
    ),
    Case(
        "external-id-without-role",
        "ModelProvider",
        mp(bedrock={"region": "us-east-1", "externalID": "tenant-42"}, serviceAccountName="a"),
        "spec.bedrock.externalID: externalID is sent with roleARN's AssumeRole: it needs roleARN",
    ),
    Case(
        "ftp-base-url",
        "ModelProvider",
        openai(openai={"baseURL": "ftp://llm.example.com/v1"}),
        f"spec.openai.baseURL: {URL}",
    ),
    Case(
        "base-url-with-credentials",
        "ModelProvider",
        openai(openai={"baseURL": "https://user:secret@llm.example.com/v1"}),
        f"spec.openai.baseURL: {URL}",
    ),
    Case(
        "base-url-with-query",
        "ModelProvider",
        mp(apiKeySecretRef=KEY, anthropic={"baseURL": "https://api.anthropic.com/?beta=1"}),
        f"spec.anthropic.baseURL: {URL}",
    ),
    Case(
        "base-url-with-fragment",
        "ModelProvider",
        mp(apiKeySecretRef=KEY, google={"baseURL": "https://gemini.example.com/#x"}),
        f"spec.google.baseURL: {URL}",
    ),
    Case(
        "endpoint-url-with-space",
        "ModelProvider",
        mp(bedrock={"region": "us-east-1", "endpointURL": "https://bedrock .example.com"}),
        f"spec.bedrock.endpointURL: {URL}",
    ),
    Case(
        "url-with-trailing-newline",
        "ModelProvider",
        openai(openai={"baseURL": "https://llm.example.com/v1\n"}),
        f"spec.openai.baseURL: {URL}",
    ),
    Case(
        "header-value-crlf",
        "ModelProvider",
        openai(defaultHeaders={"X-Tenant": "a\r\nX-Injected: 1"}),
        f"spec.defaultHeaders[X-Tenant]: {CRLF}",
    ),
    Case(
        "header-name-with-space",
        "ModelProvider",
        openai(defaultHeaders={"X Tenant": "a"}),
        f"spec.defaultHeaders: {TOKEN}",
    ),
    Case(
        "header-name-with-colon",
        "ModelProvider",
        openai(defaultHeaders={"X-Tenant:": "a"}),
        f"spec.defaultHeaders: {TOKEN}",
    ),
    Case(
        "reserved-header-authorization",
        "ModelProvider",
        openai(defaultHeaders={"authorization": "Bearer sk-leak"}),
        f"spec.defaultHeaders: {RESERVED}",
    ),
    Case(
        "reserved-header-any-case",
        "ModelProvider",
        openai(defaultHeaders={"X-API-Key": "leak"}),
        f"spec.defaultHeaders: {RESERVED}",
    ),
    Case(
        "skip-verify-with-ca",
        "ModelProvider",
        openai(tls={"caSecretRef": {"name": "ca"}, "insecureSkipVerify": True}),
        SKIP,
    ),
    Case(
        "skip-verify-with-system-cas",
        "ModelProvider",
        openai(tls={"useSystemCAs": True, "insecureSkipVerify": True}),
        SKIP,
    ),
    Case(
        "azure-api-version-on-openai-com",
        "ModelProvider",
        openai(openai={"apiVersion": "2024-10-21"}),
        "spec.openai.apiVersion: apiVersion is Azure OpenAI's api-version query parameter: "
        "set baseURL to the Azure endpoint, not api.openai.com",
    ),
    Case(
        "model-reserved-extra-header",
        "Model",
        model(settings={"extraHeaders": {"Authorization": "Bearer x"}}),
        f"spec.settings.extraHeaders: {RESERVED}",
    ),
    Case(
        "model-extra-header-line-feed",
        "Model",
        model(settings={"extraHeaders": {"X-Trace": "a\nb"}}),
        f"spec.settings.extraHeaders[X-Trace]: {CRLF}",
    ),
    # --- schema keywords: the same fact in each validator's words ---
    Case(
        "negative-timeout",
        "ModelProvider",
        openai(openai={"timeoutSeconds": -1}),
        "spec.openai.timeoutSeconds: should be greater than or equal to 1",
        "Input should be greater than or equal to 1",
    ),
    Case(
        "timeout-too-long",
        "ModelProvider",
        mp(apiKeySecretRef=KEY, anthropic={"timeoutSeconds": 601}),
        "spec.anthropic.timeoutSeconds: should be less than or equal to 600",
        "Input should be less than or equal to 600",
    ),
    Case(
        "bad-region",
        "ModelProvider",
        mp(bedrock={"region": "US-EAST-1"}),
        "spec.bedrock.region: should match",
        "String should match pattern",
    ),
    Case(
        "bad-role-arn",
        "ModelProvider",
        mp(bedrock={"region": "us-east-1", "roleARN": "arn:aws:iam::123:role/r"}),
        "spec.bedrock.roleARN: should match",
        "String should match pattern",
    ),
    Case(
        "bedrock-without-region",
        "ModelProvider",
        mp(bedrock={}),
        "spec.bedrock.region: Required value",
        "Field required",
    ),
    Case(
        "secret-name-not-a-dns-name",
        "ModelProvider",
        mp(apiKeySecretRef={"name": "My_Creds"}, openai={}),
        "spec.apiKeySecretRef.name: should match",
        "String should match pattern",
    ),
    Case(
        "too-many-headers",
        "ModelProvider",
        openai(defaultHeaders={f"X-H{i}": "v" for i in range(33)}),
        "spec.defaultHeaders: Too many: must have at most 32 properties",
        "Dictionary should have at most 32 items",
    ),
    Case(
        "bad-anthropic-version",
        "ModelProvider",
        mp(apiKeySecretRef=KEY, anthropic={"version": "latest"}),
        "spec.anthropic.version: should match",
        "String should match pattern",
    ),
    Case(
        "temperature-above-2",
        "Model",
        model(settings={"temperature": 2.5}),
        "spec.settings.temperature: should be less than or equal to 2",
        "Input should be less than or equal to 2",
    ),
    Case(
        "negative-top-p",
        "Model",
        model(settings={"topP": -0.1}),
        "spec.settings.topP: should be greater than or equal to 0",
        "Input should be greater than or equal to 0",
    ),
    Case(
        "zero-max-tokens",
        "Model",
        model(settings={"maxTokens": 0}),
        "spec.settings.maxTokens: should be greater than or equal to 1",
        "Input should be greater than or equal to 1",
    ),
    Case(
        "too-many-stop-sequences",
        "Model",
        model(settings={"stopSequences": [str(i) for i in range(9)]}),
        "spec.settings.stopSequences: Too many: must have at most 8 items",
        "List should have at most 8 items",
    ),
    Case(
        "model-name-with-space",
        "Model",
        model(model="gpt 4o"),
        "spec.model: should match",
        "String should match pattern",
    ),
    Case(
        "model-without-provider-ref",
        "Model",
        {"model": "gpt-4o-mini"},
        "spec.providerRef: Required value",
        "Field required",
    ),
]


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 20
    assert len({c.id for c in CASES}) == len(CASES)
    assert sum(1 for c in CASES if c.pydantic is None) >= 20, "at least 20 CEL-rule cases"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rejected_by_crd(case: Case, crd_validators: dict[str, Any]) -> None:
    errors = crd_validators[case.kind].errors(case.obj())
    assert len(errors) == 1, errors  # one fault per case
    assert case.crd in errors[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rejected_by_pydantic(case: Case) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_object(case.obj())
    messages = [e["msg"] for e in raised.value.errors()]
    assert any(case.pydantic_message() in m for m in messages), messages
    if case.pydantic is None:
        assert [e["type"] for e in raised.value.errors()] == ["crd_rule"]


@pytest.mark.parametrize("spec", [openai(), mp(apiKeySecretRef=KEY, anthropic={})])
def test_base_provider_is_accepted(spec: dict[str, Any], crd_validators: dict[str, Any]) -> None:
    """The table's starting points are valid: each case's error comes from its change."""
    obj = Case("base", "ModelProvider", spec, "").obj()
    assert crd_validators["ModelProvider"].errors(obj) == []
    parse_object(obj)


def test_base_model_is_accepted(crd_validators: dict[str, Any]) -> None:
    obj = Case("base", "Model", model(settings={"extraHeaders": {"X-Ok": "1"}}), "").obj()
    assert crd_validators["Model"].errors(obj) == []
    parse_object(obj)
