"""The harness's own API client (drives the workload) and the envtest control client.

The harness's requests carry the User-Agent :data:`HARNESS_AGENT`, so they are left out of
every contender's request counts. Writes retry connection failures and 5xx/429 (the chaos
scenario injects both); a create answered 409 AlreadyExists after a retry counts as done.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import aiohttp
import orjson

HARNESS_AGENT = "flokoa-bench-harness/1.0"


class ApiFailure(Exception):
    """A non-retryable answer."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status = status


class Harness:
    """Plain-HTTP client of the envtest API server."""

    def __init__(self, server: str) -> None:
        self.server = server.rstrip("/")
        self.session = aiohttp.ClientSession(
            headers={"User-Agent": HARNESS_AGENT, "Accept": "application/json"},
            connector=aiohttp.TCPConnector(limit=64),
            timeout=aiohttp.ClientTimeout(total=60),
        )

    async def close(self) -> None:
        """Close the session."""
        await self.session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str | None = None,
        params: dict[str, str] | None = None,
        deadline: float = 120.0,
    ) -> tuple[int, Any]:
        """Send with retries of transient failures; ``(status, decoded body)``."""
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type or "application/json"} if data else {}
        end = time.monotonic() + deadline
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self.session.request(
                    method, self.server + path, data=data, headers=headers, params=params
                ) as r:
                    raw = await r.read()
                    if r.status < 500 and r.status != 429:
                        if r.status == 409 and method == "POST" and attempt > 1:
                            return 201, None  # created by an earlier attempt
                        if r.status >= 400 and r.status != 404:
                            raise ApiFailure(r.status, raw)
                        return r.status, orjson.loads(raw) if raw else None
            except (aiohttp.ClientError, TimeoutError, ConnectionError):
                pass
            if time.monotonic() > end:
                raise TimeoutError(f"{method} {path}: no success within {deadline}s")
            await asyncio.sleep(min(1.0, 0.05 * 2**attempt) * (0.5 + random.random()))

    async def create(self, path: str, obj: dict[str, Any]) -> Any:
        """POST ``obj`` to the collection ``path``; the created object (None if an earlier
        attempt created it)."""
        _, body = await self.request("POST", path, obj)
        return body

    async def update(self, path: str, obj: dict[str, Any]) -> None:
        """PUT ``obj`` at ``path``."""
        await self.request("PUT", path, obj)

    async def merge_patch(self, path: str, patch: dict[str, Any]) -> Any:
        """Merge-patch ``path``."""
        _, body = await self.request(
            "PATCH", path, patch, content_type="application/merge-patch+json"
        )
        return body

    async def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET ``path`` (None when 404)."""
        status, body = await self.request("GET", path, params=params)
        return None if status == 404 else body

    async def list_all(self, path: str) -> tuple[list[dict[str, Any]], str]:
        """Every item of the collection ``path`` and the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        cont = ""
        while True:
            params = {"limit": "1000"}
            if cont:
                params["continue"] = cont
            page = await self.get(path, params)
            items.extend(page["items"])
            cont = page["metadata"].get("continue") or ""
            if not cont:
                return items, page["metadata"]["resourceVersion"]


class Control:
    """Client of hack/bench/envtest_server.py's control API."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600))

    async def close(self) -> None:
        """Close the session."""
        await self.session.close()

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """Call a control route and decode the answer."""
        async with self.session.request(
            method, self.url + path, data=orjson.dumps(body) if body is not None else None
        ) as r:
            raw = await r.read()
            if r.status >= 400:
                raise RuntimeError(f"control {path}: {r.status} {raw[:200]!r}")
            return orjson.loads(raw)

    async def audit(self) -> list[list[Any]]:
        """Audit rows since the previous call."""
        rows: list[list[Any]] = await self.call("GET", "/audit")
        return rows

    async def faults(self, **knobs: Any) -> Any:
        """Set fault knobs."""
        return await self.call("POST", "/faults", knobs)

    async def chaos(self, drop_every: float, expire_on_drop: int = 0) -> Any:
        """Start (``drop_every`` > 0) or stop the periodic watch drops."""
        return await self.call(
            "POST", "/chaos", {"drop_every": drop_every, "expire_on_drop": expire_on_drop}
        )

    async def outage(self, seconds: float) -> Any:
        """Refuse connections for ``seconds``."""
        return await self.call("POST", f"/outage?seconds={seconds}")
