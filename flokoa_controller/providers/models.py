"""What a model check learns beyond "the model exists": `ModelDetails`, and its helpers.

A provider's model check may resolve the name it was given to another one (an Anthropic
alias to its dated ID, a Bedrock inference profile to the foundation models it routes to,
an Azure v1 name to the model behind it) and may report the model's lifecycle (Bedrock's
`modelLifecycle.status`, Vertex's `launchStage`). The probe puts both into
`ProbeResult.model`; the Model reconciler turns them into `status.resolvedModel`,
`status.memberModels` and the `Deprecated` condition.

Every string here comes from a provider's response: hostile input. `clean()` keeps only
short, printable, single-line values, so nothing odd reaches a status or an event.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flokoa_controller.providers.result import ProbeResult

MAX_NAME_LENGTH = 512
"""Longest model name or ARN kept from a response (longer ones are dropped)."""

MAX_MEMBERS = 32
"""Most member models of an inference profile kept (Bedrock's global profiles list a
few dozen regions at most)."""

DEPRECATED_BEDROCK_LIFECYCLES = frozenset({"LEGACY"})
"""Bedrock `modelLifecycle.status` values that mean deprecated (the other is `ACTIVE`)."""

DEPRECATED_VERTEX_LAUNCH_STAGES = frozenset({"DEPRECATED"})
"""Vertex `launchStage` values that mean deprecated (google.api.LaunchStage's word; the
publisher-model stages `EXPERIMENTAL`, `PRIVATE_PREVIEW`, `PUBLIC_PREVIEW`, `GA` do not)."""

_PRINTABLE = re.compile(r"^[!-~]+$")
_WORD = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class Lifecycle:
    """A model's lifecycle as its provider words it.

    - `field`: where the provider says it (`modelLifecycle.status`, `launchStage`).
    - `word`: the provider's value (`ACTIVE`, `LEGACY`, `GA`, `DEPRECATED`).
    - `deprecated`: whether that value means the model is deprecated.
    """

    field: str
    word: str
    deprecated: bool

    @property
    def reason(self) -> str:
        """A CamelCase condition reason from the provider's words, e.g. `ModelLifecycleLegacy`
        for `modelLifecycle.status: LEGACY`, `LaunchStageDeprecated` for `launchStage:
        DEPRECATED`."""
        field = self.field.removesuffix(".status")
        return camel(field) + camel(self.word)


@dataclass(frozen=True)
class ModelDetails:
    """What a model check learnt.

    - `resolved`: the model the given name resolves to, when it differs (else None).
    - `members`: an inference profile's member models (ARNs, at most `MAX_MEMBERS`).
    - `lifecycle`: the model's lifecycle, when the provider reports one.
    """

    resolved: str | None = None
    members: tuple[str, ...] = ()
    lifecycle: Lifecycle | None = None

    @property
    def empty(self) -> bool:
        """Nothing was learnt."""
        return self.resolved is None and not self.members and self.lifecycle is None


def camel(text: str) -> str:
    """`LEGACY` → `Legacy`, `PUBLIC_PREVIEW` → `PublicPreview`, `modelLifecycle` →
    `ModelLifecycle` (runs of letters and digits, each capitalised; a mixed-case run keeps
    its inner capitals)."""
    out = []
    for word in _WORD.findall(text):
        out.append(
            word.capitalize() if word.isupper() or word.islower() else word[0].upper() + word[1:]
        )
    return "".join(out) or "Unknown"


def clean(value: object, limit: int = MAX_NAME_LENGTH) -> str | None:
    """`value` if it is a short printable single-line string, else None."""
    if isinstance(value, str) and 0 < len(value) <= limit and _PRINTABLE.match(value):
        return value
    return None


def clean_word(value: object) -> str | None:
    """An enum word from a response (`ACTIVE`, `NOT_AUTHORIZED`), else None."""
    word = clean(value, 64)
    return word if word is not None and re.fullmatch(r"[A-Za-z0-9_]+", word) else None


def members_of(values: Iterable[object]) -> tuple[str, ...]:
    """The clean, distinct values, in order, at most `MAX_MEMBERS`."""
    seen: dict[str, None] = {}
    for value in values:
        name = clean(value)
        if name is not None:
            seen.setdefault(name, None)
        if len(seen) >= MAX_MEMBERS:
            break
    return tuple(seen)


def lifecycle_of(field: str, value: object, deprecated_words: frozenset[str]) -> Lifecycle | None:
    """The `Lifecycle` from a response's `field` value (None when it is absent or odd)."""
    word = clean_word(value)
    if word is None:
        return None
    return Lifecycle(field=field, word=word, deprecated=word.upper() in deprecated_words)


def with_resolved_id(
    result: ProbeResult,
    body: Mapping[str, Any] | None,
    model: str,
    *,
    fields: tuple[str, ...] = ("id",),
) -> ProbeResult:
    """`result` with `ModelDetails.resolved` set to the first of `fields` in the answer
    `body` that names another model than the `model` asked for (else `result` as it is)."""
    if body is None:
        return result
    for name in fields:
        value = clean(body.get(name))
        if value is not None:
            if value == model:
                return result
            return replace(
                result,
                message=f"{result.message} (resolves to {value})",
                model=ModelDetails(resolved=value),
            )
    return result
