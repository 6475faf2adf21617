"""The cloud metadata headers cannot be set through `defaultHeaders` (CRD and pydantic)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flokoa_controller.api.modelprovider import ModelProvider
from flokoa_controller.controllers.setup import ControllerSettings
from flokoa_controller.kube.errors import Invalid

from .conftest import MakeOperator

METADATA_HEADERS = (
    "Metadata-Flavor",
    "metadata",
    "X-aws-ec2-metadata-token",
    "X-Google-Metadata-Request",
)


def provider(header: str) -> dict[str, object]:
    return {
        "apiVersion": "agent.flokoa.ai/v1alpha1",
        "kind": "ModelProvider",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "apiKeySecretRef": {"name": "key"},
            "openai": {"baseURL": "https://gateway.example/v1"},
            "defaultHeaders": {header: "true"},
        },
    }


@pytest.mark.parametrize("header", METADATA_HEADERS)
def test_pydantic_refuses_metadata_headers(header: str) -> None:
    with pytest.raises(ValidationError, match="Metadata-Flavor"):
        ModelProvider.model_validate(provider(header))


async def test_crd_refuses_metadata_headers(operator: MakeOperator) -> None:
    async with operator(ControllerSettings()) as op:
        for header in METADATA_HEADERS:
            body = provider(header)
            body["metadata"] = {"name": "p", "namespace": op.namespace}
            with pytest.raises(Invalid, match="Metadata-Flavor"):
                await op.put_provider("p", body["spec"])  # type: ignore[arg-type]
