"""Transforms: managedFields stripped; a Secret's payload never reaches the cache.

(The controllers' digest of Secrets is tested in tests/controllers/test_secret_digest.py.)
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from flokoa_envtest.testing import KUBECTL_LAST_APPLIED, applied_secret, b64

from flokoa_controller.runtime.transform import (
    LAST_APPLIED_ANNOTATION,
    chain,
    default_transform,
    strip_managed_fields,
)


def test_strip_managed_fields_copies_and_leaves_input_alone() -> None:
    original = {"metadata": {"name": "a", "managedFields": [{"manager": "m"}]}, "spec": {}}
    out = strip_managed_fields(original)
    assert out == {"metadata": {"name": "a"}, "spec": {}}
    assert "managedFields" in original["metadata"]
    plain = {"metadata": {"name": "a"}}
    assert strip_managed_fields(plain) is plain


def test_default_transform_strips_secret_payloads_and_managed_fields() -> None:
    assert KUBECTL_LAST_APPLIED == LAST_APPLIED_ANNOTATION  # the fixture's is kubectl's
    canary = secrets.token_hex(8)
    assert canary not in json.dumps(default_transform(applied_secret(canary)))
    assert b64(canary) not in json.dumps(default_transform(applied_secret(canary)))
    stripped = default_transform(applied_secret(canary))
    assert "data" not in stripped
    assert "stringData" not in stripped
    assert "managedFields" not in stripped["metadata"]
    assert stripped["metadata"]["annotations"] == {"keep": "me"}
    assert stripped["metadata"]["labels"] == {"app": "x"}
    assert stripped["type"] == "Opaque"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "managedFields": []}}
    assert default_transform(cm) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
    }


def test_chain_applies_in_order_and_skips_none() -> None:
    def add(tag: str) -> Any:
        def step(o: dict[str, Any]) -> dict[str, Any]:
            return {**o, "trail": [*o.get("trail", []), tag]}

        return step

    composed = chain(add("a"), None, add("b"))
    assert composed({})["trail"] == ["a", "b"]


def test_intern_strings_shares_equal_values() -> None:
    """Equal strings of two decoded objects become one object; nothing else changes."""
    import orjson

    from flokoa_controller.runtime.transform import (
        INTERN_MAX_LENGTH,
        INTERNING_FREES,
        intern_strings,
    )

    raw = orjson.dumps(
        {
            "metadata": {"namespace": "team-a", "labels": {"tier": "gold"}},
            "status": {
                "conditions": [{"reason": "ProbeSucceeded", "message": "ok " * 10}],
                "tags": ["a-tag", 3, None, True],
                "long": "x" * (INTERN_MAX_LENGTH + 1),
            },
        }
    )
    one, two = orjson.loads(raw), orjson.loads(raw)
    assert (
        one["status"]["conditions"][0]["message"] is not two["status"]["conditions"][0]["message"]
    )
    expected = orjson.loads(raw)
    assert intern_strings(one) is one
    assert intern_strings(two) == expected == one
    if not INTERNING_FREES:  # Python 3.12.0-3.12.5: interned strings would never be freed
        assert one["metadata"]["namespace"] is not two["metadata"]["namespace"]
        return
    assert one["metadata"]["namespace"] is two["metadata"]["namespace"]
    assert one["metadata"]["labels"]["tier"] is two["metadata"]["labels"]["tier"]
    cond1, cond2 = one["status"]["conditions"][0], two["status"]["conditions"][0]
    assert cond1["message"] is cond2["message"]
    assert cond1["reason"] is cond2["reason"]
    assert one["status"]["tags"][0] is two["status"]["tags"][0]
    assert one["status"]["long"] is not two["status"]["long"]  # too long to be worth it


def test_default_transform_interns_all_but_secrets() -> None:
    import orjson

    from flokoa_controller.runtime.transform import INTERNING_FREES, default_transform

    raw = orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    one, two = default_transform(orjson.loads(raw)), default_transform(orjson.loads(raw))
    assert one == two == orjson.loads(raw)
    if INTERNING_FREES:
        assert one["apiVersion"] is two["apiVersion"]


def test_malformed_secret_fields_are_stripped_not_fatal() -> None:
    """A hand-made Secret with data/stringData of the wrong type loses them, without error."""
    for data, string_data in (("oops", None), (["a", "b"], 7), (None, "text"), ({}, [1])):
        obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": "odd"}
        obj["data"] = data
        obj["stringData"] = string_data
        out = default_transform(obj)
        assert "data" not in out
        assert "stringData" not in out
        assert out["metadata"] == "odd"
