"""The runtime's metric families: names, labels and buckets as scraped; promtool lint."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

import flokoa_controller.runtime.events  # noqa: F401  (registers flokoa_controller_events_dropped)
from flokoa_controller.runtime import metrics
from flokoa_controller.runtime.controller import Controller, Request, Result
from flokoa_controller.runtime.leaderelection import LeaderElector
from flokoa_controller.runtime.workqueue import WorkQueue

pytestmark = pytest.mark.looptime

RUNTIME_FAMILIES = {
    # family name as parsed (counters lose _total) -> (type, label names)
    "controller_runtime_reconcile": ("counter", {"controller", "result"}),
    "controller_runtime_reconcile_errors": ("counter", {"controller"}),
    "controller_runtime_terminal_reconcile_errors": ("counter", {"controller"}),
    "controller_runtime_reconcile_panics": ("counter", {"controller"}),
    "controller_runtime_reconcile_time_seconds": ("histogram", {"controller"}),
    "controller_runtime_active_workers": ("gauge", {"controller"}),
    "controller_runtime_max_concurrent_reconciles": ("gauge", {"controller"}),
    "workqueue_depth": ("gauge", {"name", "controller"}),
    "workqueue_adds": ("counter", {"name", "controller"}),
    "workqueue_retries": ("counter", {"name", "controller"}),
    "workqueue_queue_duration_seconds": ("histogram", {"name", "controller"}),
    "workqueue_work_duration_seconds": ("histogram", {"name", "controller"}),
    "workqueue_unfinished_work_seconds": ("gauge", {"name", "controller"}),
    "workqueue_longest_running_processor_seconds": ("gauge", {"name", "controller"}),
    "leader_election_master_status": ("gauge", {"name"}),
    "flokoa_controller_events_dropped": ("counter", {"reason"}),
}

RECONCILE_BUCKETS = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8,
    0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30,
    40, 50, 60,
]  # fmt: skip
WORKQUEUE_BUCKETS = [1e-8 * 10**i for i in range(12)]


class Once:
    async def reconcile(self, request: Request) -> Result:
        await asyncio.sleep(0.2)
        return Result()


async def _exercise() -> str:
    name = f"metrics-{uuid.uuid4().hex[:8]}"
    ctl = Controller(name, Once(), max_concurrent_reconciles=2)
    ctl.enqueue(Request("ns", "a"))
    task = asyncio.create_task(ctl.run())
    async with asyncio.timeout(10):
        while not metrics.RECONCILE_TOTAL.labels(name, "success")._value.get():  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    LeaderElector(cast(Any, None), namespace="ns", name=name)
    return name


def _families() -> dict[str, Metric]:
    text = generate_latest(REGISTRY).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


async def test_names_types_labels_and_buckets() -> None:
    name = await _exercise()
    families = _families()
    for family, (kind, labels) in RUNTIME_FAMILIES.items():
        assert family in families, family
        metric = families[family]
        assert metric.type == kind, family
        assert metric.documentation, family
        assert metric.samples, family
        for sample in metric.samples:
            assert set(sample.labels) - {"le"} == labels, (family, sample)

    def buckets(family: str, **labels: str) -> list[float]:
        return [
            float(s.labels["le"])
            for s in families[family].samples
            if s.name.endswith("_bucket") and all(s.labels[k] == v for k, v in labels.items())
        ]

    assert buckets("controller_runtime_reconcile_time_seconds", controller=name) == [
        *map(float, RECONCILE_BUCKETS),
        float("inf"),
    ]
    for family in ("workqueue_queue_duration_seconds", "workqueue_work_duration_seconds"):
        got = buckets(family, name=name, controller=name)
        assert got[:-1] == pytest.approx(WORKQUEUE_BUCKETS, rel=1e-9)
        assert got[-1] == float("inf")

    results = {
        s.labels["result"]: s.value
        for s in families["controller_runtime_reconcile"].samples
        if s.labels["controller"] == name and s.name.endswith("_total")
    }
    assert results == {"success": 1.0, "error": 0.0, "requeue": 0.0, "requeue_after": 0.0}
    status = [
        s.value
        for s in families["leader_election_master_status"].samples
        if s.labels["name"] == name
    ]
    assert status == [0.0]
    dropped = families["flokoa_controller_events_dropped"]
    assert dropped.type == "counter"
    reasons = {s.labels["reason"] for s in dropped.samples if s.name.endswith("_total")}
    assert reasons == {"queue_full", "rate_limited", "write_failed"}  # exported from the start


async def test_promtool_check_metrics() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("FLOKOA_REQUIRE_TOOLS") == "1":
            pytest.fail("promtool is required (FLOKOA_REQUIRE_TOOLS=1) but not on PATH")
        pytest.skip("promtool not on PATH")
    await _exercise()
    WorkQueue(f"lint-{uuid.uuid4().hex[:8]}")
    text = generate_latest(REGISTRY).decode()
    # Lint the runtime's own families (other packages lint theirs).
    ours = tuple(RUNTIME_FAMILIES)
    lines = [
        line
        for line in text.splitlines()
        if (line.split(" ", 3)[2] if line.startswith("#") else line).startswith(ours)
    ]
    assert lines
    proc = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate(("\n".join(lines) + "\n").encode())
    assert proc.returncode == 0, out.decode()
    assert out.decode().strip() == ""  # no lint problem reported
