"""The benchmark's expected ``secretHash`` is the operator's (fast; no processes)."""

from __future__ import annotations

import sys
from pathlib import Path

from flokoa_controller.controllers.secret_digest import secret_to_digest
from flokoa_controller.controllers.secrets import Role, SecretKeyRef, resolve_from_cache

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hack" / "bench"))

from flokoa_bench import workload


def _operator_hash(secret: dict[str, object], key: str) -> str:
    digested = secret_to_digest(secret)
    ref = SecretKeyRef(Role.API_KEY, workload.name_of(3), key, "spec.apiKeySecretRef")
    cached = resolve_from_cache(workload.NAMESPACE, [ref], lambda ns, name: digested)
    assert cached.problem is None
    return cached.secret_hash


def test_expected_hash_matches_the_operator() -> None:
    for revision in (0, 1):
        secret = workload.secret(3, 1024, revision)
        secret["metadata"]["uid"] = f"uid-{revision}"  # type: ignore[index]
        expected = workload.expected_hash(f"uid-{revision}", 3, revision)
        assert _operator_hash(secret, workload.API_KEY) == expected


def test_rotation_and_uid_change_the_hash_padding_does_not() -> None:
    base = workload.expected_hash("u", 3, 0)
    assert workload.expected_hash("u", 3, 1) != base
    assert workload.expected_hash("v", 3, 0) != base
    small = workload.secret(3, 1024)
    large = workload.secret(3, 64 * 1024)
    for s in (small, large):
        s["metadata"]["uid"] = "u"  # type: ignore[index]
    assert _operator_hash(small, workload.API_KEY) == _operator_hash(large, workload.API_KEY)


def test_secret_sizes() -> None:
    import base64

    for size in (1024, 64 * 1024):
        data = workload.secret(0, size)["data"]
        total = sum(len(base64.b64decode(v)) for v in data.values())  # type: ignore[union-attr]
        assert total == size
