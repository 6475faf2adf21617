"""OpenAI, OpenAI-compatible and Azure OpenAI (classic and v1) specifics."""

from __future__ import annotations

import dataclasses

import pytest
from flokoa_envtest.fakes import FakeProviders

from flokoa_controller.providers import ProbeHTTP, ProbeTarget, probe_model, probe_provider
from flokoa_controller.providers.openai import azure_deployment, azure_resource_root, models_url


@pytest.mark.parametrize(
    ("target", "url"),
    [
        (ProbeTarget(kind="openai"), "https://api.openai.com/v1/models"),
        (ProbeTarget(kind="openai", base_url="http://vllm:8000/v1/"), "http://vllm:8000/v1/models"),
        (
            ProbeTarget(kind="openai", base_url="https://r.openai.azure.com/openai/deployments/d"),
            "https://r.openai.azure.com/openai/models?api-version=2024-10-21",
        ),
        (
            ProbeTarget(
                kind="openai",
                base_url="https://r.openai.azure.com/",
                api_version="2025-01-01-preview",
            ),
            "https://r.openai.azure.com/openai/models?api-version=2025-01-01-preview",
        ),
        (
            ProbeTarget(
                kind="openai",
                base_url="https://r.openai.azure.com/openai/deployments/d",
                default_headers={"api-version": "2024-02-01"},
            ),
            "https://r.openai.azure.com/openai/models?api-version=2024-02-01",
        ),
        (  # not an Azure host: the header is only a header (issue 14)
            ProbeTarget(
                kind="openai",
                base_url="https://gw.corp/v1",
                default_headers={"api-version": "2024-02-01"},
            ),
            "https://gw.corp/v1/models",
        ),
        (
            ProbeTarget(kind="openai", base_url="https://r.openai.azure.com/openai/v1"),
            "https://r.openai.azure.com/openai/v1/models",
        ),
        (
            ProbeTarget(
                kind="openai",
                base_url="https://r.openai.azure.com/openai/v1",
                api_version="preview",
            ),
            "https://r.openai.azure.com/openai/v1/models?api-version=preview",
        ),
    ],
)
def test_list_urls(target: ProbeTarget, url: str) -> None:
    assert models_url(target) == url


def test_model_ids_are_one_path_segment() -> None:
    target = ProbeTarget(kind="openai", base_url="https://h/v1")
    assert (
        models_url(target, "ft:gpt-4o:org/x?y") == "https://h/v1/models/ft%3Agpt-4o%3Aorg%2Fx%3Fy"
    )


def test_azure_resource_root() -> None:
    assert azure_resource_root("https://r.openai.azure.com/openai/deployments/d") == (
        "https://r.openai.azure.com"
    )
    assert azure_resource_root("https://h/prefix/openai") == "https://h/prefix"
    assert azure_resource_root("https://h/openaiish/openai/x") == "https://h/openaiish"


async def test_openai_headers(fakes: FakeProviders, http: ProbeHTTP) -> None:
    target = ProbeTarget(
        kind="openai",
        base_url=fakes.openai.base_url,
        api_key=fakes.openai.api_key,
        organization_id="org-123",
        project="proj_abc",
    )
    assert (await probe_provider(target, http)).ok
    request = fakes.openai.requests[-1]
    assert request.header("Authorization") == f"Bearer {fakes.openai.api_key}"
    assert request.header("OpenAI-Organization") == "org-123"
    assert request.header("OpenAI-Project") == "proj_abc"
    assert request.header("api-key") is None


async def test_mismatched_organization(fakes: FakeProviders, http: ProbeHTTP) -> None:
    fakes.openai.organizations = {"org-right"}
    target = ProbeTarget(
        kind="openai",
        base_url=fakes.openai.base_url,
        api_key=fakes.openai.api_key,
        organization_id="org-wrong",
    )
    result = await probe_provider(target, http)
    assert result.reason == "InvalidCredentials"
    assert "OpenAI-Organization" in result.message


async def test_revoked_key(fakes: FakeProviders, http: ProbeHTTP) -> None:
    target = ProbeTarget(
        kind="openai", base_url=fakes.openai.base_url, api_key=fakes.openai.api_key
    )
    assert (await probe_provider(target, http)).ok
    fakes.openai.keys.revoke(fakes.openai.api_key)
    result = await probe_provider(target, http)
    assert result.reason == "InvalidCredentials"
    assert fakes.openai.api_key not in result.message
    assert "Incorrect API key provided" in result.message


async def test_wrong_base_url_path(fakes: FakeProviders, http: ProbeHTTP) -> None:
    target = ProbeTarget(kind="openai", base_url=fakes.openai.url + "/api", api_key="k")
    result = await probe_provider(target, http)
    assert result.reason == "EndpointNotFound"
    assert "/api/models" in result.message


async def test_azure_classic(fakes: FakeProviders, http: ProbeHTTP) -> None:
    target = ProbeTarget(
        kind="openai",
        base_url=fakes.azure.classic_base_url,
        api_key=fakes.azure.api_key,
        api_version="2024-06-01",
    )
    assert target.flavor == "azure-classic"
    assert (await probe_provider(target, http)).ok
    for request in fakes.azure.requests:
        assert request.query["api-version"] == "2024-06-01"
        assert request.header("api-key") == fakes.azure.api_key
        assert request.header("Authorization") is None
    assert [r.path for r in fakes.azure.requests] == ["/openai/models"]


async def test_azure_classic_deployment_named_unlike_its_model(
    fakes: FakeProviders, http: ProbeHTTP
) -> None:
    """A classic deployment's name is what the Model names; it is not a model of the
    resource, and no free check of it exists: usable, not verified, no request sent (the
    model GET would have answered 404 and called the deployment missing)."""
    assert "my-gpt-4o-deployment" not in fakes.azure.models
    target = ProbeTarget(
        kind="openai",
        base_url=f"{fakes.azure.url}/openai",
        api_key=fakes.azure.api_key,
        api_version="2024-10-21",
    )
    result = await probe_model(target, "my-gpt-4o-deployment", http)
    assert (result.ok, result.reason, result.http_status) == (True, "DeploymentNotVerified", None)
    assert not result.retryable
    assert 'deployment "my-gpt-4o-deployment" not verified' in result.message
    assert "pins" not in result.message
    assert result.url == f"{fakes.azure.url}/openai/deployments/my-gpt-4o-deployment"
    assert fakes.azure.requests == []

    # A deployment-scoped base URL pins the deployment; a different spec.model is pointed out.
    scoped = dataclasses.replace(target, base_url=fakes.azure.classic_base_url)
    result = await probe_model(scoped, "gpt-4o-mini", http)
    assert (result.ok, result.reason) == (True, "DeploymentNotVerified")
    assert 'the baseURL pins requests to deployment "gpt-4o"' in result.message
    assert result.url.endswith("/openai/deployments/gpt-4o")
    same = await probe_model(scoped, "gpt-4o", http)
    assert "pins" not in same.message
    assert fakes.azure.requests == []


def test_azure_deployment_of_a_base_url() -> None:
    assert azure_deployment("https://r.openai.azure.com/openai/deployments/d1/") == "d1"
    assert azure_deployment("https://gw/x/openai/deployments/my%20dep") == "my dep"
    assert azure_deployment("https://r.openai.azure.com/openai") is None
    assert azure_deployment("https://r.openai.azure.com/openai/deployments/") is None
    assert azure_deployment("https://r.openai.azure.com/openai/v1") is None


async def test_azure_classic_from_the_spec_example(fakes: FakeProviders, http: ProbeHTTP) -> None:
    """The user spec puts api-version in defaultHeaders: on Azure it becomes the query
    parameter. (The fake's host is 127.0.0.1, so the Azure flavor an Azure host gets, see
    test_target.test_openai_flavor, is given here.)"""
    target = ProbeTarget(
        kind="openai",
        flavor="azure-classic",
        base_url=fakes.azure.classic_base_url,
        api_key=fakes.azure.api_key,
        default_headers={"api-version": "2024-02-01"},
    )
    result = await probe_provider(target, http)
    assert result.ok, result
    assert "api-version=2024-02-01" in result.url
    request = fakes.azure.requests[-1]
    assert request.query["api-version"] == "2024-02-01"
    assert request.header("api-version") == "2024-02-01"


async def test_azure_classic_unsupported_version(fakes: FakeProviders, http: ProbeHTTP) -> None:
    target = ProbeTarget(
        kind="openai",
        base_url=fakes.azure.classic_base_url,
        api_key=fakes.azure.api_key,
        api_version="1999-01-01",
    )
    result = await probe_provider(target, http)
    assert (result.ok, result.reason, result.http_status) == (False, "UnexpectedResponse", 400)
    assert "api-version" in result.message


async def test_azure_v1(fakes: FakeProviders, http: ProbeHTTP) -> None:
    target = ProbeTarget(
        kind="openai",
        flavor="azure-v1",
        base_url=fakes.azure.v1_base_url,
        api_key=fakes.azure.api_key,
    )
    assert (await probe_provider(target, http)).ok
    assert (await probe_model(target, "gpt-4o", http)).ok
    # A miss on the v1 API is not proof: the name may be a deployment named unlike its model.
    missing = await probe_model(target, "gpt-5-nope", http)
    assert (missing.ok, missing.reason, missing.http_status) == (True, "DeploymentNotVerified", 404)
    assert 'deployment "gpt-5-nope" not verified' in missing.message
    for request in fakes.azure.requests:
        assert request.path.startswith("/openai/v1/models")
        assert "api-version" not in request.query
        assert request.header("api-key") == fakes.azure.api_key


async def test_azure_rejects_bearer(fakes: FakeProviders, http: ProbeHTTP) -> None:
    """An Azure key sent the OpenAI way would fail: the probe must use api-key."""
    plain = ProbeTarget(
        kind="openai",
        flavor="openai",
        base_url=fakes.azure.v1_base_url,
        api_key=fakes.azure.api_key,
    )
    result = await probe_provider(plain, http)
    assert result.reason == "InvalidCredentials"


async def test_azure_v1_names_the_model_behind_a_fine_tune(
    fakes: FakeProviders, http: ProbeHTTP
) -> None:
    fakes.azure.fine_tuned["gpt-4o-mini-2024-07-18.ft-abc123"] = "gpt-4o-mini-2024-07-18"
    target = ProbeTarget(
        kind="openai",
        flavor="azure-v1",
        base_url=fakes.azure.v1_base_url,
        api_key=fakes.azure.api_key,
    )
    result = await probe_model(target, "gpt-4o-mini-2024-07-18.ft-abc123", http)
    assert result.ok, result
    assert result.model is not None
    assert result.model.resolved == "gpt-4o-mini-2024-07-18"
    plain = await probe_model(target, "gpt-4o", http)
    assert plain.ok
    assert plain.model is None


async def test_api_version_header_on_a_gateway_keeps_bearer(
    fakes: FakeProviders, http: ProbeHTTP
) -> None:
    """Issue 14: an api-version default header on a non-Azure host is only a header."""
    target = ProbeTarget(
        kind="openai",
        base_url=fakes.openai.base_url,
        api_key=fakes.openai.api_key,
        default_headers={"api-version": "2024-10-21"},
    )
    assert target.flavor == "openai"
    assert (await probe_provider(target, http)).ok
    request = fakes.openai.requests[-1]
    assert request.path == "/v1/models"
    assert "api-version" not in request.query
    assert request.header("Authorization") == f"Bearer {fakes.openai.api_key}"
    assert request.header("api-version") == "2024-10-21"
    assert request.header("api-key") is None
