"""Run envtest as a benchmark process, with a control server for the harness.

    python hack/bench/envtest_server.py --kubeconfig-out PATH [--tag-identities]

Serves the in-memory API server (CRDs from ``config/crd`` installed) and, on a second port,
a control API used only by the harness (never by a contender):

- ``POST /seed`` ``{"start", "count", "secret_bytes", "base_url", "secrets", "providers"}``:
  create benchmark objects in-process (fast; not in the audit log); answers the Secrets'
  UIDs (``{"created", "uids": {name: uid}}``);
- ``GET /audit``: the audit entries recorded since the previous call (then forgotten), as
  compact rows ``[time, verb, resource, namespace, name, subresource, code, agent, initial]``
  (``initial``: a watch asking for the initial state, i.e. a streaming list);
- ``POST /faults`` (knobs, see ``envtest.faults``), ``POST /drop-watches``,
  ``POST /outage?seconds=S``, ``POST /compact``;
- ``POST /chaos`` ``{"drop_every": 2.0, "expire_on_drop": -1}``: drop every watch every
  ``drop_every`` seconds and answer the next ``expire_on_drop`` resumes with 410 (-1: as
  many as there were open watches, so every dropped watch's resume gets 410);
  ``{"drop_every": 0}`` stops it.

With ``--tag-identities``, a request sending ``Authorization: Bearer bench-<id>`` (see the
per-replica kubeconfigs the harness writes) is recorded with agent ``<id>``; otherwise the
agent is the User-Agent. Prints ``BENCH-READY {"url", "control", "kubeconfig"}`` when up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any, cast

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flokoa_bench import workload
from flokoa_envtest import APIServer

from flokoa_controller.runtime import eventloop  # uvloop when installed, as the operator

REPO = Path(__file__).resolve().parents[2]
TAG_PREFIX = "Bearer bench-"


class TaggingHandler:
    """Wraps envtest's request handler: rewrites the User-Agent of tagged requests."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        if auth.startswith(TAG_PREFIX):
            headers = request.headers.copy()
            headers["User-Agent"] = "bench-id/" + auth[len(TAG_PREFIX) :]
            request = request.clone(headers=headers)
        response: web.StreamResponse = await self._inner(request)
        return response


class Control:
    """The harness's control API."""

    def __init__(self, api: APIServer) -> None:
        self.api = api
        self.chaos: asyncio.Task[None] | None = None
        self.drops = 0

    def routes(self) -> list[web.RouteDef]:
        """Every control route."""
        return [
            web.post("/seed", self.seed),
            web.get("/audit", self.audit),
            web.post("/faults", self.faults),
            web.post("/drop-watches", self.drop_watches),
            web.post("/outage", self.outage),
            web.post("/compact", self.compact),
            web.post("/chaos", self.set_chaos),
        ]

    async def seed(self, request: web.Request) -> web.Response:
        body = await request.json()
        start = int(body.get("start", 0))
        count = int(body["count"])
        size = int(body.get("secret_bytes", 1024))
        base_url = str(body.get("base_url", ""))
        created = 0
        uids: dict[str, str] = {}
        for i in range(start, start + count):
            if body.get("secrets", True):
                obj = self.api.create_object(workload.secret(i, size))
                uids[obj["metadata"]["name"]] = obj["metadata"]["uid"]
                created += 1
            if body.get("providers", True):
                self.api.create_object(workload.model_provider(i, base_url))
                created += 1
            if i % 200 == 0:
                await asyncio.sleep(0)  # keep serving meanwhile
        return web.json_response({"created": created, "uids": uids})

    async def audit(self, request: web.Request) -> web.Response:
        log = self.api.audit
        entries = list(log)
        log.clear()
        rows = []
        for e in entries:
            agent = e.user_agent
            rows.append(
                [
                    e.time.timestamp(),
                    e.verb,
                    e.resource,
                    e.namespace,
                    e.name,
                    e.subresource,
                    e.code,
                    agent,
                    int(e.query.get("sendInitialEvents") == "true"),
                ]
            )
        return web.json_response(rows)

    async def faults(self, request: web.Request) -> web.Response:
        self.api.faults.update(await request.json())
        return web.json_response(self.api.faults.snapshot())

    async def drop_watches(self, request: web.Request) -> web.Response:
        return web.json_response({"dropped": self.api.faults.drop_watches()})

    async def outage(self, request: web.Request) -> web.Response:
        seconds = float(request.query.get("seconds", "1"))
        self.api.faults.start_outage(seconds)
        return web.json_response({"outage": seconds})

    async def compact(self, request: web.Request) -> web.Response:
        self.api.compact()
        return web.json_response({})

    async def set_chaos(self, request: web.Request) -> web.Response:
        body = await request.json()
        every = float(body.get("drop_every", 0))
        expire = int(body.get("expire_on_drop", 0))
        if self.chaos is not None:
            self.chaos.cancel()
            self.chaos = None
        if every > 0:
            self.chaos = asyncio.get_running_loop().create_task(self._chaos(every, expire))
        return web.json_response({"drops": self.drops})

    async def _chaos(self, every: float, expire: int) -> None:
        while True:
            await asyncio.sleep(every)
            open_watches = len(self.api.handler.watches)
            self.api.faults.expire_watch_resumes = open_watches if expire < 0 else expire
            self.drops += 1
            self.api.faults.drop_watches()


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGINT/SIGTERM."""
    api = APIServer(
        crds=[REPO / "config" / "crd"],
        kubeconfig_path=args.kubeconfig_out,
        watch_history=args.watch_history,
        bookmark_interval=args.bookmark_interval,
        seed=1,
    )
    api.store.ensure_namespace(workload.NAMESPACE)
    if args.tag_identities:
        api.handler = TaggingHandler(api.handler)  # type: ignore[assignment]
    control = Control(api)
    app = web.Application()
    app.add_routes(control.routes())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with api:
        await site.start()
        server = cast(asyncio.Server, site._server)
        port = server.sockets[0].getsockname()[1]
        info = {
            "url": api.url,
            "control": f"http://127.0.0.1:{port}",
            "kubeconfig": str(api.kubeconfig_path),
        }
        print("BENCH-READY " + json.dumps(info), flush=True)
        await stop.wait()
        if control.chaos is not None:
            control.chaos.cancel()
    with contextlib.suppress(Exception):
        await runner.cleanup()


def main() -> None:
    """Parse flags and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig-out", type=Path, required=True)
    parser.add_argument("--tag-identities", action="store_true")
    parser.add_argument(
        "--watch-history",
        type=int,
        default=1_000_000,
        help="changes kept per resource (large: only the chaos scenario forces 410s)",
    )
    parser.add_argument("--bookmark-interval", type=float, default=60.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        eventloop.run(serve(args))


if __name__ == "__main__":
    main()
