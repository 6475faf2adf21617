"""A real controller (``flokoa-controller run`` against envtest, with activity) and a real
Prometheus scraping it.

* every metric name the alerting rules and the dashboard use is in the controller's output;
* every metric family the operator exports is documented in docs/metrics.md;
* ``promtool check metrics`` accepts the output;
* Prometheus scrapes the controller, evaluates every rule without error, answers the
  reconcile latency quantile and provider readiness, raises the not-ready alert for exactly
  the providers the API server shows as not ready, and runs every dashboard query.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from flokoa_envtest.testing import poll_until
from prometheus_client.parser import text_string_to_metric_families

from flokoa_controller.controllers.resources import MODELPROVIDERS

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

OUR_PREFIXES = ("flokoa_", "controller_runtime_", "workqueue_", "leader_election_", "rest_client_")
"""Metric families of the operator (the others are prometheus-client's process/python ones)."""


def _samples(text: str) -> tuple[set[str], set[str], list[Any]]:
    families = list(text_string_to_metric_families(text))
    sample_names = {s.name for f in families for s in f.samples}
    family_names = {f.name for f in families}
    return sample_names, family_names, families


def _used_metric_names(ops: SimpleNamespace) -> dict[str, set[str]]:
    """Metric name → where it is used (alert names, panel titles)."""
    used: dict[str, set[str]] = {}
    for rule in ops.alert_rules():
        for name in ops.metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"alert {rule['alert']}")
    for title, expr in ops.dashboard_expressions():
        for name in ops.metric_names(ops.expand_variables(expr)):
            used.setdefault(name, set()).add(f"panel {title!r}")
    return used


async def test_every_metric_used_by_rules_and_dashboard_is_exported(
    live_controller: Any, ops: SimpleNamespace
) -> None:
    text = await live_controller.scrape()
    sample_names, _, families = _samples(text)
    used = _used_metric_names(ops)
    # The check is only meaningful if the usage side is substantial.
    assert len(used) >= 20, sorted(used)
    missing = {
        name: sorted(where)
        for name, where in used.items()
        if name not in sample_names and name not in ops.PROMETHEUS_SYNTHETIC
    }
    assert not missing, f"used but not exported: {missing}"

    # The controller really worked: probes of every provider type, reconciles of both kinds.
    by_name = {s.name: [] for f in families for s in f.samples}
    for family in families:
        for sample in family.samples:
            by_name[sample.name].append(sample)
    probed = {s.labels["provider"] for s in by_name["flokoa_provider_probe_total"] if s.value > 0}
    assert probed == {"openai", "anthropic", "google", "bedrock"}
    reconciled = {
        s.labels["controller"]
        for s in by_name["controller_runtime_reconcile_total"]
        if s.labels["result"] == "success" and s.value > 0
    }
    assert len(reconciled) >= 2, reconciled


async def test_exported_families_are_documented(live_controller: Any, ops: SimpleNamespace) -> None:
    _, family_names, families = _samples(await live_controller.scrape())
    reference = (ops.DOCS / "metrics.md").read_text(encoding="utf-8")
    # prometheus-client adds a `<name>_created` timestamp to counters and histograms, which
    # the text parser reports as separate gauges: they are documented as a group.
    ours = {
        f.name
        for f in families
        if f.name.startswith(OUR_PREFIXES) and not f.name.endswith("_created")
    }
    assert len(ours) >= 15, sorted(family_names)
    # Counters are exposed as <family>_total; the reference names them as users query them.
    undocumented = sorted(
        f.name
        for f in families
        if f.name in ours
        and f"`{f.name}{'_total' if f.type == 'counter' else ''}`" not in reference
    )
    assert not undocumented, f"missing from docs/metrics.md: {undocumented}"


async def test_promtool_accepts_the_exposition(live_controller: Any, promtool: str) -> None:
    text = await live_controller.scrape()
    process = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate(text.encode())
    assert process.returncode == 0, out.decode()


def _finite(result: list[dict[str, Any]]) -> dict[str, float]:
    values = {}
    for sample in result:
        value = float(sample["value"][1])
        if math.isfinite(value):
            values[sample["metric"].get("controller", "")] = value
    return values


async def test_real_prometheus_scrapes_and_evaluates(
    live_controller: Any, prometheus_bin: str, ops: SimpleNamespace, tmp_path: Path
) -> None:
    client = live_controller.client
    host_port = live_controller.metrics_url.split("/")[2]
    job = ops.JOB
    latency = (
        "histogram_quantile(0.99, sum by (controller, le) "
        f'(rate(controller_runtime_reconcile_time_seconds_bucket{{job="{job}"}}[1m])))'
    )
    async with ops.start_prometheus(
        prometheus_bin, tmp_path, [host_port], [ops.RULES_FILE]
    ) as prom:
        # Keep both controllers busy (a label change is an update event: one reconcile of the
        # provider, and of its Models), so that the rate-based quantile has data.
        providers = (await client.list(MODELPROVIDERS, ops.DEMO_NAMESPACE))["items"]
        pokes = 0

        async def poke_and_query() -> dict[str, float] | None:
            nonlocal pokes
            pokes += 1
            for obj in providers[:3]:
                await client.patch(
                    MODELPROVIDERS,
                    obj["metadata"]["name"],
                    {"metadata": {"labels": {"ops-test/poke": str(pokes)}}},
                    ops.DEMO_NAMESPACE,
                )
            values = _finite(await prom.query(latency))
            return values if len(values) >= 2 else None

        quantiles = await poll_until(
            poke_and_query, within=45, what="a finite reconcile latency p99", interval=0.5
        )
        assert all(0 <= v <= 60 for v in quantiles.values()), quantiles

        # Provider readiness as Prometheus sees it matches the API server.
        listed = (await client.list(MODELPROVIDERS, ops.DEMO_NAMESPACE))["items"]
        expected = Counter(
            (o["status"].get("provider", "unknown"), str(bool(o["status"].get("ready"))).lower())
            for o in listed
        )
        result = await prom.query(
            f'sum by (provider, ready) (flokoa_modelproviders{{job="{job}"}})'
        )
        seen = {
            (s["metric"]["provider"], s["metric"]["ready"]): int(float(s["value"][1]))
            for s in result
        }
        assert {k: v for k, v in seen.items() if v} == dict(expected)

        # Every rule has been evaluated, and without error.
        async def evaluated() -> list[dict[str, Any]] | None:
            rules = list(ops.iter_rules((await prom.api("rules"))["groups"]))
            return rules if all(r["health"] != "unknown" for r in rules) else None

        rules = await poll_until(evaluated, within=20, what="every rule to be evaluated")
        assert {r["name"] for r in rules} == {r["alert"] for r in ops.alert_rules()}
        unhealthy = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
        assert not unhealthy, unhealthy

        # The not-ready alert is pending for exactly the provider types with a not-ready object.
        not_ready = {p: n for (p, ready), n in expected.items() if ready == "false"}
        assert not_ready, "the demo objects include providers that are not ready"

        async def pending() -> dict[str, float] | None:
            alerts = (await prom.api("alerts"))["alerts"]
            found = {
                a["labels"]["provider"]: float(a["value"])
                for a in alerts
                if a["labels"]["alertname"] == "FlokoaModelProvidersNotReady"
            }
            return found if set(found) == set(not_ready) else None

        found = await poll_until(pending, within=20, what="FlokoaModelProvidersNotReady pending")
        assert found == {p: float(n) for p, n in not_ready.items()}
        states = {
            a["labels"]["alertname"]: a["state"] for a in (await prom.api("alerts"))["alerts"]
        }
        assert "FlokoaControllerDown" not in states or states["FlokoaControllerDown"] != "firing"
        assert "FlokoaControllerNoLeader" not in states

        # Every dashboard query is valid PromQL and finds series.
        empty = []
        for title, expr in ops.dashboard_expressions():
            if not await prom.query(ops.expand_variables(expr)):
                empty.append((title, expr))
        assert not empty, f"dashboard queries without data: {empty}"
