"""REST resource types of the two kinds the controllers reconcile."""

from __future__ import annotations

from flokoa_controller.api.meta import MODEL, MODEL_PROVIDER, APIResource
from flokoa_controller.kube.resources import ResourceType

__all__ = ["MODELPROVIDERS", "MODELS"]


def _resource_type(resource: APIResource) -> ResourceType:
    return ResourceType(
        resource.group, resource.version, resource.plural, resource.kind, resource.namespaced
    )


MODELPROVIDERS = _resource_type(MODEL_PROVIDER)
"""``modelproviders.agent.flokoa.ai/v1alpha1``."""
MODELS = _resource_type(MODEL)
"""``models.agent.flokoa.ai/v1alpha1``."""
