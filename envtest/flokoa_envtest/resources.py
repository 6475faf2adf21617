"""What the server serves: resource descriptions, per-kind strategies and the live registry.

A :class:`ResourceInfo` is one served group/version/resource (what discovery lists and URLs
name). Several may share one storage bucket: every served version of a CRD, and the core/v1 and
events.k8s.io/v1 forms of Events. A :class:`View` converts between the stored form and a served
version. A :class:`Strategy` carries the kind-specific rules (like kube's registry strategies):
normalisation, validation, generation, the status subresource, strategic-merge support.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flokoa_envtest.fielderrors import FieldError
from flokoa_envtest.patch import OBJECT_META_STRATEGIES, ListStrategies
from flokoa_envtest.selectors import COMMON_FIELDS, FieldGetter
from flokoa_envtest.shapes import Shape
from flokoa_envtest.validation import NameValidator, dns1123_subdomain

JSON = dict[str, Any]

STANDARD_VERBS: tuple[str, ...] = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)
"""Verbs of an ordinary resource, in kube's discovery order."""

Prepare = Callable[[JSON, JSON | None], None]
"""Normalise an incoming object in place (``old`` is None on create)."""
Validate = Callable[[JSON, JSON | None], list[FieldError]]
"""Field problems of an object (``old`` is None on create)."""
Admit = Callable[[JSON, JSON | None, list[FieldError]], tuple[JSON, list[FieldError]]]
"""Schema admission for custom resources: (pruned and defaulted object, problems).

The third argument lists the problems found before the schema ran (they can block CEL rules).
"""
UnknownFields = Callable[[JSON], list[str]]
"""Paths of fields the schema does not know (for ``fieldValidation=Strict``)."""


@dataclass(frozen=True)
class Strategy:
    """Kind-specific rules applied on every write of a stored resource."""

    kind: str
    group: str
    generation: bool = False
    """Whether ``metadata.generation`` is maintained (custom resources and CRDs)."""
    status_subresource: bool = False
    """Whether ``/status`` exists: status is then written only there, and ignored elsewhere."""
    smp: ListStrategies | None = field(default_factory=lambda: dict(OBJECT_META_STRATEGIES))
    """List strategies for strategic merge patch; None: SMP refused with 415 (custom resources)."""
    prepare: Prepare | None = None
    validate: Validate | None = None
    admit: Admit | None = None
    unknown_fields: UnknownFields | None = None
    """Unknown-field paths per the schema (custom resources; metadata is checked apart)."""
    shape: Shape | None = None
    """Known fields of a built-in kind in its served form (unknown ones are reported, dropped)."""
    name_validator: NameValidator = dns1123_subdomain
    return_deleted_object: bool = False
    """DELETE answers the object (namespaces, CRDs) instead of a Success Status."""
    allow_create_on_update: bool = False
    """PUT of a missing object creates it (Events)."""
    spec_fields: Callable[[JSON], Any] | None = None
    """The part of the object whose change bumps ``metadata.generation``."""


@dataclass(frozen=True)
class View:
    """Conversion between the stored form and one served version."""

    name: str
    to_view: Callable[[JSON], JSON]
    from_view: Callable[[JSON], JSON]


@dataclass(frozen=True)
class ResourceInfo:
    """One served group/version/resource."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    bucket: str
    """Name of the storage bucket (shared by every version of the resource)."""
    strategy: Strategy
    list_kind: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS
    subresources: tuple[str, ...] = ()
    view: View | None = None
    """Conversion to this version; None when this version is the stored form."""
    printer_columns: tuple[JSON, ...] | None = None
    """A CRD version's additionalPrinterColumns; None for the built-in defaults."""
    field_selectors: Mapping[str, FieldGetter] = field(default_factory=lambda: COMMON_FIELDS)
    field_aliases: Mapping[str, str] | None = None
    custom: bool = False
    schema: JSON | None = None
    """The openAPIV3Schema of this version (custom resources)."""
    storage_version: bool = True
    """Whether this is the version objects are stored in."""

    @property
    def api_version(self) -> str:
        """``group/version`` or ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resolved_list_kind(self) -> str:
        """The list kind (``KindList`` unless set)."""
        return self.list_kind or f"{self.kind}List"

    def to_view(self, record_obj: JSON) -> JSON:
        """The stored object as this version serves it."""
        return self.view.to_view(record_obj) if self.view else record_obj


_KUBE_VERSION = re.compile(r"^v([1-9][0-9]*)(?:(alpha|beta)([1-9][0-9]*))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key putting versions in kube's priority order (v2, v1, v1beta2, v1alpha1, other)."""
    m = _KUBE_VERSION.match(version)
    if not m:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, version)


class Registry:
    """The live set of served resources, kept current as CRDs come and go."""

    def __init__(self) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceInfo] = {}
        self._group_order: list[str] = []
        self._versions: dict[str, list[str]] = {}
        self.generation = 0
        """Bumped on every change (discovery and OpenAPI caches key on it)."""

    def add(self, info: ResourceInfo) -> None:
        """Serve ``info`` (replacing an earlier description of the same GVR)."""
        self._by_gvr[(info.group, info.version, info.plural)] = info
        if info.group not in self._versions:
            self._group_order.append(info.group)
            self._versions[info.group] = []
        versions = self._versions[info.group]
        if info.version not in versions:
            versions.append(info.version)
            versions.sort(key=version_priority)
        self.generation += 1

    def remove(self, group: str, version: str, plural: str) -> None:
        """Stop serving one GVR (and its group/version once empty)."""
        if self._by_gvr.pop((group, version, plural), None) is None:
            return
        if not any(g == group and v == version for g, v, _ in self._by_gvr):
            versions = self._versions.get(group, [])
            if version in versions:
                versions.remove(version)
            if not versions:
                self._versions.pop(group, None)
                if group in self._group_order:
                    self._group_order.remove(group)
        self.generation += 1

    def get(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        """The served resource at ``/apis/group/version/plural`` (or ``/api/v1/plural``)."""
        return self._by_gvr.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceInfo | None:
        """The served resource for an object's apiVersion and kind."""
        group, _, version = api_version.rpartition("/")
        for (g, v, _), info in self._by_gvr.items():
            if g == group and v == version and info.kind == kind:
                return info
        return None

    def groups(self) -> list[str]:
        """Groups in discovery order (core first)."""
        return list(self._group_order)

    def versions(self, group: str) -> list[str]:
        """Served versions of ``group``, preferred first."""
        return list(self._versions.get(group, []))

    def resources(self, group: str, version: str) -> list[ResourceInfo]:
        """Resources served in ``group/version``."""
        return [i for (g, v, _), i in self._by_gvr.items() if g == group and v == version]

    def all(self) -> list[ResourceInfo]:
        """Every served resource."""
        return list(self._by_gvr.values())

    def by_bucket(self, bucket: str) -> list[ResourceInfo]:
        """Every served version of one stored resource."""
        return [i for i in self._by_gvr.values() if i.bucket == bucket]
