"""The limit: the least work the ModelProvider job can take on the API server.

    python hack/bench/limit.py --kubeconfig PATH [--concurrency 4]

Bare asyncio + aiohttp, no cache, no work queue, no leader election. It performs the same
API reads as the operator (list ModelProviders and Secrets, then watch both from the lists'
resourceVersions, with bookmarks), the same probe (``GET {baseURL}/models`` with ``Bearer``)
and the same status write (a merge patch of ``/status`` with provider, ready, conditions,
observedGeneration, secretHash), with the same concurrency (``--concurrency`` probes+writes
in flight). It keeps only what the job cannot do without: per provider its generation,
Secret reference, base URL and the (generation, secretHash) it last wrote, and the map from
a Secret to the providers referencing it. Secret payloads are used as they arrive (list page
or watch event) and dropped; a provider event reads its Secret with one GET.

Robustness is kept to what a benchmark run needs: watch resumption, relist on 410, retries
of connection errors and 5xx with a short backoff.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import random
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flokoa_bench import kubeconfig, workload

from flokoa_controller.runtime import eventloop  # uvloop when installed, as the operator

USER_AGENT = "flokoa-bench-limit/1.0"
GROUP_PATH = f"/apis/{workload.GROUP}/{workload.VERSION}"
MP_PATH = f"{GROUP_PATH}/{workload.PLURAL}"
SECRET_PATH = "/api/v1/secrets"


Value = tuple[bytes, str]
"""A Secret value and the Secret's UID."""


class Gone(Exception):
    """410: relist."""


class Transient(Exception):
    """Connection failure or 5xx: retry."""


@dataclass
class Provider:
    """What the limit remembers of one ModelProvider."""

    namespace: str
    name: str
    generation: int
    secret_name: str
    secret_key: str
    base_url: str
    written: tuple[int, str] | None = None
    """(generation, secretHash) of the last status written or observed as current."""


class Limit:
    """List, watch, probe, patch: nothing else."""

    def __init__(self, endpoint: kubeconfig.Endpoint, concurrency: int) -> None:
        self.ep = endpoint
        self.sem = asyncio.Semaphore(concurrency)
        self.providers: dict[tuple[str, str], Provider] = {}
        self.by_secret: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self.running: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.again: dict[tuple[str, str], Value | None] = {}
        self.api: aiohttp.ClientSession
        self.probe_http: aiohttp.ClientSession

    # -- HTTP ------------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kw: Any) -> Any:
        for attempt in range(30):
            try:
                async with self.api.request(
                    method, self.ep.server + path, ssl=self.ep.ssl_arg, **kw
                ) as r:
                    body = await r.read()
                    if r.status == 410:
                        raise Gone
                    if r.status == 404:
                        return None
                    if r.status >= 500 or r.status == 429:
                        raise Transient(r.status)
                    if r.status >= 400:
                        raise RuntimeError(f"{method} {path}: {r.status} {body[:200]!r}")
                    return orjson.loads(body)
            except (aiohttp.ClientError, TimeoutError, Transient):
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt) * random.random() + 0.05)
        raise RuntimeError(f"{method} {path}: gave up")

    async def list_pages(self, path: str) -> Any:
        """Yield list pages (limit=500) and finally the list's resourceVersion."""
        cont = None
        while True:
            params = {"limit": "500"}
            if cont:
                params["continue"] = cont
            page = await self._request("GET", path, params=params)
            yield page
            cont = page["metadata"].get("continue")
            if not cont:
                return

    # -- state -----------------------------------------------------------------------------

    def remember(self, obj: dict[str, Any]) -> Provider | None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        spec = obj.get("spec") or {}
        ref = spec.get("apiKeySecretRef") or {}
        openai = spec.get("openai") or {}
        if not ref.get("name") or "baseURL" not in openai:
            return None
        old = self.providers.get(key)
        prov = Provider(
            key[0],
            key[1],
            int(meta.get("generation") or 0),
            ref["name"],
            ref.get("key", "api-key"),
            openai["baseURL"],
            old.written if old else None,
        )
        status = obj.get("status") or {}
        if status.get("ready") is not None and isinstance(status.get("secretHash"), str):
            prov.written = (int(status.get("observedGeneration") or 0), status["secretHash"])
        if old is not None and (old.namespace, old.secret_name) != (
            prov.namespace,
            prov.secret_name,
        ):
            self.by_secret.get((old.namespace, old.secret_name), set()).discard(key)
        self.providers[key] = prov
        self.by_secret.setdefault((prov.namespace, prov.secret_name), set()).add(key)
        return prov

    def forget(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        prov = self.providers.pop(key, None)
        if prov is not None:
            self.by_secret.get((prov.namespace, prov.secret_name), set()).discard(key)

    # -- work ------------------------------------------------------------------------------

    def submit(self, key: tuple[str, str], value: Value | None) -> None:
        """Process provider ``key`` (with the Secret value and UID if known); one job per
        key."""
        if key in self.running:
            self.again[key] = value if value is not None else self.again.get(key)
            return
        task = asyncio.get_running_loop().create_task(self._run(key, value))
        self.running[key] = task

    async def _run(self, key: tuple[str, str], value: Value | None) -> None:
        try:
            while True:
                try:
                    await self.process(key, value)
                except Exception as exc:  # keep going; a benchmark run reports the state
                    print(f"limit: {key}: {exc!r}", file=sys.stderr)
                if key not in self.again:
                    return
                value = self.again.pop(key)
        finally:
            self.running.pop(key, None)

    async def process(self, key: tuple[str, str], value: Value | None) -> None:
        prov = self.providers.get(key)
        if prov is None:
            return
        async with self.sem:
            if value is None:
                sec = await self._request(
                    "GET", f"/api/v1/namespaces/{prov.namespace}/secrets/{prov.secret_name}"
                )
                if sec is None:
                    return  # its ADDED event will bring the provider back
                raw = (sec.get("data") or {}).get(prov.secret_key)
                if raw is None:
                    return
                value = (base64.b64decode(raw), sec["metadata"]["uid"])
            secret, uid = value
            digest = workload.secret_hash(prov.secret_name, prov.secret_key, secret, uid)
            generation = prov.generation
            if prov.written == (generation, digest):
                return
            ok, message = await self.probe(prov.base_url, secret.decode().strip())
            status = workload.desired_status(generation, digest, prov.base_url, ok, message)
            path = f"{GROUP_PATH}/namespaces/{prov.namespace}/{workload.PLURAL}/{prov.name}/status"
            result = await self._request(
                "PATCH",
                path,
                data=orjson.dumps({"status": status}),
                headers={"Content-Type": "application/merge-patch+json"},
            )
            if result is not None:
                prov.written = (generation, digest)

    async def probe(self, base_url: str, key: str) -> tuple[bool, str]:
        url = base_url.rstrip("/") + "/models"
        try:
            async with self.probe_http.get(url, headers={"Authorization": f"Bearer {key}"}) as r:
                await r.read()
                return r.status < 300, f"GET {url}: HTTP {r.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return False, f"GET {url}: {type(exc).__name__}"

    # -- list + watch ----------------------------------------------------------------------

    async def list_providers(self, submit: bool = True) -> str:
        rv = ""
        async for page in self.list_pages(MP_PATH):
            for obj in page["items"]:
                if submit:
                    self.on_provider(obj)
                else:
                    self.remember(obj)
            rv = page["metadata"]["resourceVersion"]
        return rv

    def submit_unconverged(self) -> None:
        """After the first lists: providers whose Secret the list did not cover."""
        for key, prov in self.providers.items():
            if key not in self.running and (
                prov.written is None or prov.written[0] != prov.generation
            ):
                self.submit(key, None)

    async def list_secrets(self) -> str:
        rv = ""
        async for page in self.list_pages(SECRET_PATH):
            for obj in page["items"]:
                self.on_secret(obj)
            rv = page["metadata"]["resourceVersion"]
        return rv

    def on_provider(self, obj: dict[str, Any]) -> None:
        prov = self.remember(obj)
        if prov is not None and (prov.written is None or prov.written[0] != prov.generation):
            self.submit((prov.namespace, prov.name), None)

    def on_secret(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        keys = self.by_secret.get((meta["namespace"], meta["name"]))
        if not keys:
            return
        data = obj.get("data") or {}
        for key in list(keys):
            prov = self.providers.get(key)
            if prov is None or prov.secret_key not in data:
                continue
            value = base64.b64decode(data[prov.secret_key])
            uid = meta["uid"]
            digest = workload.secret_hash(prov.secret_name, prov.secret_key, value, uid)
            if prov.written != (prov.generation, digest):
                self.submit(key, (value, uid))

    async def watch(self, path: str, rv: str, relist: Any, handle: Any) -> None:
        backoff = 0.2
        while True:
            params = {
                "watch": "1",
                "allowWatchBookmarks": "true",
                "resourceVersion": rv,
                "timeoutSeconds": str(random.randint(300, 600)),
            }
            try:
                async with self.api.get(
                    self.ep.server + path,
                    params=params,
                    ssl=self.ep.ssl_arg,
                    timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
                ) as r:
                    if r.status == 410:
                        raise Gone
                    if r.status != 200:
                        raise Transient(r.status)
                    backoff = 0.2
                    async for line in r.content:
                        if not line.strip():
                            continue
                        event = orjson.loads(line)
                        kind, obj = event["type"], event["object"]
                        if kind == "ERROR":
                            if obj.get("code") == 410:
                                raise Gone
                            raise Transient(obj.get("code"))
                        rv = obj["metadata"]["resourceVersion"]
                        if kind == "BOOKMARK":
                            continue
                        handle(kind, obj)
            except Gone:
                rv = await relist()
            except (aiohttp.ClientError, TimeoutError, Transient, ConnectionError):
                await asyncio.sleep(backoff * random.random() + 0.05)
                backoff = min(backoff * 2, 5.0)

    def handle_provider(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == "DELETED":
            self.forget(obj)
        else:
            self.on_provider(obj)

    def handle_secret(self, kind: str, obj: dict[str, Any]) -> None:
        if kind != "DELETED":
            self.on_secret(obj)

    async def run(self, ready: asyncio.Event) -> None:
        async with (
            aiohttp.ClientSession(headers=self.ep.headers(USER_AGENT)) as self.api,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as self.probe_http,
        ):
            # providers first (the index), then Secrets: their payloads feed the first
            # probes directly, so a cold start reads no Secret twice
            mp_rv = await self.list_providers(submit=False)
            secret_rv = await self.list_secrets()
            self.submit_unconverged()
            ready.set()
            await asyncio.gather(
                self.watch(MP_PATH, mp_rv, self.list_providers, self.handle_provider),
                self.watch(SECRET_PATH, secret_rv, self.list_secrets, self.handle_secret),
            )


async def main_async(args: argparse.Namespace) -> None:
    limit = Limit(kubeconfig.load(args.kubeconfig), args.concurrency)
    ready = asyncio.Event()
    task = asyncio.get_running_loop().create_task(limit.run(ready))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopper = loop.create_task(stop.wait())
    await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    eventloop.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
