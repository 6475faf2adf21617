"""The controllers' Secret transform: a Secret's payload never survives the digest.

(Moved from tests/runtime/test_transform.py with the digest itself: the runtime keeps only
the floor that strips payloads, the controllers decide what they keep instead.)
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

from flokoa_envtest.testing import KUBECTL_LAST_APPLIED, applied_secret, b64

from flokoa_controller.controllers.secret_digest import secret_to_digest
from flokoa_controller.runtime.transform import default_transform


def test_secret_digest_keeps_no_payload_anywhere() -> None:
    canary = "canary-" + secrets.token_hex(16)
    secret = applied_secret(canary)
    assert KUBECTL_LAST_APPLIED in secret["metadata"]["annotations"]
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
    a = secret_to_digest(applied_secret("one"))
    b = secret_to_digest(applied_secret("two"))
    assert a["digest"] != b["digest"]
    assert a["digests"]["other"] == b["digests"]["other"]
    renamed = applied_secret("one")
    renamed["data"] = {"apiKey2": renamed["data"]["apiKey"], "other": renamed["data"]["other"]}
    assert secret_to_digest(renamed)["digest"] != a["digest"]
    assert secret_to_digest(applied_secret("one"))["digest"] == a["digest"]


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


def test_malformed_secret_fields_do_not_break_the_digest() -> None:
    """A hand-made object with data/stringData of the wrong type is digested, not fatal."""
    for data, string_data in (("oops", None), (["a", "b"], 7), (None, "text"), ({}, [1])):
        obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}
        obj["data"] = data
        obj["stringData"] = string_data
        out = secret_to_digest(obj)
        assert out["digests"] == {}
        assert "data" not in out
        assert "stringData" not in out
    binary = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "bin"},
        "data": {"k": base64.b64encode(bytes(range(256))).decode(), "n": 12},
    }
    out = secret_to_digest(binary)
    assert out["digests"]["k"] == hashlib.sha256(bytes(range(256))).hexdigest()
    assert set(out["digests"]) == {"k", "n"}


def test_the_runtime_floor_keeps_what_the_digest_made() -> None:
    """The informer runs ``default_transform`` after the controllers' transform: on a digest
    it changes nothing the controllers read."""
    digest = secret_to_digest(applied_secret("value"))
    assert default_transform(digest) is digest  # nothing left to strip: no second copy
