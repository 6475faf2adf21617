"""The benchmark's objects: Secrets and ModelProviders, their expected status, the status body.

Every contender (flokoa-controller, the limit, the kopf peer) works on the same objects:
``bench-<i>`` Secrets holding an ``api-key`` (accepted by the fake OpenAI endpoint because it
starts with :data:`KEY_PREFIX`) plus an unreferenced ``padding`` key that sets the Secret's
size, and ``bench-<i>`` ModelProviders pointing at the fake with ``apiKeySecretRef``.

:func:`expected_hash` is the ``status.secretHash`` every contender must write: the same
SHA-256 the operator computes (role, Secret name, key, digest of the value) — the harness
checks each contender's result against it. :func:`desired_status` is the status body the
limit and the kopf peer write, shaped like the operator's.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

GROUP = "agent.flokoa.ai"
VERSION = "v1alpha1"
PLURAL = "modelproviders"
API_VERSION = f"{GROUP}/{VERSION}"
NAMESPACE = "bench"
"""Namespace of every benchmark object."""
KEY_PREFIX = "sk-bench-"
"""API keys the fake OpenAI endpoint accepts (it checks the prefix, see fake_openai.py)."""
API_KEY = "api-key"
"""Secret key holding the API key."""
PADDING_KEY = "padding"
"""Unreferenced Secret key that gives the Secret its size."""
CANARY = "canary"
"""Name of the object created to learn that a contender is up and working."""

MODELPROVIDERS_PATH = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"
SECRETS_PATH = f"/api/v1/namespaces/{NAMESPACE}/secrets"


def name_of(index: int) -> str:
    """Name of the ``index``-th Secret and ModelProvider."""
    return f"bench-{index}"


def api_key(index: int, revision: int = 0) -> str:
    """The API key of object ``index`` after ``revision`` rotations (valid at the fake)."""
    return f"{KEY_PREFIX}{index}-r{revision}-" + "k" * 24


def _padding(size: int, index: int) -> bytes:
    seed = hashlib.sha256(f"pad-{index}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def secret(
    index: int, size: int = 1024, revision: int = 0, name: str | None = None
) -> dict[str, Any]:
    """A Secret of about ``size`` bytes of data (API key + padding)."""
    key = api_key(index, revision).encode()
    padding = _padding(max(0, size - len(key)), index)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name or name_of(index), "namespace": NAMESPACE},
        "type": "Opaque",
        "data": {
            API_KEY: base64.b64encode(key).decode(),
            PADDING_KEY: base64.b64encode(padding).decode(),
        },
    }


def model_provider(index: int, base_url: str, name: str | None = None) -> dict[str, Any]:
    """A ModelProvider for the fake OpenAI endpoint, referencing Secret ``bench-<index>``."""
    obj_name = name or name_of(index)
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelProvider",
        "metadata": {"name": obj_name, "namespace": NAMESPACE},
        "spec": {
            "apiKeySecretRef": {"name": obj_name, "key": API_KEY},
            "openai": {"baseURL": base_url, "timeoutSeconds": 10},
        },
    }


def secret_hash(secret_name: str, key: str, value: bytes, uid: str) -> str:
    """``status.secretHash`` of a provider referencing ``value`` as its API key.

    Equal to the operator's (``controllers/secrets.py``, checked by tests/bench):
    SHA-256 over ``role \\0 name \\0 key \\0 Secret UID \\0 digest \\0 \\n``.
    """
    digest = hashlib.sha256(value).hexdigest()
    h = hashlib.sha256()
    for part in ("apiKey", secret_name, key, uid, digest):
        h.update(part.encode())
        h.update(b"\0")
    h.update(b"\n")
    return h.hexdigest()


def expected_hash(uid: str, index: int, revision: int = 0, name: str | None = None) -> str:
    """The ``secretHash`` a correct contender writes for object ``index`` at ``revision``
    (``uid``: the Secret's UID)."""
    return secret_hash(name or name_of(index), API_KEY, api_key(index, revision).encode(), uid)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def desired_status(
    generation: int,
    secret_hash_value: str,
    base_url: str,
    probe_ok: bool,
    probe_message: str,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The status body written by the limit and the kopf peer (the operator's shape).

    ``lastTransitionTime`` of each condition is kept from ``previous`` when its status did
    not change, as the operator does.
    """
    now = _now()
    old = {
        c.get("type"): c for c in (previous or {}).get("conditions") or [] if isinstance(c, dict)
    }
    if probe_ok:
        conds = [
            (
                "Ready",
                "True",
                "ProbeSucceeded",
                f"Provider is configured and ready: {probe_message}",
            ),
            ("SecretResolved", "True", "SecretFound", "every referenced Secret key was found"),
            ("CredentialsValid", "True", "CredentialsAccepted", probe_message),
            ("EndpointReachable", "True", "EndpointResponded", probe_message),
        ]
    else:
        conds = [
            ("Ready", "False", "ProbeFailed", probe_message),
            ("SecretResolved", "True", "SecretFound", "every referenced Secret key was found"),
            ("CredentialsValid", "Unknown", "NotVerified", probe_message),
            ("EndpointReachable", "False", "ProbeFailed", probe_message),
        ]
    conditions = []
    for type_, status, reason, message in conds:
        before = old.get(type_)
        since = (
            before.get("lastTransitionTime", now)
            if before is not None and before.get("status") == status
            else now
        )
        conditions.append(
            {
                "type": type_,
                "status": status,
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": since,
            }
        )
    return {
        "provider": "openai",
        "ready": probe_ok,
        "conditions": conditions,
        "observedGeneration": generation,
        "secretHash": secret_hash_value,
        "lastProbeTime": now,
        "endpoint": base_url,
    }


def is_converged(obj: dict[str, Any], expected: str) -> bool:
    """Whether a ModelProvider's status says Ready with ``expected`` hash for its generation."""
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    return (
        status.get("ready") is True
        and status.get("secretHash") == expected
        and status.get("observedGeneration") == generation
    )
