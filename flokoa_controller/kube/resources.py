"""Resource types: which REST path serves a kind.

A `ResourceType` is the client's equivalent of a GroupVersionResource plus the two facts
needed to build URLs and bodies: the kind and whether the resource is namespaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

__all__ = [
    "CONFIGMAPS",
    "CRDS",
    "EVENTS",
    "LEASES",
    "NAMESPACES",
    "SECRETS",
    "ResourceType",
]


_PLAIN_SEGMENT = re.compile(r"[a-z0-9][a-z0-9.-]*")
"""DNS-style names (nearly every name): nothing to quote."""


def _segment(value: str, what: str) -> str:
    """Quote one path segment; reject values that cannot name anything."""
    if _PLAIN_SEGMENT.fullmatch(value) and value not in (".", ".."):
        return value
    if not value or value in (".", ".."):
        raise ValueError(f"invalid {what}: {value!r}")
    return quote(value, safe="")


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A REST resource of the Kubernetes API (group, version, plural) and its kind.

    `group` is "" for the core API group (served under `/api/v1`); every other group is
    served under `/apis/<group>/<version>`.
    """

    group: str
    """API group, "" for core."""
    version: str
    """API version within the group, e.g. "v1"."""
    plural: str
    """Resource name in URLs, e.g. "secrets"."""
    kind: str
    """Kind of a single object, e.g. "Secret"."""
    namespaced: bool
    """Whether objects live in a namespace (False: cluster-scoped)."""

    @property
    def api_version(self) -> str:
        """The `apiVersion` field of objects of this type ("v1" or "group/version")."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def prefix(self) -> str:
        """The URL prefix of the group version: "/api/v1" or "/apis/<group>/<version>"."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(
        self,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """URL path of a collection, an object or an object's subresource.

        - namespaced type, `namespace` given: `.../namespaces/<ns>/<plural>[/<name>[/<sub>]]`;
        - namespaced type, no namespace: the all-namespaces collection `.../<plural>`
          (only valid for list and watch, so `name` is then refused);
        - cluster-scoped type: `.../<plural>[/<name>[/<sub>]]`; a namespace is refused.
        """
        if subresource is not None and name is None:
            raise ValueError("a subresource needs an object name")
        parts = [self.prefix]
        if namespace is not None:
            if not self.namespaced:
                raise ValueError(f"{self.plural} are cluster-scoped: no namespace allowed")
            parts += ["namespaces", _segment(namespace, "namespace")]
        elif name is not None and self.namespaced:
            raise ValueError(f"{self.plural} are namespaced: a namespace is needed with a name")
        parts.append(self.plural)
        if name is not None:
            parts.append(_segment(name, "name"))
        if subresource is not None:
            parts.append(_segment(subresource, "subresource"))
        return "/".join(parts)

    def __str__(self) -> str:
        """`plural.group/version`, or `plural/version` for the core group."""
        return (
            f"{self.plural}.{self.group}/{self.version}"
            if self.group
            else (f"{self.plural}/{self.version}")
        )


SECRETS = ResourceType("", "v1", "secrets", "Secret", namespaced=True)
"""core/v1 Secrets."""
CONFIGMAPS = ResourceType("", "v1", "configmaps", "ConfigMap", namespaced=True)
"""core/v1 ConfigMaps."""
EVENTS = ResourceType("", "v1", "events", "Event", namespaced=True)
"""core/v1 Events (the API client-go's event recorder writes)."""
NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", namespaced=False)
"""core/v1 Namespaces."""
LEASES = ResourceType("coordination.k8s.io", "v1", "leases", "Lease", namespaced=True)
"""coordination.k8s.io/v1 Leases (leader election)."""
CRDS = ResourceType(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    "CustomResourceDefinition",
    namespaced=False,
)
"""apiextensions.k8s.io/v1 CustomResourceDefinitions."""
