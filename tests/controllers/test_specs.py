"""`SpecCache` (parsed specs reused while the raw spec is unchanged) and the level of the
probe outcome log line (INFO on a Ready transition only)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from flokoa_controller.api.modelprovider import ModelProviderSpec
from flokoa_controller.controllers.scheduled_probe import outcome_level
from flokoa_controller.controllers.specs import SpecCache
from flokoa_controller.runtime.meta import uid_of

SPEC: dict[str, Any] = {
    "apiKeySecretRef": {"name": "k"},
    "openai": {"baseURL": "https://api.example.com/v1"},
}


class Counting:
    """`ModelProviderSpec.model_validate`, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, raw: Mapping[str, Any]) -> ModelProviderSpec:
        self.calls += 1
        return ModelProviderSpec.model_validate(raw)


def test_unchanged_spec_is_parsed_once() -> None:
    parse = Counting()
    cache = SpecCache(parse)
    first = cache.parse("uid-1", SPEC)
    assert cache.parse("uid-1", SPEC) is first
    assert cache.parse("uid-1", {**SPEC}) is first  # an equal copy (a new watch event)
    assert parse.calls == 1


def test_changed_spec_is_parsed_again() -> None:
    parse = Counting()
    cache = SpecCache(parse)
    first = cache.parse("uid-1", SPEC)
    changed = {**SPEC, "openai": {"baseURL": "https://other.example.com/v1"}}
    second = cache.parse("uid-1", changed)
    assert second is not first
    assert second.openai is not None
    assert "other.example.com" in str(second.openai.base_url)
    assert parse.calls == 2


def test_invalid_spec_raises_every_time_and_is_not_cached() -> None:
    parse = Counting()
    cache = SpecCache(parse)
    for _ in range(2):
        with pytest.raises(ValidationError):
            cache.parse("uid-1", {"openai": "not an object"})
    assert parse.calls == 2
    assert len(cache) == 0


def test_no_uid_is_not_cached() -> None:
    parse = Counting()
    cache = SpecCache(parse)
    cache.parse("", SPEC)
    cache.parse("", SPEC)
    assert (parse.calls, len(cache)) == (2, 0)


def test_bounded_least_recently_used_first_out() -> None:
    parse = Counting()
    cache = SpecCache(parse, max_entries=2)
    cache.parse("a", SPEC)
    cache.parse("b", SPEC)
    cache.parse("a", SPEC)  # a is now the most recently used
    cache.parse("c", SPEC)  # evicts b
    assert (len(cache), parse.calls) == (2, 3)
    cache.parse("a", SPEC)
    assert parse.calls == 3
    cache.parse("b", SPEC)
    assert parse.calls == 4


def test_uid_of() -> None:
    assert uid_of({"metadata": {"uid": "u"}}) == "u"
    assert uid_of({"metadata": None}) == ""
    assert uid_of({}) == ""


def test_outcome_logged_at_info_only_on_a_ready_transition() -> None:
    ready = {"type": "Ready", "status": "True", "reason": "ProbeSucceeded", "message": "ok"}
    old = {"conditions": [ready]}
    assert outcome_level(old, ("True", "ProbeSucceeded", "ok again")) == logging.DEBUG
    assert outcome_level(old, ("False", "Unauthorized", "401")) == logging.INFO
    assert outcome_level(old, ("True", "DeploymentNotVerified", "ok")) == logging.INFO
    assert outcome_level({}, ("True", "ProbeSucceeded", "ok")) == logging.DEBUG  # first success
    assert outcome_level({}, ("False", "InvalidCredentials", "401")) == logging.INFO
