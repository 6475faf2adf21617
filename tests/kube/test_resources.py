"""ResourceType: URL paths of collections, objects and subresources."""

from __future__ import annotations

import pytest

from flokoa_controller.kube.resources import (
    CONFIGMAPS,
    CRDS,
    EVENTS,
    LEASES,
    NAMESPACES,
    SECRETS,
    ResourceType,
)

MODELS = ResourceType("agent.flokoa.ai", "v1alpha1", "models", "Model", namespaced=True)


@pytest.mark.parametrize(
    ("rt", "args", "expected"),
    [
        (SECRETS, {}, "/api/v1/secrets"),
        (SECRETS, {"namespace": "ns"}, "/api/v1/namespaces/ns/secrets"),
        (SECRETS, {"namespace": "ns", "name": "s"}, "/api/v1/namespaces/ns/secrets/s"),
        (NAMESPACES, {}, "/api/v1/namespaces"),
        (NAMESPACES, {"name": "kube-system"}, "/api/v1/namespaces/kube-system"),
        (NAMESPACES, {"name": "x", "subresource": "finalize"}, "/api/v1/namespaces/x/finalize"),
        (
            LEASES,
            {"namespace": "n", "name": "l"},
            "/apis/coordination.k8s.io/v1/namespaces/n/leases/l",
        ),
        (
            CRDS,
            {"name": "models.agent.flokoa.ai"},
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/models.agent.flokoa.ai",
        ),
        (MODELS, {}, "/apis/agent.flokoa.ai/v1alpha1/models"),
        (
            MODELS,
            {"namespace": "a", "name": "m", "subresource": "status"},
            "/apis/agent.flokoa.ai/v1alpha1/namespaces/a/models/m/status",
        ),
        (
            SECRETS,
            {"namespace": "ns", "name": "we ird/x"},
            "/api/v1/namespaces/ns/secrets/we%20ird%2Fx",
        ),
    ],
)
def test_paths(rt: ResourceType, args: dict[str, str], expected: str) -> None:
    assert rt.path(**args) == expected


@pytest.mark.parametrize(
    ("rt", "args"),
    [
        (NAMESPACES, {"namespace": "ns"}),  # cluster-scoped with a namespace
        (SECRETS, {"name": "s"}),  # namespaced object without a namespace
        (SECRETS, {"namespace": "ns", "subresource": "status"}),  # subresource without name
        (SECRETS, {"namespace": "ns", "name": ".."}),
        (SECRETS, {"namespace": "", "name": "x"}),
    ],
)
def test_invalid_paths(rt: ResourceType, args: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        rt.path(**args)


def test_api_version_and_constants() -> None:
    assert SECRETS.api_version == "v1"
    assert LEASES.api_version == "coordination.k8s.io/v1"
    assert MODELS.api_version == "agent.flokoa.ai/v1alpha1"
    assert EVENTS.group == ""
    assert EVENTS.kind == "Event"
    assert CONFIGMAPS.namespaced
    assert not CRDS.namespaced
    assert not NAMESPACES.namespaced
    assert str(MODELS) == "models.agent.flokoa.ai/v1alpha1"
    assert str(SECRETS) == "secrets/v1"
    # frozen and hashable: usable as a dict key for shared informers
    assert {SECRETS: 1}[ResourceType("", "v1", "secrets", "Secret", True)] == 1
