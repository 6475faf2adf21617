"""The manager's HTTP endpoints: ``/healthz``, ``/readyz`` (and ``/livez``), ``/metrics``.

Probes answer like controller-runtime's (and kube-apiserver's): ``200 ok`` when every named
check passes, else ``500`` with one ``[-]name failed: reason`` line per failing check;
``?verbose`` lists every check (``[+]name ok``). ``/metrics`` serves prometheus-client's
default registry in the text exposition format. Health and metrics normally listen on two
addresses (``:8081`` and ``:8080``); given the same address, one server serves both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

__all__ = ["Check", "HealthServer"]

log = logging.getLogger(__name__)

Check = Callable[[], str | None]
"""A named probe check: ``None`` when healthy, else a short reason (no secrets)."""


@dataclass
class HealthServer:
    """Serves the probes and the metrics on their bind addresses (``None``: not served)."""

    health_address: tuple[str, int] | None
    """``(host, port)`` of ``/healthz``, ``/livez`` and ``/readyz``."""
    metrics_address: tuple[str, int] | None
    """``(host, port)`` of ``/metrics``."""
    registry: CollectorRegistry = REGISTRY
    """Registry exposed on ``/metrics``."""
    healthz_checks: dict[str, Check] = field(default_factory=lambda: {"ping": lambda: None})
    """Liveness checks (``/healthz``, ``/livez``)."""
    readyz_checks: dict[str, Check] = field(default_factory=lambda: {"ping": lambda: None})
    """Readiness checks (``/readyz``)."""
    bound: dict[str, tuple[str, int]] = field(default_factory=dict)
    """After :meth:`start`: ``"health"`` and/or ``"metrics"`` → the address actually bound."""
    _runners: list[web.AppRunner] = field(default_factory=list)

    def url(self, role: str) -> str | None:
        """``http://host:port`` of the ``"health"`` or ``"metrics"`` server, once started."""
        address = self.bound.get(role)
        if address is None:
            return None
        host, port = address
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def _probe(self, request: web.Request, checks: dict[str, Check]) -> web.Response:
        lines: list[str] = []
        failed = False
        for name, check in list(checks.items()):
            try:
                reason = check()
            except Exception as exc:
                reason = f"check raised {type(exc).__name__}"
            if reason is None:
                lines.append(f"[+]{name} ok")
            else:
                failed = True
                lines.append(f"[-]{name} failed: {reason}")
        probe = request.path.lstrip("/")
        verbose = "verbose" in request.query
        if failed:
            body = "\n".join(lines) + f"\n{probe} check failed\n"
            return web.Response(status=500, text=body)
        body = "\n".join(lines) + f"\n{probe} check passed\n" if verbose else "ok"
        return web.Response(text=body)

    async def _healthz(self, request: web.Request) -> web.Response:
        return await self._probe(request, self.healthz_checks)

    async def _readyz(self, request: web.Request) -> web.Response:
        return await self._probe(request, self.readyz_checks)

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def _health_routes(self) -> list[web.RouteDef]:
        return [
            web.get("/healthz", self._healthz),
            web.get("/livez", self._healthz),
            web.get("/readyz", self._readyz),
        ]

    async def start(self) -> None:
        """Bind and serve; :attr:`bound` tells the addresses (port 0 picks a free one)."""
        # One server per distinct address; port 0 (any free port) is never shared.
        plan: list[tuple[tuple[str, int], list[str], list[web.RouteDef]]] = []
        wanted = [
            (self.health_address, "health", self._health_routes()),
            (self.metrics_address, "metrics", [web.get("/metrics", self._metrics)]),
        ]
        for address, role, routes in wanted:
            if address is None:
                continue
            shared = next((p for p in plan if p[0] == address and address[1] != 0), None)
            if shared is None:
                plan.append((address, [role], list(routes)))
            else:
                shared[1].append(role)
                shared[2].extend(routes)
        try:
            for (host, port), roles, routes in plan:
                app = web.Application()
                app.add_routes(routes)
                runner = web.AppRunner(app, access_log=None, handle_signals=False)
                await runner.setup()
                self._runners.append(runner)
                site = web.TCPSite(runner, host or "0.0.0.0", port, reuse_address=True)
                await site.start()
                sockname = runner.addresses[0]
                actual = (str(sockname[0]), int(sockname[1]))
                for role in roles:
                    self.bound[role] = actual
                    log.info(
                        "Serving %s on %s",
                        "health probes" if role == "health" else "metrics",
                        f"{actual[0]}:{actual[1]}",
                        extra={"role": role, "address": f"{actual[0]}:{actual[1]}"},
                    )
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()
        self.bound.clear()
