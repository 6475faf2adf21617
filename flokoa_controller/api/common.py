"""Types shared by ModelProvider and Model: names, header maps, timestamps, conditions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, PlainSerializer

from flokoa_controller.api.base import APIModel
from flokoa_controller.api.rules import (
    HEADER_NAMES_RULE,
    HEADER_VALUE_RULE,
    METADATA_HEADERS_RULE,
    RESERVED_HEADERS_RULE,
    URL_RULE,
)

ProviderType = Literal["openai", "anthropic", "google", "bedrock"]
"""The four provider families; every ModelProvider sets exactly one of them."""

PROVIDER_TYPES: tuple[ProviderType, ...] = ("openai", "anthropic", "google", "bedrock")
"""`ProviderType` values in declaration order."""

ConditionStatus = Literal["True", "False", "Unknown"]
"""A condition's status, as in metav1.Condition."""

DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""A Kubernetes object name (RFC 1123 subdomain), the form of Secret and ModelProvider names."""

SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
"""A key of a Secret's `data`."""

VISIBLE_ASCII_PATTERN = r"^[!-~]+$"
"""Printable ASCII without spaces: identifiers that travel in HTTP headers or URLs."""

ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
"""The name of an object in the same namespace (an RFC 1123 subdomain)."""

SecretKey = Annotated[str, Field(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)]
"""The name of a key in a Secret's `data`."""

HTTPURL = Annotated[str, Field(min_length=1, max_length=2048), URL_RULE]
"""An absolute http(s) URL without credentials, query or fragment."""

TimeoutSeconds = Annotated[int, Field(ge=1, le=600)]
"""A per-request timeout in whole seconds, between 1 and 600."""

HeaderValue = Annotated[str, Field(max_length=4096), HEADER_VALUE_RULE]
"""A header value: any text without CR or LF, at most 4096 characters."""

HeaderMap = Annotated[
    dict[str, HeaderValue],
    Field(max_length=32),
    HEADER_NAMES_RULE,
    RESERVED_HEADERS_RULE,
    METADATA_HEADERS_RULE,
]
"""Extra HTTP headers: at most 32, names are RFC 7230 tokens, reserved and cloud metadata
names are refused."""


def _utc_seconds(value: datetime) -> datetime:
    """Normalise to UTC with whole seconds (metav1.Time keeps no more; naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


def _format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z` suffix, exactly as kube-apiserver writes metav1.Time."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


Time = Annotated[
    datetime,
    AfterValidator(_utc_seconds),
    PlainSerializer(_format_time, return_type=str, when_used="json"),
]
"""A metav1.Time: UTC, whole seconds, written as `2006-01-02T15:04:05Z`.

Writing exactly what the API server stores keeps a status read back from the server equal to
the one the controller computed, so an unchanged status is never re-patched.
"""

CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
"""A condition type: a CamelCase name, optionally prefixed by a DNS subdomain and `/`."""

CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
"""A condition reason: a CamelCase word such as `SecretNotFound`."""


class Condition(APIModel):
    """One aspect of the object's state, in the shape of metav1.Condition.

    Conditions are keyed by `type`. `Ready` sums up the others; `status` is always
    `True`, `False` or `Unknown` and `reason` says why in one CamelCase word.
    """

    type: Annotated[str, Field(max_length=316, pattern=CONDITION_TYPE_PATTERN)]
    """The aspect this condition describes, e.g. `Ready` or `CredentialsValid`."""
    status: ConditionStatus
    """Whether the aspect holds: `True`, `False` or `Unknown` (not yet determined)."""
    reason: Annotated[str, Field(min_length=1, max_length=1024, pattern=CONDITION_REASON_PATTERN)]
    """Why the condition has this status, as one CamelCase word usable in alerts."""
    message: Annotated[str, Field(max_length=32768)]
    """A human-readable explanation naming what failed (URL, Secret, key); may be empty."""
    last_transition_time: Time = Field(alias="lastTransitionTime")
    """When `status` last changed (not when the condition was last written)."""
    observed_generation: Annotated[int, Field(ge=0)] | None = Field(
        default=None, alias="observedGeneration", json_schema_extra={"format": "int64"}
    )
    """The `metadata.generation` this condition was computed from."""


Conditions = Annotated[
    list[Condition],
    Field(
        max_length=16,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    ),
]
"""A list of conditions with at most one entry per `type`."""


class ObjectMeta(APIModel):
    """The parts of an object's metadata the controller reads.

    Not part of the generated schema: kube-apiserver validates metadata itself.
    """

    name: str = ""
    """The object's name, unique in its namespace."""
    namespace: str = ""
    """The object's namespace."""
    uid: str = ""
    """The object's unique identifier."""
    generation: int = 0
    """Incremented by the API server on every change to `spec`."""
    resource_version: str = Field(default="", alias="resourceVersion")
    """The opaque version of the whole object, for optimistic concurrency."""
    labels: dict[str, str] = Field(default_factory=dict)
    """The object's labels."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """The object's annotations."""
