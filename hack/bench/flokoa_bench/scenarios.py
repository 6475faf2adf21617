"""The benchmark scenarios (issue 6). Each returns a JSON-able dict of measurements.

Every scenario starts a fresh envtest process (see :mod:`.env`), runs one contender process
against it and the shared fake OpenAI endpoint, and measures from outside: readiness from
the harness's own watch, API requests from envtest's audit log, memory from ``/proc``.
Correctness verdicts (``ok`` fields) are what ``bench-smoke`` asserts; timings are reported,
never asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flokoa_bench import workload
from flokoa_bench.audit import summarize
from flokoa_bench.contenders import Launch, LeaderElection, start
from flokoa_bench.env import World, open_world, sample_memory
from flokoa_bench.hostile import HostileServers
from flokoa_bench.kubeconfig import write as write_kubeconfig
from flokoa_bench.procs import Child


@dataclass
class Params:
    """Scenario parameters (``make bench`` and ``make bench-smoke`` differ only here)."""

    n: int = 10_000
    """Objects (Secrets and ModelProviders) per scenario."""
    kopf_n: int | None = None
    """Objects for the kopf peer (None: ``n``); kopf is slow enough to need a cap."""
    rotations: int = 1_000
    """Secret updates in the rotation scenario."""
    rotation_rate: float = 50.0
    """Secret updates per second."""
    idle_seconds: float = 60.0
    """Length of the idle window."""
    idle_watch_max: float = 2.0
    """During the idle window every watch ends after this many seconds (simulates hours of
    server-side watch timeouts)."""
    chaos_drop_every: float = 2.0
    chaos_expire_on_drop: int = -1
    """410s armed at each drop (-1: one per dropped watch)."""
    chaos_error_rate: float = 0.05
    chaos_outage: float = 3.0
    chaos_outage_at: float = 3.0
    """Seconds into the chaos burst when the outage begins."""
    chaos_min_seconds: float = 10.0
    """The chaos burst's creates are spread over at least this long (so that small N still
    meets every fault)."""
    concurrency: int = 4
    """Concurrent probe+write workers of every contender."""
    create_concurrency: int = 32
    """Concurrent create requests of the harness in a burst."""
    secret_bytes: int = 1024
    large_secret_bytes: int = 64 * 1024
    timeout: float = 1800.0
    """Longest wait for convergence in one scenario."""
    leader: LeaderElection = field(default_factory=LeaderElection)
    flokoa_args: tuple[str, ...] = ()
    """Extra flags of ``flokoa-controller run``."""
    profile: bool = False
    """Record a py-spy profile of flokoa-controller during the create burst."""
    black_holes: int = 100
    """Adversarial scenario: providers whose endpoint accepts and never answers."""
    tricklers: int = 100
    """Adversarial scenario: providers whose endpoint answers one byte a second."""

    def n_for(self, contender: str) -> int:
        """Objects for ``contender``."""
        if contender == "kopf" and self.kopf_n is not None:
            return min(self.n, self.kopf_n)
        return self.n


def percentiles(values: Iterable[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean of ``values`` (seconds) in milliseconds."""
    data = sorted(values)
    if not data:
        return {}

    def pct(p: float) -> float:
        k = min(len(data) - 1, max(0, round(p / 100 * (len(data) - 1))))
        return data[k] * 1000

    return {
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": data[-1] * 1000,
        "mean_ms": statistics.fmean(data) * 1000,
        "count": len(data),
    }


async def _create_burst(
    world: World, indices: list[int], concurrency: int, rate: float | None = None
) -> tuple[dict[str, float], float, float]:
    """Create ModelProviders ``indices`` (their Secrets exist); created times, start, end.

    ``rate``: at most this many creates per second (None: as fast as the server answers).
    """
    created: dict[str, float] = {}
    queue = list(reversed(indices))
    began = time.time()
    sent = 0

    async def creator() -> None:
        nonlocal sent
        while queue:
            i = queue.pop()
            if rate is not None:
                slot = began + sent / rate
                sent += 1
                if slot > time.time():
                    await asyncio.sleep(slot - time.time())
            name = workload.name_of(i)
            world.observer.expect(name, world.expected(i))
            created[name] = await world.create_provider(i)

    await asyncio.gather(*(creator() for _ in range(concurrency)))
    return created, began, time.time()


def _latencies(world: World, since: dict[str, float]) -> list[float]:
    reached = world.observer.reached
    return [max(0.0, reached[n] - t) for n, t in since.items() if n in reached]


async def _verify(world: World, expected: dict[str, str]) -> dict[str, Any]:
    """List every ModelProvider now and check it against ``expected`` (name → hash)."""
    items, _ = await world.harness.list_all(workload.MODELPROVIDERS_PATH)
    by_name = {i["metadata"]["name"]: i for i in items}
    wrong = [
        n
        for n, h in expected.items()
        if n not in by_name or not workload.is_converged(by_name[n], h)
    ]
    return {"checked": len(expected), "wrong": len(wrong), "examples": wrong[:5]}


def _expected_all(world: World, n: int, revisions: dict[int, int] | None = None) -> dict[str, str]:
    revisions = revisions or {}
    return {workload.name_of(i): world.expected(i, revisions.get(i, 0)) for i in range(n)}


async def _probes(fake_url: str, world: World) -> int:
    async with world.harness.session.get(fake_url + "/bench/stats") as r:
        return int((await r.json())["requests"])


class Runner:
    """Runs scenarios for contenders; collects logs under ``workdir``."""

    def __init__(self, params: Params, workdir: Path, fake_url: str, base_url: str) -> None:
        self.params = params
        self.workdir = workdir
        self.fake_url = fake_url
        self.base_url = base_url

    def _dir(self, scenario: str, contender: str) -> Path:
        path = self.workdir / scenario / contender
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def _world(self, scenario: str, contender: str, **kw: Any) -> World:
        return await open_world(self._dir(scenario, contender), self.base_url, **kw)

    async def _start(self, world: World, launch: Launch, name: str | None = None) -> Child:
        if launch.contender == "flokoa" and self.params.flokoa_args:
            launch = replace(launch, extra_args=launch.extra_args + self.params.flokoa_args)
        child = await start(launch, world.workdir, name)
        world.children.append(child)
        return child

    # -- 1 and 5: cold start (and memory) ----------------------------------------------------

    async def cold_start(self, contender: str, secret_bytes: int, label: str) -> dict[str, Any]:
        """N ModelProviders and Secrets exist; start the contender; until all are correct."""
        p = self.params
        n = p.n_for(contender)
        world = await self._world(label, contender)
        try:
            await world.seed(0, n, secret_bytes, providers=True)
            for i in range(n):
                world.observer.expect(workload.name_of(i), world.expected(i))
            await world.audit.drain()
            mark = world.audit.mark()
            probes0 = await _probes(self.fake_url, world)
            t0 = time.time()
            child = await self._start(world, Launch(contender, world.kubeconfig, p.concurrency))
            samples: list[dict[str, float]] = []
            sampler = asyncio.get_running_loop().create_task(sample_memory(child, samples))
            ok = await world.observer.wait_all(p.timeout)
            done = max(world.observer.reached.values(), default=time.time())
            first = min(world.observer.reached.values(), default=time.time())
            cpu = child.cpu_seconds()
            await asyncio.sleep(3.0)  # settle, then the steady-state RSS
            mem = child.memory()
            sampler.cancel()
            await world.audit.drain()
            rows = world.audit.since(mark, until=done)
            verify = await _verify(world, _expected_all(world, n))
            return {
                "n": n,
                "secret_bytes": secret_bytes,
                "ok": ok and verify["wrong"] == 0,
                "seconds": done - t0,
                "first_ready_s": first - t0,
                "objects_per_s": n / max(done - t0, 1e-9),
                "requests": summarize(rows),
                "probes": await _probes(self.fake_url, world) - probes0,
                "cpu_s": cpu,
                "rss_mib": mem.get("rss_mib"),
                "peak_rss_mib": mem.get("hwm_mib"),
                "rss_samples_max_mib": max((s.get("rss_mib", 0) for s in samples), default=None),
                "verify": verify,
                "exited": child.proc.returncode,
            }
        finally:
            await world.close()

    # -- 2, 3, 4: create burst, rotation, idle (one world) ----------------------------------

    async def burst_rotation_idle(self, contender: str) -> dict[str, dict[str, Any]]:
        """Create burst, then rotation, then idle, on one running contender."""
        p = self.params
        n = p.n_for(contender)
        world = await self._world("burst", contender)
        out: dict[str, dict[str, Any]] = {}
        try:
            await world.seed(0, n, p.secret_bytes, providers=False)
            launch = Launch(contender, world.kubeconfig, p.concurrency)
            child = await self._start(world, launch)
            out["startup_canary_s"] = {"seconds": await world.canary()}
            profile = None
            if p.profile and contender == "flokoa":
                profile = await self._start_profiler(world, child)
            out["create_burst"] = await self._burst(world, child, n)
            if profile is not None:
                out["create_burst"]["profile"] = await self._stop_profiler(profile)
            out["rotation"] = await self._rotation(world, child, n)
            out["idle"] = await self._idle(world, child, n)
            return out
        finally:
            await world.close()

    async def _start_profiler(
        self, world: World, child: Child
    ) -> tuple[asyncio.subprocess.Process, Path]:
        path = world.workdir / "create_burst.pyspy.txt"
        spy = str(Path(sys.executable).parent / "py-spy")
        proc = await asyncio.create_subprocess_exec(
            spy,
            "record",
            "--pid",
            str(child.pid),
            "--rate",
            "100",
            "--format",
            "raw",
            "--output",
            str(path),
            "--nonblocking",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=(world.workdir / "py-spy.log").open("wb"),
        )
        await asyncio.sleep(1.0)
        return proc, path

    async def _stop_profiler(self, profile: tuple[asyncio.subprocess.Process, Path]) -> str:
        proc, path = profile
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 30)
        return str(path)

    async def _burst(self, world: World, child: Child, n: int) -> dict[str, Any]:
        p = self.params
        await world.audit.drain()
        mark = world.audit.mark()
        probes0 = await _probes(self.fake_url, world)
        cpu0 = child.cpu_seconds()
        created, began, created_all = await _create_burst(
            world, list(range(n)), p.create_concurrency
        )
        ok = await world.observer.wait_all(p.timeout)
        reached = [world.observer.reached[k] for k in created if k in world.observer.reached]
        done = max(reached, default=time.time())
        cpu = child.cpu_seconds() - cpu0
        await world.audit.drain()
        rows = world.audit.since(mark, until=done)
        lat = _latencies(world, created)
        return {
            "n": n,
            "ok": ok,
            "seconds": done - began,
            "create_seconds": created_all - began,
            "drain_after_last_create_s": done - created_all,
            "objects_per_s": n / max(done - began, 1e-9),
            "latency": percentiles(lat),
            "latencies_s": [round(x, 4) for x in lat],
            "requests": summarize(rows),
            "probes": await _probes(self.fake_url, world) - probes0,
            "cpu_s": cpu,
            "cpu_ms_per_object": cpu * 1000 / max(n, 1),
            "rss_mib": child.memory().get("rss_mib"),
            "peak_rss_mib": child.memory().get("hwm_mib"),
        }

    async def _rotation(self, world: World, child: Child, n: int) -> dict[str, Any]:
        p = self.params
        count = min(p.rotations, n)
        targets = random.Random(6).sample(range(n), count)
        await world.audit.quiesce()  # trailing work of the burst (events) stays out
        mark = world.audit.mark()
        probes0 = await _probes(self.fake_url, world)
        cpu0 = child.cpu_seconds()
        updated: dict[str, float] = {}
        began = time.time()
        interval = 1.0 / p.rotation_rate
        inflight: set[asyncio.Task[None]] = set()

        async def rotate(i: int) -> None:
            name = workload.name_of(i)
            world.observer.expect(name, world.expected(i, 1))
            body = workload.secret(i, p.secret_bytes, revision=1)
            await world.harness.merge_patch(
                f"{workload.SECRETS_PATH}/{name}", {"data": body["data"]}
            )
            updated[name] = time.time()

        for k, i in enumerate(targets):
            delay = began + k * interval - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.get_running_loop().create_task(rotate(i))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        await asyncio.gather(*inflight)
        sent = time.time()
        ok = await world.observer.wait_all(p.timeout)
        done = max((world.observer.reached.get(k, 0.0) for k in updated), default=time.time())
        await world.audit.drain()
        rows = world.audit.since(mark, until=done)
        lat = _latencies(world, updated)
        verify = await _verify(world, _expected_all(world, n, dict.fromkeys(targets, 1)))
        return {
            "updates": count,
            "rate_per_s": count / max(sent - began, 1e-9),
            "ok": ok and verify["wrong"] == 0,
            "seconds": done - began,
            "latency": percentiles(lat),
            "latencies_s": [round(x, 4) for x in lat],
            "requests": summarize(rows),
            "probes": await _probes(self.fake_url, world) - probes0,
            "cpu_s": child.cpu_seconds() - cpu0,
            "verify": verify,
            "revisions": dict.fromkeys(targets, 1),
        }

    async def _idle(self, world: World, child: Child, n: int) -> dict[str, Any]:
        p = self.params
        await world.audit.quiesce()  # the window opens when the last writes have landed
        mark = world.audit.mark()
        probes0 = await _probes(self.fake_url, world)
        cpu0 = child.cpu_seconds()
        began = time.time()
        await world.control.faults(watch_max_seconds=p.idle_watch_max)
        await asyncio.sleep(p.idle_seconds)
        await world.control.faults(watch_max_seconds=None)
        ended = time.time()
        await world.audit.drain()
        rows = [r for r in world.audit.since(mark) if began <= r.time <= ended]
        summary = summarize(rows)
        return {
            "seconds": ended - began,
            "watch_max_seconds": p.idle_watch_max,
            "ok": summary["status_writes"] == 0 and summary["object_writes"] == 0,
            "requests": summary,
            "probes": await _probes(self.fake_url, world) - probes0,
            "cpu_s": child.cpu_seconds() - cpu0,
            "rss_mib": child.memory().get("rss_mib"),
        }

    # -- 6: chaos ----------------------------------------------------------------------------

    async def chaos(self, contender: str) -> dict[str, Any]:
        """The create burst while envtest drops watches, expires resumes, fails 5 %, goes down."""
        p = self.params
        n = p.n_for(contender)
        world = await self._world("chaos", contender)
        try:
            await world.seed(0, n, p.secret_bytes, providers=False)
            child = await self._start(world, Launch(contender, world.kubeconfig, p.concurrency))
            await world.canary()
            await world.audit.drain()
            mark = world.audit.mark()
            await world.control.faults(
                error_rate=p.chaos_error_rate, error_code=500, retry_after=None
            )
            await world.control.chaos(p.chaos_drop_every, p.chaos_expire_on_drop)
            began = time.time()
            burst = asyncio.get_running_loop().create_task(
                _create_burst(world, list(range(n)), p.create_concurrency, n / p.chaos_min_seconds)
            )
            await asyncio.sleep(p.chaos_outage_at)
            outage_at = time.time()
            await world.control.outage(p.chaos_outage)
            created, _, created_all = await burst
            ok = await world.observer.wait_all(p.timeout)
            done = max(world.observer.reached.values(), default=time.time())
            await world.control.chaos(0)
            await world.control.faults(error_rate=0.0)
            drops = (await world.control.chaos(0))["drops"]
            await world.audit.drain()
            rows = world.audit.since(mark, until=done)
            verify = await _verify(world, _expected_all(world, n))
            return {
                "n": n,
                "ok": ok and verify["wrong"] == 0 and child.alive,
                "converged": len(world.observer.reached) - 1,  # minus the canary
                "seconds_to_converge": done - began,
                "create_seconds": created_all - began,
                "outage_at_s": outage_at - began,
                "watch_drops": drops,
                "requests": summarize(rows),
                "verify": verify,
                "alive": child.alive,
                "latency": percentiles(_latencies(world, created)),
            }
        finally:
            await world.close()

    # -- 7: failover -------------------------------------------------------------------------

    async def failover(self, pause: bool = False) -> dict[str, Any]:
        """Two flokoa-controller replicas; kill (or freeze) the leader mid-burst."""
        p = self.params
        n = p.n
        label = "failover_pause" if pause else "failover"
        world = await self._world(label, "flokoa", tag_identities=True)
        try:
            await world.seed(0, n, p.secret_bytes, providers=False)
            server = world.envtest.info["url"]
            kc = {
                r: write_kubeconfig(world.workdir / f"kubeconfig-{r}.yaml", server, f"bench-{r}")
                for r in ("a", "b")
            }
            le = p.leader

            def launch(r: str) -> Launch:
                return Launch("flokoa", kc[r], p.concurrency, leader_election=le)

            a = await self._start(world, launch("a"), "replica-a")
            await world.canary()
            b = await self._start(world, launch("b"), "replica-b")
            await self._wait_standby(world, "bench-id/b")
            await world.audit.drain()
            mark = world.audit.mark()
            began = time.time()
            burst = asyncio.get_running_loop().create_task(
                _create_burst(world, list(range(n)), p.create_concurrency)
            )
            target = max(1, n // 2)
            await world.observer.wait_count(target + 1, p.timeout)
            killed_at = time.time()
            ready_at_kill = len(world.observer.reached) - 1
            a.kill(signal.SIGSTOP if pause else signal.SIGKILL)
            acquired = await self._wait_acquired(world, "bench-id/b", killed_at, p.timeout)
            if pause:
                await asyncio.sleep(1.0)
                a.kill(signal.SIGCONT)
            _, _, created_all = await burst
            ok = await world.observer.wait_all(p.timeout)
            done = max(world.observer.reached.values(), default=time.time())
            if pause:
                await asyncio.sleep(le.renew_deadline + 2.0)  # let the old leader act or exit
            await world.audit.drain()
            rows = world.audit.since(mark)
            status_writes = [r for r in rows if r.is_write and r.subresource == "status"]
            old_tried = [
                r
                for r in status_writes
                if r.agent == "bench-id/a" and acquired is not None and r.time >= acquired
            ]
            old_after = [r for r in old_tried if 200 <= r.code < 300]  # applied ones
            new_before = [
                r
                for r in status_writes
                if r.agent == "bench-id/b" and (acquired is None or r.time < acquired)
            ]
            verify = await _verify(world, _expected_all(world, n))
            offending = [
                {
                    "after_takeover_s": round(r.time - acquired, 4) if acquired else None,
                    "request": f"{r.verb} {r.target} {r.name}",
                    "code": r.code,
                    "agent": r.agent,
                }
                for r in old_tried + new_before
            ]
            return {
                "n": n,
                "offending_writes": offending[:20],
                "mode": "SIGSTOP then SIGCONT" if pause else "SIGKILL",
                "lease": {
                    "duration_s": le.lease_duration,
                    "renew_deadline_s": le.renew_deadline,
                    "retry_period_s": le.retry_period,
                },
                "ready_at_kill": ready_at_kill,
                "takeover_s": (acquired - killed_at) if acquired is not None else None,
                "takeover_bound_s": le.lease_duration + le.retry_period,
                "all_ready_after_kill_s": done - killed_at,
                "seconds": done - began,
                "old_leader_status_writes_after_takeover": len(old_after),
                "old_leader_status_writes_rejected_after_takeover": len(old_tried) - len(old_after),
                "standby_status_writes_before_takeover": len(new_before),
                "old_leader_exit_code": a.proc.returncode,
                "new_leader_alive": b.alive,
                "ok": (
                    ok
                    and verify["wrong"] == 0
                    and acquired is not None
                    and not old_after
                    and not new_before
                ),
                "verify": verify,
                "requests": summarize(rows),
                "create_seconds": created_all - began,
            }
        finally:
            await world.close()

    async def _wait_standby(self, world: World, agent: str, within: float = 60.0) -> None:
        """Until ``agent`` has tried the Lease (it is up and campaigning)."""
        end = time.monotonic() + within
        while time.monotonic() < end:
            await world.audit.drain()
            if any(r.agent == agent and r.resource == "leases" for r in world.audit.rows):
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{agent} never tried the Lease")

    async def _wait_acquired(
        self, world: World, agent: str, after: float, within: float
    ) -> float | None:
        """Wall time of ``agent``'s first successful Lease write after ``after``."""
        end = time.monotonic() + within
        while time.monotonic() < end:
            await world.audit.drain()
            for r in world.audit.rows:
                if (
                    r.agent == agent
                    and r.resource == "leases"
                    and r.verb in ("update", "create", "patch")
                    and r.code in (200, 201)
                    and r.time >= after
                ):
                    return r.time
            await asyncio.sleep(0.1)
        return None

    # -- 8: adversarial (issue 12) -----------------------------------------------------------

    async def adversarial(self) -> dict[str, Any]:
        """N normal providers, rotated, with and without hostile namespaces beside them.

        Two runs of flokoa-controller, each in a fresh world: *quiet* (only the N normal
        providers) and *hostile* (plus black holes in one namespace and tricklers in
        another, each on a port of its own, started before the rotation and hanging
        throughout it). Reports the rotation latencies of both runs and their ratio
        (target <= 1.5), and the operator's thread count and RSS during the rotation.
        """
        p = self.params
        quiet = await self._adversarial_run(hostile=False)
        hostile = await self._adversarial_run(hostile=True)
        out: dict[str, Any] = {
            "n": p.n,
            "black_holes": p.black_holes,
            "tricklers": p.tricklers,
            "quiet": quiet,
            "hostile": hostile,
        }
        for q in ("p50_ms", "p99_ms"):
            a = _dig(hostile, "rotation", "latency", q)
            b = _dig(quiet, "rotation", "latency", q)
            out[f"{q[:3]}_ratio"] = a / b if a and b else None
        out["ok"] = bool(quiet.get("ok") and hostile.get("ok"))
        return out

    async def _adversarial_run(self, *, hostile: bool) -> dict[str, Any]:
        p = self.params
        n = p.n
        label = "adversarial_hostile" if hostile else "adversarial_quiet"
        world = await self._world(label, "flokoa")
        servers = HostileServers(p.black_holes if hostile else 0, p.tricklers if hostile else 0)
        try:
            async with servers:
                await world.seed(0, n, p.secret_bytes, providers=True)
                for i in range(n):
                    world.observer.expect(workload.name_of(i), world.expected(i))
                child = await self._start(world, Launch("flokoa", world.kubeconfig, p.concurrency))
                converged = await world.observer.wait_all(p.timeout)
                held_before = 0
                if hostile:
                    await _hostile_providers(world, "hostile-holes", servers.hole_urls)
                    await _hostile_providers(world, "hostile-tricklers", servers.trickler_urls)
                    # until the attack is on: every hostile namespace holds probe slots
                    end = time.monotonic() + 60
                    want = min(8, p.black_holes) + min(8, p.tricklers)
                    while servers.held < want and time.monotonic() < end:  # noqa: ASYNC110
                        await asyncio.sleep(0.2)
                    held_before = servers.held
                samples: list[dict[str, float]] = []
                sampler = asyncio.get_running_loop().create_task(sample_memory(child, samples))
                rotation = await self._rotation(world, child, n)
                sampler.cancel()
                mem = child.memory()
                return {
                    "n": n,
                    "ok": converged and rotation["ok"] and child.alive,
                    "rotation": {k: v for k, v in rotation.items() if k != "revisions"},
                    "hostile_connections_held_at_start": held_before,
                    "hostile_connections_held_at_end": servers.held,
                    "hostile_connections_accepted": servers.accepted,
                    "threads_max": max((s.get("threads", 0) for s in samples), default=None),
                    "threads_end": mem.get("threads"),
                    "rss_max_mib": max((s.get("rss_mib", 0) for s in samples), default=None),
                    "peak_rss_mib": mem.get("hwm_mib"),
                    "alive": child.alive,
                }
        finally:
            await world.close()


def _dig(d: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(d, dict):
            return None
        d = d.get(part)
    return d


async def _hostile_providers(world: World, namespace: str, urls: list[str]) -> None:
    """A namespace with one Secret and a ModelProvider per hostile endpoint in ``urls``."""
    if not urls:
        return
    harness = world.harness
    await harness.create(
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
    )
    secret = workload.secret(0, 64, name="key")
    secret["metadata"]["namespace"] = namespace
    await harness.create(f"/api/v1/namespaces/{namespace}/secrets", secret)
    path = f"/apis/{workload.GROUP}/{workload.VERSION}/namespaces/{namespace}/{workload.PLURAL}"
    for i, url in enumerate(urls):
        body = workload.model_provider(0, url, f"hostile-{i}")
        body["metadata"]["namespace"] = namespace
        body["spec"]["apiKeySecretRef"]["name"] = "key"
        body["spec"]["openai"]["timeoutSeconds"] = 600  # the tenant asks for the maximum
        await harness.create(path, body)
