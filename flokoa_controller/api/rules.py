"""Validation rules declared once, enforced twice.

Every rule pairs a CEL expression (emitted into the CRD as an ``x-kubernetes-validations``
entry, enforced by kube-apiserver) with a plain-Python check that means the same thing
(enforced by the pydantic models, so the controller applies the same rules to whatever it
reads). Both raise the same ``message``.

Rules are used in two ways:

- as ``Annotated`` metadata on a field type (``Annotated[str, URL_RULE]``): the check gets the
  field's value and the CEL ``self`` is that value;
- listed in a model class's ``__rules__``: the check gets the validated model instance and the
  CEL ``self`` is the object.

The CEL expressions use only the CEL standard definitions (``has``, ``all``, ``matches``,
``contains``, ``size``, the ternary operator), none of the Kubernetes extension libraries,
so any conformant CEL evaluator gives the same answer as kube-apiserver. Regular expressions
use RE2 syntax restricted to what Python's ``re`` reads identically: explicit ASCII classes
(no ``\\d``, ``\\s`` or ``\\w``, whose Unicode meaning differs); ``go_regex`` gives ``$`` its RE2
meaning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

T = TypeVar("T")

Reason = Literal["FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired"]
"""The ``reason`` values kube-apiserver accepts on an ``x-kubernetes-validations`` rule."""

RULE_ERROR_TYPE = "crd_rule"
"""The pydantic error type raised by a failing rule (its message is the CRD's message)."""


def go_regex(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 pattern so Python's ``re`` matches exactly what Go's ``regexp`` does.

    The one difference that matters for our patterns is ``$``: in RE2 (without the ``m`` flag)
    it matches only at the end of the text, while in Python it also matches before a final
    newline. Every ``$`` outside a character class becomes ``\\Z``; classes are made
    ASCII-only like RE2's.
    """
    out: list[str] = []
    escaped = False
    class_start = -1  # index in ``out`` of the open class's "[", or -1 outside a class
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif class_start >= 0:
            # "]" closes the class unless it is its first member ("[]..." or "[^]...").
            first = "".join(out[class_start + 1 :]) in ("", "^")
            if char == "]" and not first:
                class_start = -1
        elif char == "[":
            class_start = len(out)
        elif char == "$":
            char = r"\Z"
        out.append(char)
    return re.compile("".join(out), re.ASCII)


def cel_string(text: str) -> str:
    """Quote ``text`` as a CEL double-quoted string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@dataclass(frozen=True)
class Rule(Generic[T]):
    """One validation rule: a CEL expression for the CRD and the equivalent Python check.

    Used as ``Annotated`` metadata on a field type, or listed in a model's ``__rules__``.
    """

    rule: str
    """The CEL expression, evaluated with ``self`` bound to the value at the rule's location."""
    message: str
    """The error message, identical in the CRD and in the pydantic error."""
    check: Callable[[T], bool] = field(compare=False)
    """The Python equivalent of ``rule``: returns True when the value is valid."""
    field_path: str | None = None
    """Where kube-apiserver reports the error, relative to the rule's location (``.field``)."""
    reason: Reason | None = None
    """The error reason kube-apiserver reports (default ``FieldValueInvalid``)."""

    def to_crd(self) -> dict[str, str]:
        """The rule as an ``x-kubernetes-validations`` entry."""
        entry = {"rule": self.rule, "message": self.message}
        if self.field_path is not None:
            entry["fieldPath"] = self.field_path
        if self.reason is not None:
            entry["reason"] = self.reason
        return entry

    def validate(self, value: T) -> T:
        """Return ``value`` unchanged, or raise a pydantic error carrying the rule's message."""
        if not self.check(value):
            raise PydanticCustomError(RULE_ERROR_TYPE, self.message)
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """As ``Annotated`` metadata: run the check after the type's own validation."""
        return core_schema.no_info_after_validator_function(self.validate, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """As ``Annotated`` metadata: add the rule to the value's ``x-kubernetes-validations``."""
        json_schema = handler(schema)
        add_rules(json_schema, [self])
        return json_schema


@dataclass(frozen=True)
class PresenceRule:
    """A rule that names fields which must be present, with a message of our own.

    A plain ``required`` in the schema would make kube-apiserver answer only "Required value";
    a presence rule says why. The fields stay required (non-optional) in the pydantic model, and
    the check runs on the raw input before field validation so pydantic reports the same
    message instead of "Field required".
    """

    fields: tuple[str, ...]
    """The JSON names of the fields that must be present."""
    message: str
    """The error message, identical in the CRD and in the pydantic error."""
    reason: Reason | None = "FieldValueRequired"
    """The error reason kube-apiserver reports."""

    @property
    def rule(self) -> str:
        """The CEL expression: every field is present."""
        return " && ".join(f"has(self.{name})" for name in self.fields)

    def to_crd(self) -> dict[str, str]:
        """The rule as an ``x-kubernetes-validations`` entry."""
        entry = {"rule": self.rule, "message": self.message}
        if self.reason is not None:
            entry["reason"] = self.reason
        return entry

    def validate_input(self, data: Any, python_names: Mapping[str, str]) -> None:
        """Raise the rule's error when ``data`` (raw model input) lacks one of the fields.

        ``python_names`` maps each JSON name to the attribute name, which pydantic accepts too.
        """
        if not isinstance(data, Mapping):
            return
        for name in self.fields:
            if data.get(name) is None and data.get(python_names.get(name, name)) is None:
                raise PydanticCustomError(RULE_ERROR_TYPE, self.message)


def _json_field(value: Any, json_name: str) -> Any:
    """The value of the field of pydantic model `value` whose JSON name is `json_name`."""
    for name, info in type(value).model_fields.items():
        if (info.alias or name) == json_name:
            return getattr(value, name)
    raise KeyError(json_name)


def _present(value: Any, path: str) -> bool:
    """Whether the dotted JSON `path` is set (not None) under `value` (CEL's `has`)."""
    for json_name in path.split("."):
        if value is None:
            return False
        value = _json_field(value, json_name)
    return value is not None


def exclusive(
    paths: tuple[str, ...], message: str, *, field_path: str, reason: Reason = "FieldValueForbidden"
) -> Rule[T]:
    """A rule that forbids the dotted JSON `paths` all at once: CEL
    `!has(self.A) || !has(self.B) || ...` (in the order given) and its Python check."""
    return Rule(
        rule=" || ".join(f"!has(self.{path})" for path in paths),
        message=message,
        check=lambda value: not all(_present(value, path) for path in paths),
        field_path=field_path,
        reason=reason,
    )


def add_rules(json_schema: JsonSchemaValue, rules: Iterable[Rule[Any] | PresenceRule]) -> None:
    """Append ``rules`` to the ``x-kubernetes-validations`` of a JSON schema node."""
    entries = json_schema.setdefault("x-kubernetes-validations", [])
    entries.extend(rule.to_crd() for rule in rules)


def matches(pattern: str) -> Callable[[str], bool]:
    """The Python equivalent of CEL ``value.matches(pattern)`` (unanchored RE2 search)."""
    compiled = go_regex(pattern)
    return lambda value: compiled.search(value) is not None


# --- URLs ---------------------------------------------------------------------------------

URL_PATTERN = r"^https?://[^\x00-\x20\x7f/?#@]+(/[^\x00-\x20\x7f?#]*)?$"
"""An absolute http(s) URL: host (and port), optional path; no userinfo, query or fragment."""

URL_RULE: Rule[str] = Rule(
    rule=f"self.matches({cel_string(URL_PATTERN)})",
    message=(
        "must be an http:// or https:// URL with a host and an optional path, without "
        "credentials (user@), query string, fragment or whitespace"
    ),
    check=matches(URL_PATTERN),
)
"""Applied to every base or endpoint URL (``openai.baseURL``, ``bedrock.endpointURL``, ...)."""


# --- HTTP headers -------------------------------------------------------------------------

HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$"
"""An RFC 7230 token (the only legal header field name), at most 256 characters."""

RESERVED_HEADERS: tuple[str, ...] = (
    "authorization",
    "proxy-authorization",
    "api-key",
    "x-api-key",
    "x-goog-api-key",
    "x-goog-user-project",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "openai-organization",
    "openai-project",
    "anthropic-version",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
)
"""Headers the operator derives from credentials, provider fields or the HTTP framing.

Letting a plain-text map override them would either put a credential in the spec (where
every reader of the object sees it) or make two fields disagree about one header.
"""

METADATA_HEADERS: tuple[str, ...] = (
    "metadata-flavor",
    "metadata",
    "x-aws-ec2-metadata-token",
    "x-google-metadata-request",
)
"""The headers cloud metadata services demand (`Metadata-Flavor` for GCE, `Metadata` for
Azure IMDS, `X-aws-ec2-metadata-token` for IMDSv2, `X-Google-Metadata-Request` for legacy
GCE): what those services check to tell a deliberate request from a forged one. No LLM
provider needs them, so a probe never sends them (see the destination policy in
docs/security.md). A rule of its own, so the message of the credential rule stays what
kube-apiserver answers with today's CRDs."""

RESERVED_HEADER_PATTERN = "(?i)^(" + "|".join(RESERVED_HEADERS) + ")$"
"""Case-insensitive match of a reserved header name."""

METADATA_HEADER_PATTERN = "(?i)^(" + "|".join(METADATA_HEADERS) + ")$"
"""Case-insensitive match of a cloud metadata header name."""

_is_header_name = matches(HEADER_NAME_PATTERN)
_is_reserved_header = matches(RESERVED_HEADER_PATTERN)
_is_metadata_header = matches(METADATA_HEADER_PATTERN)

HEADER_NAMES_RULE: Rule[Mapping[str, str]] = Rule(
    rule=f"self.all(k, k.matches({cel_string(HEADER_NAME_PATTERN)}))",
    message=(
        "header names must be RFC 7230 tokens (letters, digits and !#$%&'*+-.^_`|~) of at "
        "most 256 characters"
    ),
    check=lambda headers: all(_is_header_name(k) for k in headers),
)
"""Every key of a header map is a legal header name."""

RESERVED_HEADERS_RULE: Rule[Mapping[str, str]] = Rule(
    rule=f"self.all(k, !k.matches({cel_string(RESERVED_HEADER_PATTERN)}))",
    message=(
        "must not set Authorization, Proxy-Authorization, api-key, x-api-key, x-goog-api-key, "
        "x-goog-user-project, X-Amz-Date, X-Amz-Security-Token, X-Amz-Content-Sha256, "
        "OpenAI-Organization, OpenAI-Project, anthropic-version, Host, Content-Length, "
        "Transfer-Encoding or Connection: these come from the credentials, the provider's own "
        "fields or the HTTP client"
    ),
    check=lambda headers: not any(_is_reserved_header(k) for k in headers),
    reason="FieldValueForbidden",
)
"""No key of a header map is a reserved header (compared case-insensitively)."""

METADATA_HEADERS_RULE: Rule[Mapping[str, str]] = Rule(
    rule=f"self.all(k, !k.matches({cel_string(METADATA_HEADER_PATTERN)}))",
    message=(
        "must not set the cloud metadata headers Metadata-Flavor, Metadata, "
        "X-aws-ec2-metadata-token or X-Google-Metadata-Request: no LLM provider needs them"
    ),
    check=lambda headers: not any(_is_metadata_header(k) for k in headers),
    reason="FieldValueForbidden",
)
"""No key of a header map is a cloud metadata header (compared case-insensitively)."""

HEADER_VALUE_RULE: Rule[str] = Rule(
    rule='!self.contains("\\r") && !self.contains("\\n")',
    message="header values must not contain carriage returns or line feeds",
    check=lambda value: "\r" not in value and "\n" not in value,
)
"""A header value cannot smuggle a second header or split the request."""
