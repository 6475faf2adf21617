"""The probes-in-flight table: caps, round-robin fairness, keyed results, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from flokoa_controller.controllers.probes_inflight import InFlightProbes, InlineProbes


class Jobs:
    """Jobs that block until released; records start order and concurrency."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.running = 0
        self.peak = 0
        self.cancelled: list[str] = []
        self.notified: list[str] = []

    def job(self, key: str, value: object = None) -> Callable[[], Awaitable[object]]:
        gate = self.gates.setdefault(key, asyncio.Event())

        async def run() -> object:
            self.started.append(key)
            self.running += 1
            self.peak = max(self.peak, self.running)
            try:
                await gate.wait()
            except asyncio.CancelledError:
                self.cancelled.append(key)
                raise
            finally:
                self.running -= 1
            return value if value is not None else f"result of {key}"

        return run

    def notify(self, key: str) -> Callable[[], None]:
        return lambda: self.notified.append(key)

    def release(self, key: str) -> None:
        self.gates[key].set()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def start(probes: InFlightProbes, jobs: Jobs, key: str, namespace: str) -> object:
    return await probes.run(key, namespace, ("uid", 1), jobs.job(key), jobs.notify(key))


async def test_a_result_is_handed_out_once_to_equal_inputs_after_its_notification() -> None:
    probes, jobs = InFlightProbes(), Jobs()
    assert await start(probes, jobs, "a", "ns") is None
    await settle()
    assert jobs.started == ["a"]
    assert await start(probes, jobs, "a", "ns") is None  # in flight: not started twice
    await settle()
    assert jobs.started == ["a"]
    jobs.release("a")
    await settle()
    assert jobs.notified == ["a"]
    assert await start(probes, jobs, "a", "ns") == "result of a"
    assert len(probes) == 0  # consumed
    assert await start(probes, jobs, "a", "ns") is None  # the next call starts anew
    await probes.cancel_all()


async def test_a_stale_result_is_never_handed_to_changed_inputs() -> None:
    probes, jobs = InFlightProbes(), Jobs()
    await probes.run("a", "ns", ("uid", 1, "hash-1"), jobs.job("a1"), jobs.notify("a1"))
    await settle()
    jobs.release("a1")
    await settle()
    # the Secret rotated meanwhile: the finished result is for other inputs
    got = await probes.run("a", "ns", ("uid", 1, "hash-2"), jobs.job("a2"), jobs.notify("a2"))
    assert got is None
    await settle()
    assert jobs.started == ["a1", "a2"]
    # and a running one is cancelled when the inputs change
    got = await probes.run("a", "ns", ("uid", 2, "hash-2"), jobs.job("a3"), jobs.notify("a3"))
    await settle()
    assert got is None
    assert jobs.cancelled == ["a2"]
    assert jobs.notified == ["a1"]  # a cancelled probe notifies nobody
    jobs.release("a3")
    await settle()
    assert await probes.run("a", "ns", ("uid", 2, "hash-2"), jobs.job("x"), jobs.notify("x")) == (
        "result of a3"
    )


async def test_forget_cancels_a_running_probe_and_frees_its_slot() -> None:
    probes, jobs = InFlightProbes(max_in_flight=1), Jobs()
    await start(probes, jobs, "a", "ns")
    await start(probes, jobs, "b", "ns")
    await settle()
    assert jobs.started == ["a"]
    assert probes.queued() == 1
    probes.forget("a")  # deleted
    await settle()
    assert jobs.cancelled == ["a"]
    assert jobs.started == ["a", "b"]
    probes.forget("b")
    probes.forget("never-started")
    await settle()
    assert (probes.in_flight(), probes.queued(), len(probes)) == (0, 0, 0)


async def test_a_waiting_probe_forgotten_is_never_started() -> None:
    probes, jobs = InFlightProbes(max_in_flight=1), Jobs()
    await start(probes, jobs, "a", "ns")
    await start(probes, jobs, "b", "ns")
    probes.forget("b")
    assert probes.queued() == 0
    jobs.release("a")
    await settle()
    assert jobs.started == ["a"]
    assert probes.in_flight() == 0


async def test_caps_hold_and_namespaces_are_served_round_robin() -> None:
    probes, jobs = InFlightProbes(max_in_flight=4, max_per_namespace=2), Jobs()
    for i in range(10):
        await start(probes, jobs, f"hostile/{i}", "hostile")
    for ns in ("a", "b", "c"):
        for i in range(2):
            await start(probes, jobs, f"{ns}/{i}", ns)
    await settle()
    # hostile queued first but holds only its own cap; the others get the rest in turn
    assert jobs.started == ["hostile/0", "hostile/1", "a/0", "a/1"]
    assert probes.in_flight_in("hostile") == 2
    assert probes.queued() == 8 + 2 + 2
    from prometheus_client import REGISTRY

    assert REGISTRY.get_sample_value("flokoa_probes_in_flight") == 4
    assert REGISTRY.get_sample_value("flokoa_probes_queued") == 12
    for key in ("a/0", "a/1"):
        jobs.release(key)
    await settle()
    # the freed slots go to b and c (round-robin), not to hostile's long queue
    assert jobs.started[4:] == ["b/0", "c/0"]
    for key in ("b/0", "c/0"):
        jobs.release(key)
    await settle()
    assert jobs.started[6:] == ["b/1", "c/1"]
    assert jobs.peak == 4
    assert probes.peak_in_flight == 4
    await probes.cancel_all()
    assert jobs.running == 0


async def test_a_failing_probe_raises_in_the_consuming_reconcile() -> None:
    probes = InFlightProbes()
    notified: list[str] = []

    async def boom() -> object:
        raise RuntimeError("secret read failed")

    await probes.run("a", "ns", 1, boom, lambda: notified.append("a"))
    await settle()
    assert notified == ["a"]
    with pytest.raises(RuntimeError):
        await probes.run("a", "ns", 1, boom, lambda: None)
    assert len(probes) == 0


async def test_cancel_all_stops_every_probe_and_starts_nothing_after() -> None:
    probes, jobs = InFlightProbes(max_in_flight=2, grace_period=1), Jobs()
    for i in range(4):
        await start(probes, jobs, f"k{i}", f"ns{i}")
    await settle()
    serving = asyncio.create_task(probes.serve())
    await settle()
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving
    assert sorted(jobs.cancelled) == ["k0", "k1"]
    assert (probes.in_flight(), probes.queued(), len(probes)) == (0, 0, 0)
    assert await start(probes, jobs, "late", "ns") is None
    await settle()
    assert "late" not in jobs.started
    assert jobs.notified == []


async def test_inline_probes_run_the_job_in_the_call() -> None:
    async def job() -> str:
        return "done"

    assert await InlineProbes().run("a", "ns", 1, job, lambda: None) == "done"
    InlineProbes().forget("a")


def test_caps_must_be_positive() -> None:
    with pytest.raises(ValueError):
        InFlightProbes(max_in_flight=0)
    with pytest.raises(ValueError):
        InFlightProbes(max_per_namespace=0)


async def test_the_probe_deadline_is_the_capped_timeout_for_the_whole_probe() -> None:
    """A tenant's timeoutSeconds of 600 is capped by --max-probe-timeout; the cap is one
    deadline for everything the probe does (here: a token exchange and a GET that hang)."""
    from flokoa_controller.controllers.probing import Prober
    from flokoa_controller.providers.http import ProbeHTTP
    from flokoa_controller.providers.result import ProbeResult
    from flokoa_controller.providers.target import ProbeTarget

    seen: list[float] = []
    steps: list[str] = []

    async def probe(target: ProbeTarget, http: ProbeHTTP) -> ProbeResult:
        seen.append(target.timeout)
        for step in ("token", "get"):
            steps.append(step)
            await asyncio.sleep(target.timeout * 0.75)  # each step within "its" timeout
        return ProbeResult(True, "ProbeSucceeded", "ok", "", 200, 0.0)

    http = ProbeHTTP()
    try:
        prober = Prober(None, http, max_timeout=0.2, probe_provider=probe)  # type: ignore[arg-type]
        target = ProbeTarget(kind="openai", base_url="http://10.1.2.3:8080/v1", timeout=600)
        result = await prober.probe_provider(target)
    finally:
        await http.close()
    assert seen == [0.2]
    assert steps == ["token", "get"]  # the second step was cut by the one deadline
    assert result.reason == "Timeout"
    assert result.message == "provider probe of 10.1.2.3:8080 did not complete within 0.2s"
