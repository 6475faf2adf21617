"""Secret resolution from the digest cache and from API reads; secretHash; value checks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flokoa_envtest.testing import secret_manifest
from hypothesis import given
from hypothesis import strategies as st

from flokoa_controller.controllers.conditions import Reason
from flokoa_controller.controllers.secret_digest import secret_to_digest
from flokoa_controller.controllers.secrets import (
    Role,
    SecretKeyRef,
    SecretProblem,
    SecretReadDenied,
    SecretValues,
    ValidatedSecrets,
    fetch_values,
    resolve_from_cache,
    validate_values,
)

CANARY = "sk-canary-5ecret-DO-NOT-LEAK"
API = SecretKeyRef(Role.API_KEY, "creds", "api-key", "spec.apiKeySecretRef")
CA = SecretKeyRef(Role.CA_BUNDLE, "ca", "ca.crt", "spec.tls.caSecretRef")
SA = SecretKeyRef(
    Role.SERVICE_ACCOUNT_KEY,
    "sa",
    "credentials.json",
    "spec.google.vertex.serviceAccountKeySecretRef",
)


def secret(name: str, ns: str = "team", **values: bytes | str) -> dict[str, Any]:
    return secret_manifest(name, ns, values)


class Cluster:
    """A tiny in-memory stand-in for "the cache" and "the API" over the same Secrets."""

    def __init__(self, *secrets: dict[str, Any]) -> None:
        self.objects = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in secrets}
        self.reads: list[tuple[str, str]] = []

    def lookup(self, ns: str, name: str) -> Mapping[str, Any] | None:
        obj = self.objects.get((ns, name))
        return secret_to_digest(obj) if obj else None

    async def get(self, ns: str, name: str) -> Mapping[str, Any] | None:
        self.reads.append((ns, name))
        return self.objects.get((ns, name))


def test_cache_resolution_found() -> None:
    c = Cluster(secret("creds", **{"api-key": CANARY}))
    res = resolve_from_cache("team", [API], c.lookup)
    assert res.problem is None
    assert len(res.secret_hash) == 64


def test_secret_only_in_other_namespace_is_not_found() -> None:
    c = Cluster(secret("creds", ns="other", **{"api-key": CANARY}))
    res = resolve_from_cache("team", [API], c.lookup)
    assert res.problem is not None
    assert res.problem.reason == Reason.SECRET_NOT_FOUND
    assert '"team/creds"' in res.problem.message
    assert "spec.apiKeySecretRef" in res.problem.message


def test_missing_key_and_empty_value_detected_from_cache() -> None:
    c = Cluster(secret("creds", other="x"))
    res = resolve_from_cache("team", [API], c.lookup)
    assert res.problem is not None
    assert res.problem.reason == Reason.SECRET_KEY_NOT_FOUND
    assert '"api-key"' in res.problem.message
    c = Cluster(secret("creds", **{"api-key": ""}))
    res = resolve_from_cache("team", [API], c.lookup)
    assert res.problem is not None
    assert res.problem.reason == Reason.INVALID_SECRET


def test_hash_changes_exactly_when_used_values_change() -> None:
    base = resolve_from_cache(
        "team", [API], Cluster(secret("creds", **{"api-key": "a"})).lookup
    ).secret_hash
    # unrelated key added: same hash
    same = resolve_from_cache(
        "team", [API], Cluster(secret("creds", **{"api-key": "a", "x": "y"})).lookup
    ).secret_hash
    # another namespace, same config: same hash (namespace-less)
    other_ns = resolve_from_cache(
        "prod", [API], Cluster(secret("creds", ns="prod", **{"api-key": "a"})).lookup
    ).secret_hash
    changed = resolve_from_cache(
        "team", [API], Cluster(secret("creds", **{"api-key": "b"})).lookup
    ).secret_hash
    assert base == same == other_ns
    assert changed != base
    # the CA counts too, and order of references does not matter
    c = Cluster(secret("creds", **{"api-key": "a"}), secret("ca", **{"ca.crt": "pem"}))
    with_ca = resolve_from_cache("team", [API, CA], c.lookup).secret_hash
    assert with_ca != base
    assert resolve_from_cache("team", [CA, API], c.lookup).secret_hash == with_ca
    missing = resolve_from_cache("team", [API], Cluster().lookup).secret_hash
    key_missing = resolve_from_cache("team", [API], Cluster(secret("creds")).lookup).secret_hash
    assert len({base, with_ca, missing, key_missing}) == 4


async def test_fetched_hash_equals_cache_hash() -> None:
    c = Cluster(secret("creds", **{"api-key": CANARY}), secret("ca", **{"ca.crt": "x"}))
    cached = resolve_from_cache("team", [API, CA], c.lookup)
    values = await fetch_values("team", [API, CA], c.get)
    assert isinstance(values, SecretValues)
    assert values.secret_hash == cached.secret_hash
    assert CANARY not in repr(values)
    assert CANARY not in str(values)


async def test_fetch_reads_each_secret_once_and_only_in_own_namespace() -> None:
    both = SecretKeyRef(Role.SECRET_ACCESS_KEY, "creds", "secret", "spec.bedrock")
    c = Cluster(secret("creds", **{"api-key": "a", "secret": "b"}))
    await fetch_values("team", [API, both], c.get)
    assert c.reads == [("team", "creds")]


async def test_fetch_problems() -> None:
    c = Cluster(secret("creds", other="x"))
    p = await fetch_values("team", [API], c.get)
    assert isinstance(p, SecretProblem)
    assert p.reason == Reason.SECRET_KEY_NOT_FOUND
    p = await fetch_values("team", [API], Cluster().get)
    assert isinstance(p, SecretProblem)
    assert p.reason == Reason.SECRET_NOT_FOUND

    async def denied(ns: str, name: str) -> Mapping[str, Any] | None:
        raise SecretReadDenied

    p = await fetch_values("team", [API], denied)
    assert isinstance(p, SecretProblem)
    assert p.reason == Reason.SECRET_ACCESS_DENIED
    bad = secret("creds")
    bad["data"]["api-key"] = "!!!not base64"
    p = await fetch_values("team", [API], Cluster(bad).get)
    assert isinstance(p, SecretProblem)
    assert p.reason == Reason.INVALID_SECRET


async def test_string_data_is_folded_in() -> None:
    obj = secret("creds")
    obj["stringData"] = {"api-key": "abc"}
    values = await fetch_values("team", [API], Cluster(obj).get)
    assert isinstance(values, SecretValues)
    assert values.get(Role.API_KEY) == b"abc"


async def _validated(ref: SecretKeyRef, raw: bytes) -> ValidatedSecrets | SecretProblem:
    c = Cluster(secret(ref.name, **{ref.key: raw}))
    values = await fetch_values("team", [ref], c.get)
    assert isinstance(values, SecretValues)
    return validate_values("team", [ref], values)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"   \n", "whitespace"),
        (b"sk-abc\r\nX-Injected: 1", "line break"),
        (b"sk abc", "whitespace"),
        (b"sk-\xff\xfe", "UTF-8"),
        ("sk-é".encode(), "non-ASCII"),
        (b"sk-\x01", "non-printable"),
    ],
)
async def test_invalid_api_keys(raw: bytes, fragment: str) -> None:
    result = await _validated(API, raw)
    assert isinstance(result, SecretProblem)
    assert result.reason == Reason.INVALID_SECRET
    assert fragment in result.message
    assert '"team/creds"' in result.message
    assert '"api-key"' in result.message


async def test_api_key_trailing_newline_is_stripped() -> None:
    result = await _validated(API, CANARY.encode() + b"\n")
    assert isinstance(result, ValidatedSecrets)
    assert result.api_key == CANARY
    assert CANARY not in repr(result)


def _sa_json(**overrides: object) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info: dict[str, object] = {
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "sa@p.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    info.update(overrides)
    return json.dumps({k: v for k, v in info.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "not a JSON"),
        (b"[1, 2]", "not a JSON object"),
        (_sa_json(type="authorized_user"), "not a service-account key"),
        (_sa_json(client_email=None), '"client_email"'),
        (_sa_json(private_key="-----BEGIN PRIVATE KEY-----\ngarbage\n"), "private_key"),
    ],
)
async def test_invalid_service_account_keys(raw: bytes, fragment: str) -> None:
    result = await _validated(SA, raw)
    assert isinstance(result, SecretProblem)
    assert result.reason == Reason.INVALID_SECRET
    assert fragment in result.message


async def test_valid_service_account_key() -> None:
    result = await _validated(SA, _sa_json())
    assert isinstance(result, ValidatedSecrets)
    assert result.service_account is not None
    assert result.service_account.info["client_email"] == "sa@p.iam.gserviceaccount.com"
    assert "PRIVATE KEY" not in repr(result)


async def test_ca_bundles() -> None:
    ca = trustme.CA()
    ok = await _validated(CA, ca.cert_pem.bytes())
    assert isinstance(ok, ValidatedSecrets)
    assert ok.ca_pem == ca.cert_pem.bytes()
    two = ca.cert_pem.bytes() + trustme.CA().cert_pem.bytes()
    assert isinstance(await _validated(CA, two), ValidatedSecrets)
    for raw in (b"not a pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"):
        bad = await _validated(CA, raw)
        assert isinstance(bad, SecretProblem)
        assert bad.reason == Reason.INVALID_CA_CERTIFICATE


@given(st.binary(max_size=64), st.booleans())
async def test_any_api_key_bytes_give_value_or_specific_problem(raw: bytes, mark: bool) -> None:
    if mark:
        raw = b"k7Qz" + raw
    result = await _validated(API, raw)
    if isinstance(result, SecretProblem):
        assert result.reason == Reason.INVALID_SECRET
        assert "k7Qz" not in result.message
    else:
        assert result.api_key
        assert result.api_key.isprintable()


def test_hash_is_salted_with_the_secret_uid() -> None:
    """status.secretHash cannot confirm a guessed weak key without the Secret's UID (which
    only Secret readers see); a re-created Secret (new UID) counts as a change; cache and
    API read agree."""

    def with_uid(uid: str, value: str) -> dict[str, Any]:
        obj = secret("creds", **{"api-key": value})
        obj["metadata"]["uid"] = uid
        return obj

    first = resolve_from_cache("team", [API], Cluster(with_uid("u-1", "changeme")).lookup)
    again = resolve_from_cache("team", [API], Cluster(with_uid("u-1", "changeme")).lookup)
    recreated = resolve_from_cache("team", [API], Cluster(with_uid("u-2", "changeme")).lookup)
    assert first.secret_hash == again.secret_hash  # deterministic (replicas, restarts)
    assert recreated.secret_hash != first.secret_hash
    # An attacker who knows the names, the key and guesses the value, but not the UID:
    guess = resolve_from_cache("team", [API], Cluster(with_uid("", "changeme")).lookup)
    assert guess.secret_hash != first.secret_hash


async def test_fetched_hash_includes_the_uid_like_the_cache() -> None:
    obj = secret("creds", **{"api-key": CANARY})
    obj["metadata"]["uid"] = "u-9"
    c = Cluster(obj)
    values = await fetch_values("team", [API], c.get)
    assert isinstance(values, SecretValues)
    assert values.secret_hash == resolve_from_cache("team", [API], c.lookup).secret_hash
