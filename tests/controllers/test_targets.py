"""`status.endpoint` is the root of the URL the provider probe calls, for every provider.

The probe runs for real (`providers.probe_provider` on the target `build_target` makes) over
a `ProbeHTTP` that records each URL instead of sending it; the endpoint `targets.endpoint`
reports must prefix the provider call. No network: token requests get a canned answer,
everything else a transport failure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from flokoa_controller.api.modelprovider import ModelProviderSpec
from flokoa_controller.controllers.secrets import ServiceAccountKey, ValidatedSecrets
from flokoa_controller.controllers.targets import build_target, endpoint
from flokoa_controller.providers import probe_provider
from flokoa_controller.providers.http import HTTPResponse, ProbeHTTP, TransportError
from flokoa_controller.providers.identity import GOOGLE_TOKEN_URI
from flokoa_controller.providers.result import Reason
from flokoa_controller.providers.target import ProbeTarget

pytestmark = pytest.mark.usefixtures("hermetic_env")


class RecordingHTTP(ProbeHTTP):
    """Records every URL; answers Google's token endpoint, fails everything else."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    async def request(
        self,
        target: ProbeTarget,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        data: bytes | None = None,
    ) -> HTTPResponse:
        self.urls.append(url)
        if url == GOOGLE_TOKEN_URI:
            body = {"access_token": "ya29.test", "expires_in": 3600, "token_type": "Bearer"}
            return HTTPResponse(
                200, {"Content-Type": "application/json"}, json.dumps(body).encode()
            )
        raise TransportError(Reason.UNREACHABLE, "no network in this test")


def _service_account() -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": "my-project",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "sa@my-project.iam.gserviceaccount.com",
        "token_uri": GOOGLE_TOKEN_URI,
    }


_SECRETS = ValidatedSecrets(
    secret_hash="h", api_key="key", access_key_id="AKIDEXAMPLE", secret_access_key="secret"
)
_API_KEY = {"apiKeySecretRef": {"name": "s"}}
_BEDROCK_KEYS = {"credentialsSecretRef": {"name": "aws"}}


async def _probed(spec: ModelProviderSpec, secrets: ValidatedSecrets = _SECRETS) -> list[str]:
    http = RecordingHTTP()
    async with http:
        await probe_provider(build_target(spec, secrets), http)
    return http.urls


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"openai": {}, **_API_KEY}, "https://api.openai.com/v1"),
        (
            {"openai": {"baseURL": "https://res.openai.azure.com"}, **_API_KEY},
            "https://res.openai.azure.com",
        ),
        (
            {"openai": {"baseURL": "https://res.services.ai.azure.com/openai/v1"}, **_API_KEY},
            "https://res.services.ai.azure.com/openai/v1",
        ),
        ({"anthropic": {}, **_API_KEY}, "https://api.anthropic.com"),
        ({"google": {}, **_API_KEY}, "https://generativelanguage.googleapis.com"),
        (
            {"bedrock": {"region": "us-east-1", **_BEDROCK_KEYS}},
            "https://bedrock.us-east-1.amazonaws.com",
        ),
        (
            {"bedrock": {"region": "cn-north-1", **_BEDROCK_KEYS}},
            "https://bedrock.cn-north-1.amazonaws.com.cn",
        ),
        (
            {"bedrock": {"region": "eu-west-1", "endpointURL": "https://bedrock.vpce.example"}},
            "https://bedrock.vpce.example",
        ),
    ],
)
async def test_status_endpoint_is_the_probed_root(raw: dict[str, Any], expected: str) -> None:
    spec = ModelProviderSpec.model_validate(raw)
    assert endpoint(spec) == expected
    urls = await _probed(spec)
    assert urls
    assert urls[-1].startswith(expected.rstrip("/") + "/"), urls


@pytest.mark.parametrize(
    ("variable", "other"),
    [("AWS_ENDPOINT_URL_BEDROCK", "AWS_ENDPOINT_URL"), ("AWS_ENDPOINT_URL", None)],
)
async def test_bedrock_endpoint_override_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, variable: str, other: str | None
) -> None:
    monkeypatch.setenv(variable, "https://bedrock.gateway.example")
    if other is not None:
        monkeypatch.setenv(other, "https://ignored.example")
    spec = ModelProviderSpec.model_validate({"bedrock": {"region": "cn-north-1", **_BEDROCK_KEYS}})
    assert endpoint(spec) == "https://bedrock.gateway.example"
    urls = await _probed(spec)
    assert urls[-1].startswith("https://bedrock.gateway.example/"), urls


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("us-central1", "https://us-central1-aiplatform.googleapis.com"),
        ("global", "https://aiplatform.googleapis.com"),
    ],
)
async def test_vertex_status_endpoint_is_the_probed_root(location: str, expected: str) -> None:
    spec = ModelProviderSpec.model_validate(
        {
            "google": {
                "vertex": {
                    "projectID": "my-project",
                    "location": location,
                    "serviceAccountKeySecretRef": {"name": "sa"},
                }
            }
        }
    )
    secrets = ValidatedSecrets(
        secret_hash="h", service_account=ServiceAccountKey(_service_account())
    )
    assert endpoint(spec) == expected
    urls = await _probed(spec, secrets)
    assert urls[0] == GOOGLE_TOKEN_URI
    assert urls[-1].startswith(expected + "/"), urls
