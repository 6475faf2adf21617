"""``python hack/bench/run.py``: run the scenarios, write the results and the report.

Results go to ``<out>/<timestamp>.json`` (rewritten after every scenario, so a long run
keeps what it measured) and ``<out>/<timestamp>.md``; logs of every process to
``<out>/<timestamp>/``. ``--check`` exits 1 if any correctness verdict failed (bench-smoke).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flokoa_bench import report
from flokoa_bench.contenders import BENCH_DIR, CONTENDERS, REPO, LeaderElection
from flokoa_bench.procs import spawn
from flokoa_bench.scenarios import Params, Runner
from flokoa_controller.runtime import eventloop  # uvloop when installed, as the operator

SCENARIOS = (
    "cold_start",
    "memory_64k",
    "burst",
    "chaos",
    "failover",
    "failover_pause",
    "adversarial",
)
"""Scenario groups: ``burst`` runs create_burst, rotation and idle on one contender run;
``cold_start`` doubles as memory_1k."""


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="hack/bench/run.py", description=__doc__)
    p.add_argument("--n", type=int, default=10_000, help="objects per scenario")
    p.add_argument("--kopf-n", type=int, default=None, help="cap N for kopf (default: N)")
    p.add_argument("--rotations", type=int, default=1_000)
    p.add_argument("--rotation-rate", type=float, default=50.0)
    p.add_argument("--idle-seconds", type=float, default=60.0)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma-separated: {', '.join(SCENARIOS)}"
    )
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    p.add_argument("--lease", default="15,10,2", help="lease duration, renew deadline, retry (s)")
    p.add_argument("--profile", action="store_true", help="py-spy flokoa during the create burst")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--plot", type=Path, default=None, help="write the latency PNG here")
    p.add_argument("--check", action="store_true", help="exit 1 unless every verdict is ok")
    p.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="do not run: print the table of (and --plot) an earlier results file",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the cold start and the burst scenario this many times, the contenders "
        "taking turns, and report each contender's median round (by objects/s); every "
        "round's throughput is kept. Shared machines drift by up to 2x within minutes: "
        "interleaved rounds keep the ratios honest",
    )
    p.add_argument(
        "--parallel",
        action="store_true",
        help="run the contenders of a scenario at the same time (correctness runs only: "
        "they compete for the CPU, so timings are not comparable)",
    )
    p.add_argument("--chaos-min-seconds", type=float, default=10.0)
    p.add_argument(
        "--black-holes",
        type=int,
        default=100,
        help="adversarial scenario: providers whose endpoint accepts and never answers",
    )
    p.add_argument(
        "--tricklers",
        type=int,
        default=100,
        help="adversarial scenario: providers whose endpoint answers one byte a second",
    )
    p.add_argument(
        "--flokoa-arg",
        action="append",
        default=[],
        help="extra flag for flokoa-controller run (repeatable), e.g. "
        "--flokoa-arg=--provider-revalidate-interval=30s",
    )
    return p.parse_args(argv)


def failures(results: dict[str, Any]) -> list[str]:
    """``scenario/contender`` of every result whose ``ok`` is false."""
    out = []
    for scenario, by_contender in results["scenarios"].items():
        for contender, result in by_contender.items():
            if isinstance(result, dict) and result.get("ok") is False:
                out.append(f"{scenario}/{contender}")
            if isinstance(result, dict) and "error" in result:
                out.append(f"{scenario}/{contender}: {result['error']}")
    return out


async def run(args: argparse.Namespace) -> int:
    """Run everything; the exit code."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = args.out / stamp
    workdir.mkdir(parents=True, exist_ok=True)
    lease = [float(x) for x in args.lease.split(",")]
    params = Params(
        n=args.n,
        kopf_n=args.kopf_n,
        rotations=args.rotations,
        rotation_rate=args.rotation_rate,
        idle_seconds=args.idle_seconds,
        concurrency=args.concurrency,
        timeout=args.timeout,
        leader=LeaderElection(lease[0], lease[1], lease[2]),
        profile=args.profile,
        chaos_min_seconds=args.chaos_min_seconds,
        black_holes=args.black_holes,
        tricklers=args.tricklers,
        flokoa_args=tuple(args.flokoa_arg),
    )
    contenders = [c for c in args.contenders.split(",") if c]
    scenarios = [s for s in args.scenarios.split(",") if s]
    results: dict[str, Any] = {
        "meta": {
            "timestamp": stamp,
            "machine": report.machine(),
            "params": {k: v for k, v in vars(params).items() if k not in ("leader",)}
            | {"lease": lease, "contenders": contenders, "scenarios": scenarios},
        },
        "scenarios": {},
    }
    json_path = args.out / f"{stamp}.json"
    md_path = args.out / f"{stamp}.md"

    def save() -> None:
        json_path.write_text(json.dumps(results, indent=1))
        md_path.write_text(report.markdown(results))

    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # stop every child process on the way out
        loop.add_signal_handler(sig, main_task.cancel)
    fake = await spawn(
        "fake-openai", [sys.executable, str(BENCH_DIR / "fake_openai.py")], workdir, wait_ready=True
    )
    runner = Runner(params, workdir, fake.info["url"], fake.info["base_url"])
    scen = results["scenarios"]

    async def one(key: str, contender: str, coro: Any) -> Any:
        began = time.monotonic()
        print(f"[bench] {key} / {contender} ...", flush=True)
        try:
            value = await coro
        except Exception as exc:
            value = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        print(
            f"[bench] {key} / {contender}: ok={value.get('ok') if isinstance(value, dict) else '?'}"
            f" ({time.monotonic() - began:.0f} s)",
            flush=True,
        )
        return value

    async def scenario_for(scenario: str, contender: str) -> None:
        if scenario == "cold_start":
            r = await one(
                scenario,
                contender,
                runner.cold_start(contender, params.secret_bytes, "cold_start"),
            )
            scen.setdefault("cold_start", {})[contender] = r
            scen.setdefault("memory_1k", {})[contender] = r
            taken.setdefault(("cold_start", contender), []).append({"cold_start": r})
        elif scenario == "memory_64k":
            scen.setdefault("memory_64k", {})[contender] = await one(
                scenario,
                contender,
                runner.cold_start(contender, params.large_secret_bytes, "memory_64k"),
            )
        elif scenario == "burst":
            r = await one(scenario, contender, runner.burst_rotation_idle(contender))
            if "error" in r:
                scen.setdefault("create_burst", {})[contender] = r
                taken.setdefault(("burst", contender), []).append({"create_burst": r})
            else:
                for key, value in r.items():
                    scen.setdefault(key, {})[contender] = value
                taken.setdefault(("burst", contender), []).append(r)
        elif scenario == "chaos":
            scen.setdefault("chaos", {})[contender] = await one(
                scenario, contender, runner.chaos(contender)
            )
        elif scenario == "adversarial":
            if contender != "flokoa":
                return
            scen.setdefault("adversarial", {})["flokoa"] = await one(
                scenario, contender, runner.adversarial()
            )
        elif scenario in ("failover", "failover_pause"):
            if contender != "flokoa":
                return
            scen.setdefault(scenario, {})["flokoa"] = await one(
                scenario, contender, runner.failover(pause=scenario == "failover_pause")
            )
        else:
            raise SystemExit(f"unknown scenario {scenario!r}")

    taken: dict[tuple[str, str], list[dict[str, Any]]] = {}
    """Per (scenario, contender), each round's results."""

    def keep_median(scenario: str) -> None:
        main = {"cold_start": "cold_start", "burst": "create_burst"}[scenario]
        for contender in contenders:
            runs = taken.get((scenario, contender), [])
            if not runs:
                continue
            speed = [float(_rate(r.get(main))) for r in runs]
            failed = sum(1 for r in runs if not _succeeded(r.get(main)))
            # the lower median: an even count never reports the faster middle round
            chosen = runs[sorted(range(len(runs)), key=speed.__getitem__)[(len(runs) - 1) // 2]]
            for key, value in chosen.items():
                scen.setdefault(key, {})[contender] = value
            if scenario == "cold_start":
                scen.setdefault("memory_1k", {})[contender] = chosen["cold_start"]
            kept = {**scen[main][contender], "rounds_objects_per_s": speed}
            if failed:  # a failed round fails the scenario, whichever round is reported
                kept |= {"ok": False, "failed_rounds": failed}
            scen.setdefault(main, {})[contender] = kept

    try:
        for scenario in scenarios:
            rounds = max(1, args.rounds) if scenario in ("cold_start", "burst") else 1
            for _ in range(rounds):
                if args.parallel:
                    await asyncio.gather(*(scenario_for(scenario, c) for c in contenders))
                else:
                    for contender in contenders:
                        await scenario_for(scenario, contender)
            if rounds > 1:
                keep_median(scenario)
            save()
    finally:
        await fake.stop()
        save()
    if args.plot is not None:
        report.plot(results, args.plot)
    print(report.markdown(results))
    print(f"[bench] results: {json_path}")
    bad = failures(results)
    if bad:
        print("[bench] FAILED: " + ", ".join(bad), flush=True)
    return 1 if (args.check and bad) else 0


def _succeeded(result: Any) -> bool:
    """Whether a round's result is a success (``ok`` not False, no error)."""
    return isinstance(result, dict) and result.get("ok") is not False and "error" not in result


def _rate(result: Any) -> float:
    """A round's objects/s (0 for a failed round)."""
    if isinstance(result, dict) and isinstance(result.get("objects_per_s"), int | float):
        return float(result["objects_per_s"])
    return 0.0


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse(argv)
    if args.from_json is not None:
        results = json.loads(args.from_json.read_text())
        if args.plot is not None:
            report.plot(results, args.plot)
        print(report.markdown(results))
        return 1 if (args.check and failures(results)) else 0
    return eventloop.run(run(args))
