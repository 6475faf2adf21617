"""The kopf peer: the same ModelProvider job written the way kopf operators are written.

    KUBECONFIG=PATH kopf run --standalone --all-namespaces hack/bench/peers/kopf_operator.py

Behaviour (the same as flokoa-controller's and the limit's, for the benchmark's providers):

- ``on.resume`` / ``on.create`` / ``on.update(field="spec")`` of a ModelProvider: read its
  Secret, compute ``secretHash``, probe ``GET {baseURL}/models`` with ``Bearer``, and write
  the status (provider, ready, conditions, observedGeneration, secretHash) through kopf's
  ``patch`` — unless the status already says so;
- ``on.event`` of a Secret: every provider referencing it (a kopf index) whose indexed
  ``secretHash`` differs from the Secret's is probed again and its ``/status`` merge-patched.

Idiomatic kopf with its defaults (handler progress and the last-handled configuration are
kept in annotations, as kopf does), except two settings a production kopf operator would
also set: events are posted for warnings only (flokoa-controller posts one per transition),
and the probe/patch work is bounded by ``BENCH_CONCURRENCY`` (default 4, the others' value).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import kopf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flokoa_bench import kubeconfig, workload

GROUP, VERSION, PLURAL = workload.GROUP, workload.VERSION, workload.PLURAL


class State:
    """Clients shared by the handlers (created at startup, closed at cleanup)."""

    api: aiohttp.ClientSession
    probe_http: aiohttp.ClientSession
    endpoint: kubeconfig.Endpoint
    sem: asyncio.Semaphore


state = State()


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Configure kopf and open the clients."""
    settings.posting.level = logging.WARNING
    state.endpoint = kubeconfig.load(os.environ["KUBECONFIG"])
    state.api = aiohttp.ClientSession(headers=state.endpoint.headers("flokoa-bench-kopf/1.0"))
    state.probe_http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    state.sem = asyncio.Semaphore(int(os.environ.get("BENCH_CONCURRENCY", "4")))


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    """Close the clients."""
    await state.api.close()
    await state.probe_http.close()


@kopf.index(GROUP, VERSION, PLURAL)
def providers_by_secret(namespace: str | None, name: str, spec: Any, **_: Any) -> Any:
    """``(namespace, secret) → provider names``."""
    ref = spec.get("apiKeySecretRef") or {}
    return {(namespace, ref.get("name")): name} if ref.get("name") else None


@kopf.index(GROUP, VERSION, PLURAL)
def provider_state(
    namespace: str | None, name: str, spec: Any, status: Any, meta: Any, **_: Any
) -> Any:
    """``(namespace, provider) → (generation, status.secretHash, secret key, baseURL)``."""
    ref = spec.get("apiKeySecretRef") or {}
    openai = spec.get("openai") or {}
    return {
        (namespace, name): (
            meta.get("generation"),
            status.get("secretHash"),
            ref.get("key", workload.API_KEY),
            openai.get("baseURL"),
        )
    }


async def _api(method: str, path: str, **kw: Any) -> Any:
    for attempt in range(20):
        try:
            async with state.api.request(
                method, state.endpoint.server + path, ssl=state.endpoint.ssl_arg, **kw
            ) as r:
                body = await r.json(content_type=None)
                if r.status == 404:
                    return None
                if r.status >= 500 or r.status == 429:
                    raise kopf.TemporaryError(f"{method} {path}: {r.status}", delay=1)
                if r.status >= 400:
                    raise kopf.PermanentError(f"{method} {path}: {r.status}")
                return body
        except (aiohttp.ClientError, TimeoutError, kopf.TemporaryError):
            await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
    raise kopf.TemporaryError(f"{method} {path}: gave up", delay=5)


async def _probe(base_url: str, key: str) -> tuple[bool, str]:
    url = base_url.rstrip("/") + "/models"
    try:
        async with state.probe_http.get(url, headers={"Authorization": f"Bearer {key}"}) as r:
            await r.read()
            return r.status < 300, f"GET {url}: HTTP {r.status}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return False, f"GET {url}: {type(exc).__name__}"


async def _status_for(
    generation: int,
    secret_name: str,
    key: str,
    value: bytes,
    uid: str,
    base_url: str,
    previous: Any,
) -> dict[str, Any]:
    digest = workload.secret_hash(secret_name, key, value, uid)
    ok, message = await _probe(base_url, value.decode().strip())
    return workload.desired_status(generation, digest, base_url, ok, message, dict(previous or {}))


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def reconcile_provider(
    spec: Any, meta: Any, status: Any, namespace: str | None, patch: kopf.Patch, **_: Any
) -> None:
    """Resolve the Secret, probe, and write the status (through kopf's patch)."""
    ref = spec.get("apiKeySecretRef") or {}
    base_url = (spec.get("openai") or {}).get("baseURL")
    if not ref.get("name") or not base_url:
        raise kopf.PermanentError("not an OpenAI provider with an API key")
    key = ref.get("key", workload.API_KEY)
    async with state.sem:
        secret = await _api("GET", f"/api/v1/namespaces/{namespace}/secrets/{ref['name']}")
        if secret is None or key not in (secret.get("data") or {}):
            raise kopf.TemporaryError("Secret not found", delay=2)
        value = base64.b64decode(secret["data"][key])
        generation = int(meta.get("generation") or 0)
        uid = secret["metadata"]["uid"]
        digest = workload.secret_hash(ref["name"], key, value, uid)
        if status.get("secretHash") == digest and status.get("observedGeneration") == generation:
            return
        desired = await _status_for(generation, ref["name"], key, value, uid, base_url, status)
    patch.status.update(desired)


@kopf.on.event("", "v1", "secrets")
async def secret_changed(
    type: str,
    body: Any,
    namespace: str | None,
    name: str,
    **kwargs: Any,
) -> None:
    """Re-probe and patch every provider referencing this Secret whose hash is stale.

    ``kwargs`` carries the two indexes (``providers_by_secret``, ``provider_state``).
    """
    providers_by_secret: kopf.Index[Any, str] = kwargs["providers_by_secret"]
    provider_state: kopf.Index[Any, Any] = kwargs["provider_state"]
    if type not in ("ADDED", "MODIFIED"):
        return  # the initial listing is covered by the providers' resume handlers
    data = body.get("data") or {}
    for provider in providers_by_secret.get((namespace, name), []):
        for generation, known, key, base_url in provider_state.get((namespace, provider), []):
            if key not in data or not base_url:
                continue
            value = base64.b64decode(data[key])
            uid = body["metadata"]["uid"]
            if workload.secret_hash(name, key, value, uid) == known:
                continue
            async with state.sem:
                desired = await _status_for(
                    int(generation or 0), name, key, value, uid, base_url, None
                )
                await _api(
                    "PATCH",
                    f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{provider}/status",
                    data=json.dumps({"status": desired}).encode(),
                    headers={"Content-Type": "application/merge-patch+json"},
                )
