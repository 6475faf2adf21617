"""Transforms: managedFields stripped; a Secret's payload never survives the digest."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

from flokoa_controller.runtime.transform import (
    LAST_APPLIED_ANNOTATION,
    chain,
    default_transform,
    secret_to_digest,
    strip_managed_fields,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def make_secret(value: str) -> dict[str, Any]:
    applied = {"apiVersion": "v1", "kind": "Secret", "stringData": {"apiKey": value}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": "creds",
            "namespace": "ns",
            "resourceVersion": "7",
            "labels": {"app": "x"},
            "annotations": {LAST_APPLIED_ANNOTATION: json.dumps(applied), "keep": "me"},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:data": {"f:apiKey": {}}}}],
        },
        "data": {"apiKey": b64(value), "other": b64("x")},
    }


def test_strip_managed_fields_copies_and_leaves_input_alone() -> None:
    original = {"metadata": {"name": "a", "managedFields": [{"manager": "m"}]}, "spec": {}}
    out = strip_managed_fields(original)
    assert out == {"metadata": {"name": "a"}, "spec": {}}
    assert "managedFields" in original["metadata"]
    plain = {"metadata": {"name": "a"}}
    assert strip_managed_fields(plain) is plain


def test_secret_digest_keeps_no_payload_anywhere() -> None:
    canary = "canary-" + secrets.token_hex(16)
    secret = make_secret(canary)
    digest = secret_to_digest(secret)
    text = json.dumps(digest)
    assert canary not in text
    assert b64(canary) not in text
    assert "data" not in digest
    assert "stringData" not in digest
    assert "managedFields" not in digest["metadata"]
    assert digest["metadata"]["annotations"] == {"keep": "me"}
    assert digest["metadata"]["labels"] == {"app": "x"}
    assert digest["type"] == "Opaque"
    assert digest["digests"]["apiKey"] == hashlib.sha256(canary.encode()).hexdigest()
    assert set(digest["digests"]) == {"apiKey", "other"}
    assert len(digest["digest"]) == 64
    # the input is not modified, and digesting twice changes nothing
    assert secret["data"]["apiKey"] == b64(canary)
    assert secret_to_digest(digest) is digest


def test_overall_digest_changes_with_any_value_or_key() -> None:
    a = secret_to_digest(make_secret("one"))
    b = secret_to_digest(make_secret("two"))
    assert a["digest"] != b["digest"]
    assert a["digests"]["other"] == b["digests"]["other"]
    renamed = make_secret("one")
    renamed["data"] = {"apiKey2": renamed["data"]["apiKey"], "other": renamed["data"]["other"]}
    assert secret_to_digest(renamed)["digest"] != a["digest"]
    assert secret_to_digest(make_secret("one"))["digest"] == a["digest"]


def test_string_data_is_folded_then_dropped() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "stringData": {"k": "plain-value"},
    }
    out = secret_to_digest(secret)
    assert "plain-value" not in json.dumps(out)
    assert out["digests"] == {"k": hashlib.sha256(b"plain-value").hexdigest()}


def test_default_transform_digests_secrets_and_strips_others() -> None:
    canary = secrets.token_hex(8)
    assert canary not in json.dumps(default_transform(make_secret(canary)))
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


def test_malformed_secret_fields_do_not_break_the_digest() -> None:
    """A hand-made object with data/stringData of the wrong type is digested, not fatal."""
    for data, string_data in (("oops", None), (["a", "b"], 7), (None, "text"), ({}, [1])):
        obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}
        obj["data"] = data
        obj["stringData"] = string_data
        out = default_transform(obj)
        assert out["digests"] == {}
        assert "data" not in out
        assert "stringData" not in out
    binary = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "bin"},
        "data": {"k": base64.b64encode(bytes(range(256))).decode(), "n": 12},
    }
    out = default_transform(binary)
    assert out["digests"]["k"] == hashlib.sha256(bytes(range(256))).hexdigest()
    assert set(out["digests"]) == {"k", "n"}


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
