"""`providers/endpoints.py`: each endpoint fact once, and consistent with itself."""

from __future__ import annotations

import pytest

from flokoa_controller.api.modelprovider import AZURE_OPENAI_HOST_SUFFIXES
from flokoa_controller.providers.endpoints import (
    VERTEX_HOST,
    aws_domain,
    bedrock_endpoint,
    host_of,
    is_azure_host,
    sts_endpoint,
    vertex_root,
)


@pytest.mark.parametrize("location", ["global", "us-central1", "europe-west4", "asia-east1"])
def test_vertex_root_hosts_are_vertex_hosts(location: str) -> None:
    assert VERTEX_HOST.match(host_of(vertex_root(location)))


def test_aws_partitions() -> None:
    assert aws_domain("us-east-1") == "amazonaws.com"
    assert aws_domain("cn-northwest-1") == "amazonaws.com.cn"
    assert sts_endpoint("cn-north-1") == "https://sts.cn-north-1.amazonaws.com.cn"
    assert sts_endpoint("eu-west-1") == "https://sts.eu-west-1.amazonaws.com"
    assert sts_endpoint("eu-west-1", regional=False) == "https://sts.amazonaws.com"
    assert sts_endpoint("eu-west-1", override="https://sts.local") == "https://sts.local"


def test_bedrock_endpoint_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_BEDROCK", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert bedrock_endpoint("cn-north-1", None) == "https://bedrock.cn-north-1.amazonaws.com.cn"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://all.example")
    assert bedrock_endpoint("us-east-1", None) == "https://all.example"
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", "https://bedrock.example")
    assert bedrock_endpoint("us-east-1", None) == "https://bedrock.example"
    assert bedrock_endpoint("us-east-1", "https://spec.example") == "https://spec.example"


@pytest.mark.parametrize("suffix", AZURE_OPENAI_HOST_SUFFIXES)
def test_azure_hosts(suffix: str) -> None:
    assert is_azure_host(f"https://res{suffix}/openai/v1")
    assert is_azure_host(f"https://RES{suffix.upper()}:443")
    assert not is_azure_host(f"https://res{suffix}.evil.example")
    assert not is_azure_host("not a url")
