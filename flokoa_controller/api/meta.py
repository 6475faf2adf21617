"""Group, version and names of the ``agent.flokoa.ai`` resources."""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "agent.flokoa.ai"
"""The API group of every flokoa resource."""

VERSION = "v1alpha1"
"""The served (and stored) version."""

CATEGORY = "flokoa"
"""The category both kinds belong to: ``kubectl get flokoa`` lists them."""


@dataclass(frozen=True)
class APIResource:
    """The names of one custom resource, as its CRD declares them."""

    group: str
    """The API group, e.g. ``agent.flokoa.ai``."""
    version: str
    """The API version, e.g. ``v1alpha1``."""
    plural: str
    """The resource name in URLs, e.g. ``modelproviders``."""
    kind: str
    """The object kind, e.g. ``ModelProvider``."""
    singular: str
    """The lower-case singular name, e.g. ``modelprovider``."""
    short_names: tuple[str, ...]
    """kubectl abbreviations, e.g. ``mp``."""
    namespaced: bool = True
    """Both flokoa kinds are namespaced."""

    @property
    def api_version(self) -> str:
        """``group/version``, the value of an object's ``apiVersion``."""
        return f"{self.group}/{self.version}"

    @property
    def list_kind(self) -> str:
        """The kind of a list of these objects, e.g. ``ModelProviderList``."""
        return f"{self.kind}List"

    @property
    def crd_name(self) -> str:
        """The name of the CRD, ``plural.group``."""
        return f"{self.plural}.{self.group}"


MODEL_PROVIDER = APIResource(
    group=GROUP,
    version=VERSION,
    plural="modelproviders",
    kind="ModelProvider",
    singular="modelprovider",
    short_names=("mp",),
)
"""The ModelProvider resource."""

MODEL = APIResource(
    group=GROUP,
    version=VERSION,
    plural="models",
    kind="Model",
    singular="model",
    short_names=("mdl",),
)
"""The Model resource."""
