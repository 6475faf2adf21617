"""``flokoa-controller run`` as a process against envtest: JSON logs, probes, leader election,
SIGTERM → graceful exit 0 with the Lease released, lost Lease → exit 1, bad flags → exit 2."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from flokoa_envtest.fakes import FakeOpenAI
from flokoa_envtest.server import APIServer
from flokoa_envtest.testing import poll_until

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "config" / "crd"
LEASE = "flokoa-cli-test"


@pytest.fixture
async def api() -> AsyncIterator[APIServer]:
    crds = [p for p in sorted(CRDS.glob("*.yaml")) if p.name != "kustomization.yaml"]
    async with APIServer(bookmark_interval=0.5, crds=crds) as server:
        yield server


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOKOA_")}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    env.pop("KUBECONFIG", None)
    return env


class Process:
    """A ``flokoa-controller run`` child whose JSON log lines are collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            text = line.decode(errors="replace").rstrip("\n")
            self.raw.append(text)
            try:
                self.lines.append(json.loads(text))
            except json.JSONDecodeError:
                continue

    def find(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        return next((line for line in self.lines if predicate(line)), None)

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], within: float = 30.0
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while (found := self.find(predicate)) is None:
            if self.proc.returncode is not None or loop.time() > deadline:
                raise AssertionError("log line not seen:\n" + "\n".join(self.raw[-30:]))
            await asyncio.sleep(0.05)
        return found

    async def exit_code(self, within: float = 30.0) -> int:
        code = await asyncio.wait_for(self.proc.wait(), within)
        await self._reader
        return code

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


async def start(*args: str) -> Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "flokoa_controller",
        "run",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(),
        cwd=ROOT,
    )
    return Process(proc)


def run_args(api: APIServer, *extra: str) -> list[str]:
    return [
        "--kubeconfig",
        str(api.kubeconfig_path),
        "--log-format",
        "json",
        "--health-probe-bind-address",
        "127.0.0.1:0",
        "--metrics-bind-address",
        "127.0.0.1:0",
        "--leader-elect",
        "--leader-election-id",
        LEASE,
        "--leader-election-namespace",
        "default",
        "--lease-duration",
        "4s",
        "--renew-deadline",
        "3s",
        "--retry-period",
        "500ms",
        *extra,
    ]


def address_of(proc: Process, role: str) -> str:
    line = proc.find(lambda entry: entry.get("role") == role and "address" in entry)
    assert line is not None
    return f"http://{line['address']}"


def holder(api: APIServer) -> str:
    lease = api.get_object("coordination.k8s.io/v1", "Lease", LEASE, "default")
    return str(lease["spec"].get("holderIdentity") or "")


async def test_sigterm_shuts_down_gracefully_and_releases_the_lease(api: APIServer) -> None:
    proc = await start(*run_args(api))
    try:
        await proc.wait_for(lambda e: e.get("msg") == "Caches synced")
        await proc.wait_for(lambda e: e.get("msg") == "Successfully acquired lease")
        identity = holder(api)
        assert identity
        health = address_of(proc, "health")
        metrics = address_of(proc, "metrics")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{health}/readyz") as resp:
                assert resp.status == 200
            async with session.get(f"{metrics}/metrics") as resp:
                text = await resp.text()
        assert 'leader_election_master_status{name="' + LEASE + '"} 1.0' in text
        proc.proc.send_signal(signal.SIGTERM)
        assert await proc.exit_code() == 0
    finally:
        proc.kill()
    assert holder(api) == ""
    assert all(set(line) >= {"ts", "level", "logger", "msg"} for line in proc.lines)
    assert proc.find(lambda e: e.get("msg") == "Manager stopped") is not None


async def test_default_flags_work_on_a_server_that_refuses_the_streaming_list(
    api: APIServer,
) -> None:
    """kube-apiserver v1.32 with its default WatchList gate over etcd 3.4 answers every
    streaming list with an ERROR event (a 500 Status): the operator, with its default flags,
    falls back to list+watch once per informer, syncs and reconciles."""
    api.faults.refuse_streaming_list = True
    async with FakeOpenAI() as openai:
        api.create_object(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "key", "namespace": "default"},
                "stringData": {"api-key": openai.api_key},
            }
        )
        api.create_object(
            {
                "apiVersion": "agent.flokoa.ai/v1alpha1",
                "kind": "ModelProvider",
                "metadata": {"name": "p", "namespace": "default"},
                "spec": {
                    "apiKeySecretRef": {"name": "key"},
                    "openai": {"baseURL": openai.base_url, "timeoutSeconds": 5},
                },
            }
        )
        proc = await start(*run_args(api, "--allow-destinations", "127.0.0.0/8"))
        try:
            await proc.wait_for(lambda e: e.get("msg") == "Caches synced")

            def ready() -> bool:
                obj = api.get_object("agent.flokoa.ai/v1alpha1", "ModelProvider", "p", "default")
                conditions = (obj.get("status") or {}).get("conditions") or []
                return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

            await poll_until(ready, within=30, what="the provider Ready")
            metrics = f"{address_of(proc, 'metrics')}/metrics"
            async with aiohttp.ClientSession() as session, session.get(metrics) as resp:
                text = await resp.text()
            proc.proc.send_signal(signal.SIGTERM)
            assert await proc.exit_code() == 0
        finally:
            proc.kill()
    refused = [
        e for e in api.audit.filter(verb="watch") if e.query.get("sendInitialEvents") == "true"
    ]
    assert refused
    assert {e.code for e in refused} == {200}  # kube: 200, then an ERROR event (500 Status)
    # one refused streaming list per informer: never retried in a loop
    assert len(refused) == len({e.resource for e in refused})
    assert "flokoa_reflector_streaming_list_fallbacks_total{resource=" in text
    fallback_lines = [line for line in proc.lines if "streaming list failed" in line["msg"]]
    assert len(fallback_lines) == len(refused)


async def test_lost_lease_exits_non_zero(api: APIServer) -> None:
    proc = await start(*run_args(api))
    try:
        await proc.wait_for(lambda e: e.get("msg") == "Successfully acquired lease")
        api.patch_object(
            "coordination.k8s.io/v1",
            "Lease",
            LEASE,
            {"spec": {"holderIdentity": "someone-else", "leaseDurationSeconds": 60}},
            namespace="default",
        )
        assert await proc.exit_code() == 1
    finally:
        proc.kill()
    assert proc.find(lambda e: e.get("level") == "error" and "lost" in e.get("msg", "").lower())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--renew-deadline", "20s"], "--lease-duration must be greater than --renew-deadline"),
        (["--leader-election-namespace", ""], "--leader-election-namespace is required"),
    ],
)
async def test_invalid_configuration_exits_2(
    api: APIServer, extra: list[str], message: str
) -> None:
    proc = await start(*run_args(api, *extra))
    try:
        assert await proc.exit_code() == 2
    finally:
        proc.kill()
    assert any(message in line for line in proc.raw), proc.raw[-5:]


async def test_help_documents_flags_and_environment_variables() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "flokoa_controller",
        "run",
        "--help",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(),
        cwd=ROOT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    text = " ".join(out.decode().split())
    for flag in (
        "--kubeconfig",
        "--namespace",
        "--leader-elect",
        "--leader-election-id",
        "--leader-election-namespace",
        "--lease-duration",
        "--renew-deadline",
        "--retry-period",
        "--metrics-bind-address",
        "--health-probe-bind-address",
        "--max-concurrent-reconciles",
        "--log-format",
        "--log-level",
    ):
        assert flag in text
        assert "FLOKOA_" + flag[2:].upper().replace("-", "_") in text


class _Plugin:
    """A setup plugin whose ``setup_controllers`` fails, or adds a runnable that fails."""

    def __init__(self, *, setup_error: Exception | None, run_error: Exception | None) -> None:
        self.setup_error = setup_error
        self.run_error = run_error

    def setup_controllers(self, manager: Any, options: Any) -> None:
        if self.setup_error is not None:
            raise self.setup_error
        error = self.run_error

        async def failing() -> None:
            if error is not None:
                raise error

        manager.add_runnable(failing, needs_leader=False)


@pytest.mark.parametrize(
    ("setup_error", "run_error", "code"),
    [
        (ValueError("bad setting"), None, 2),  # configuration: usage error
        (RuntimeError("setup broke"), None, 1),
        (None, ValueError("a bug at run time"), 1),  # not a usage error
    ],
)
async def test_exit_codes_tell_configuration_from_runtime_failures(
    api: APIServer, setup_error: Exception | None, run_error: Exception | None, code: int
) -> None:
    from flokoa_controller.runtime.command import run_manager
    from flokoa_controller.runtime.options import ManagerOptions

    options = ManagerOptions(
        kubeconfig=str(api.kubeconfig_path),
        metrics_bind_address="0",
        health_probe_bind_address="0",
        install_signal_handlers=False,
    )
    plugin = _Plugin(setup_error=setup_error, run_error=run_error)
    assert await asyncio.wait_for(run_manager(options, plugin), 30) == code
