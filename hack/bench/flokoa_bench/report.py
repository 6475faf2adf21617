"""The results file → a Markdown table (and a PNG of the latency distributions)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flokoa_bench.contenders import CONTENDERS, REPO


def machine() -> dict[str, Any]:
    """A description of this machine and of the software measured."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    versions: dict[str, str] = {}
    for module in ("aiohttp", "kopf", "orjson", "uvloop"):
        try:
            from importlib.metadata import version

            versions[module] = version(module)
        except Exception:
            versions[module] = "?"
    commit = ""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if dirty:
            commit += "+dirty"
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "versions": versions,
        "commit": commit,
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def _get(d: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _ratio(a: Any, b: Any) -> str:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or isinstance(a, bool):
        return "—"
    if b == 0:
        return "—" if a != 0 else "="
    return f"{a / b:.2f}x"


def _lists(r: dict[str, Any]) -> str:
    return f"{r['lists']} (+{r.get('streaming_lists', 0)})"


def _lists_watches(r: dict[str, Any]) -> str:
    return f"{r['lists']} (+{r.get('streaming_lists', 0)}) / {r['watches']}"


Row = tuple[str, str, str, Callable[[Any], Any] | None]
"""(scenario key, metric label, path in the contender's result, transform)."""

ROWS: list[Row] = [
    ("cold_start", "time to all Ready (s)", "seconds", None),
    ("cold_start", "  of which until the first Ready (s)", "first_ready_s", None),
    ("cold_start", "objects/s", "objects_per_s", None),
    ("cold_start", "API requests", "requests.total", None),
    ("cold_start", "  lists / watches", "requests", _lists_watches),
    (
        "cold_start",
        "  writes (status)",
        "requests",
        lambda r: f"{r['writes']} ({r['status_writes']})",
    ),
    ("cold_start", "CPU (s)", "cpu_s", None),
    ("cold_start", "peak RSS (MiB)", "peak_rss_mib", None),
    ("cold_start", "correct", "ok", None),
    ("create_burst", "throughput (objects/s)", "objects_per_s", None),
    ("create_burst", "create→Ready p50 (ms)", "latency.p50_ms", None),
    ("create_burst", "create→Ready p99 (ms)", "latency.p99_ms", None),
    ("create_burst", "API requests", "requests.total", None),
    (
        "create_burst",
        "  writes (status)",
        "requests",
        lambda r: f"{r['writes']} ({r['status_writes']})",
    ),
    ("create_burst", "CPU per object (ms)", "cpu_ms_per_object", None),
    ("create_burst", "correct", "ok", None),
    ("rotation", "update→secretHash p50 (ms)", "latency.p50_ms", None),
    ("rotation", "update→secretHash p99 (ms)", "latency.p99_ms", None),
    ("rotation", "API requests", "requests.total", None),
    ("rotation", "correct", "ok", None),
    ("idle", "status writes", "requests.status_writes", None),
    ("idle", "all writes", "requests.writes", None),
    ("idle", "lists (+ streaming lists)", "requests", _lists),
    ("idle", "watch requests", "requests.watches", None),
    ("idle", "CPU (s)", "cpu_s", None),
    ("memory_1k", "RSS, 1 KiB Secrets (MiB)", "rss_mib", None),
    ("memory_64k", "RSS, 64 KiB Secrets (MiB)", "rss_mib", None),
    ("memory_64k", "peak RSS, 64 KiB Secrets (MiB)", "peak_rss_mib", None),
    ("chaos", "time to converge (s)", "seconds_to_converge", None),
    ("chaos", "converged", "verify", lambda v: f"{v['checked'] - v['wrong']}/{v['checked']}"),
    ("chaos", "lists (+ streaming lists)", "requests", _lists),
    ("chaos", "correct", "ok", None),
    ("failover", "takeover (s)", "takeover_s", None),
    ("failover", "bound: lease + retry (s)", "takeover_bound_s", None),
    ("failover", "all Ready after kill (s)", "all_ready_after_kill_s", None),
    (
        "failover",
        "old-leader status writes applied after takeover",
        "old_leader_status_writes_after_takeover",
        None,
    ),
    (
        "failover",
        "standby status writes before takeover",
        "standby_status_writes_before_takeover",
        None,
    ),
    ("failover", "correct", "ok", None),
    ("failover_pause", "takeover (s)", "takeover_s", None),
    (
        "failover_pause",
        "old-leader status writes applied after takeover",
        "old_leader_status_writes_after_takeover",
        None,
    ),
    (
        "failover_pause",
        "  attempted, rejected by the API server (409)",
        "old_leader_status_writes_rejected_after_takeover",
        None,
    ),
    ("failover_pause", "correct", "ok", None),
]

SIZE_DEPENDENT = frozenset(
    {"seconds", "requests.total", "requests", "cpu_s", "peak_rss_mib", "rss_mib"}
    | {"seconds_to_converge", "verify", "latency.p50_ms", "latency.p99_ms"}
)
"""Paths of totals that grow with N: not compared across different N."""
PER_RUN_SCENARIOS = frozenset({"cold_start", "create_burst", "memory_1k", "memory_64k", "chaos"})
"""Scenarios whose totals depend on N (rotation and idle do not)."""

TITLES = {
    "cold_start": "1. Cold start",
    "create_burst": "2. Create burst",
    "rotation": "3. Rotation",
    "idle": "4. Idle",
    "memory_1k": "5. Memory",
    "memory_64k": "5. Memory",
    "chaos": "6. Chaos",
    "failover": "7. Failover (SIGKILL)",
    "failover_pause": "7b. Failover (SIGSTOP/SIGCONT)",
}


def markdown(results: dict[str, Any]) -> str:
    """The results table (one row per metric) with the machine and parameters."""
    scen = results.get("scenarios", {})
    lines = []
    meta = results.get("meta", {})
    m = meta.get("machine", {})
    params = meta.get("params", {})
    versions = m.get("versions", {})
    lines.append(
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB, "
        f"Linux {m.get('kernel')}, Python {m.get('python')}, "
        f"kopf {versions.get('kopf')}, aiohttp {versions.get('aiohttp')}, "
        f"uvloop {versions.get('uvloop')} (every process's event loop); "
        f"commit {m.get('commit')}; run {meta.get('timestamp')}."
    )
    ns = {c: _get(scen.get("cold_start", {}).get(c), "n") for c in CONTENDERS}
    lines.append(
        f"Parameters: N = {params.get('n')} (kopf: {params.get('kopf_n') or params.get('n')}), "
        f"rotation {params.get('rotations')} updates at {params.get('rotation_rate')}/s, "
        f"idle {params.get('idle_seconds')} s with watches ending every "
        f"{params.get('idle_watch_max')} s, concurrency {params.get('concurrency')}."
    )
    if ns.get("kopf") and ns.get("flokoa") and ns["kopf"] != ns["flokoa"]:
        lines.append(
            f"**kopf ran with N = {ns['kopf']}** (capped: see below); its per-object figures "
            "(objects/s, latency, CPU per object) compare, its totals do not."
        )
    lines.append("")
    lines.append("| scenario | metric | flokoa | limit | kopf | flokoa/limit | flokoa/kopf |")
    lines.append("|---|---|---:|---:|---:|---:|---:|")
    last = ""
    for key, label, path, fn in ROWS:
        if key not in scen:
            continue
        values = []
        for c in CONTENDERS:
            v = _get(scen[key].get(c), path)
            if v is not None and fn is not None:
                try:
                    v = fn(v)
                except (KeyError, TypeError):
                    v = None
            values.append(v)
        if all(v is None for v in values):
            continue
        title = TITLES.get(key, key)
        shown = title if title != last else ""
        last = title
        n_of = [_get(scen[key].get(c), "n") for c in CONTENDERS]
        if label == "correct":
            ratios = ("—", "—")
        else:
            ratios = (_ratio(values[0], values[1]), _ratio(values[0], values[2]))
            if (
                key in PER_RUN_SCENARIOS
                and path in SIZE_DEPENDENT
                and n_of[2] is not None
                and n_of[2] != n_of[0]
            ):
                ratios = (ratios[0], f"(N={n_of[2]:,})")
        lines.append(
            f"| {shown} | {label} | {_fmt(values[0])} | {_fmt(values[1])} | {_fmt(values[2])} "
            f"| {ratios[0]} | {ratios[1]} |"
        )
    m1 = _get(scen.get("memory_1k", {}).get("flokoa"), "rss_mib")
    m64 = _get(scen.get("memory_64k", {}).get("flokoa"), "rss_mib")
    if m1 and m64:
        lines.append("")
        lines.append(f"flokoa RSS 64 KiB / 1 KiB Secrets: {m64 / m1:.2f}x.")
    lines.extend(_rounds(scen))
    lines.extend(adversarial_table(scen.get("adversarial", {}).get("flokoa")))
    return "\n".join(lines) + "\n"


ADVERSARIAL_ROWS: list[tuple[str, str]] = [
    ("rotation update→secretHash p50 (ms)", "rotation.latency.p50_ms"),
    ("rotation update→secretHash p99 (ms)", "rotation.latency.p99_ms"),
    ("rotation max (ms)", "rotation.latency.max_ms"),
    ("objects correct after the rotation", "rotation.verify"),
    ("hostile connections held (start / end)", "held"),
    ("operator threads (max during rotation)", "threads_max"),
    ("operator RSS, max during rotation (MiB)", "rss_max_mib"),
    ("correct", "ok"),
]
"""Rows of the adversarial table (paths in each run's result)."""


def adversarial_table(result: Any) -> list[str]:
    """The adversarial scenario (issue 12): quiet vs hostile run, one row per metric."""
    if not isinstance(result, dict) or "quiet" not in result:
        return []
    quiet, hostile = result["quiet"], result["hostile"]
    lines = [
        "",
        f"8. Adversarial: N = {result.get('n')} normal providers; hostile run adds "
        f"{result.get('black_holes')} black holes and {result.get('tricklers')} tricklers "
        "(one port each, timeoutSeconds 600) in two other namespaces.",
        "",
        "| metric | quiet | hostile | hostile/quiet |",
        "|---|---:|---:|---:|",
    ]
    for label, path in ADVERSARIAL_ROWS:
        values = []
        for run in (quiet, hostile):
            if path == "held":
                v: Any = (
                    f"{run.get('hostile_connections_held_at_start')} / "
                    f"{run.get('hostile_connections_held_at_end')}"
                )
            elif path == "rotation.verify":
                verify = _get(run, path) or {}
                v = f"{verify.get('checked', 0) - verify.get('wrong', 0)}/{verify.get('checked')}"
            else:
                v = _get(run, path)
            values.append(v)
        ratio = "—" if path in ("ok", "held", "rotation.verify") else _ratio(values[1], values[0])
        lines.append(f"| {label} | {_fmt(values[0])} | {_fmt(values[1])} | {ratio} |")
    return lines


def _rounds(scen: dict[str, Any]) -> list[str]:
    """Every round's objects/s when scenarios ran several rounds (``--rounds``)."""
    out: list[str] = []
    for key, title in (("cold_start", "Cold start"), ("create_burst", "Create burst")):
        per = {c: (scen.get(key, {}).get(c) or {}).get("rounds_objects_per_s") for c in CONTENDERS}
        got = {c: v for c, v in per.items() if v}
        if not got:
            continue
        shown = "; ".join(f"{c} " + ", ".join(f"{x:.0f}" for x in v) for c, v in got.items())
        line = f"{title}, objects/s per round (contenders taking turns; median reported): {shown}"
        fl, li = got.get("flokoa"), got.get("limit")
        if fl and li and len(fl) == len(li):
            ratios = ", ".join(f"{a / b:.2f}x" for a, b in zip(fl, li, strict=True) if b)
            line += f"; flokoa/limit per round: {ratios}"
        out.extend(["", line + "."])
    return out


def plot(results: dict[str, Any], path: Path) -> Path | None:
    """A PNG with the create→Ready and rotation latency distributions (CDFs)."""
    try:
        import matplotlib
    except ImportError:
        print("[bench] matplotlib is not installed (pip install -e '.[dev]'): no plot")
        return None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scen = results.get("scenarios", {})
    panels = [("create_burst", "create → Ready"), ("rotation", "Secret update → secretHash")]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    drawn = False
    for ax, (key, title) in zip(axes, panels, strict=True):
        for c, style in zip(CONTENDERS, ("-", "--", ":"), strict=True):
            lat = _get(scen.get(key, {}).get(c), "latencies_s")
            if not lat:
                continue
            data = sorted(x * 1000 for x in lat)
            ys = [(i + 1) / len(data) for i in range(len(data))]
            n = _get(scen.get(key, {}).get(c), "n") or _get(scen.get(key, {}).get(c), "updates")
            ax.plot(data, ys, style, label=f"{c} (n={n})")
            drawn = True
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("fraction of objects")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    if not drawn:
        plt.close(fig)
        return None
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
