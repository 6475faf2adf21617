"""Operations tests: alerting rules, Grafana dashboard, live metrics, real Prometheus, docs.

Helpers (handed to tests as fixtures, since test modules do not import each other):

* ``metric_names(expr)`` — the metric names a PromQL expression selects;
* ``alert_rules`` / ``rule_exprs`` / ``dashboard_exprs`` — what config/prometheus/rules.yaml
  and config/grafana/flokoa-controller.json contain;
* ``promtool`` / ``prometheus_bin`` — the Debian tools (skipped when absent, failed when
  ``FLOKOA_REQUIRE_TOOLS=1``);
* :func:`start_controller` — envtest with the project's CRDs, every fake provider, the
  ``dev`` demo objects, and a real ``flokoa-controller run`` subprocess (metrics on
  127.0.0.1 port 0; the bound address is read from its JSON log);
* :func:`start_prometheus` — a real Prometheus server scraping given targets and loading the
  rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import trustme
import yaml
from flokoa_envtest.testing import poll_until, require_tool

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "config" / "crd"
PROMETHEUS_DIR = REPO / "config" / "prometheus"
RULES_FILE = PROMETHEUS_DIR / "rules.yaml"
PROMETHEUS_RULE_FILE = PROMETHEUS_DIR / "prometheusrule.yaml"
PROMTOOL_TESTS = Path(__file__).resolve().parent / "promtool" / "alerts_test.yaml"
DASHBOARD_FILE = REPO / "config" / "grafana" / "flokoa-controller.json"
DOCS = REPO / "docs"

JOB = "flokoa-controller-metrics"
"""The scrape job name the rules and the dashboard select (the metrics Service's name)."""

PROMETHEUS_SYNTHETIC = frozenset({"up"})
"""Series Prometheus makes itself for every target (never in the controller's output)."""

DEMO_NAMESPACE = "demo"
LEADING = 'leader_election_master_status{name="flokoa-controller.agent.flokoa.ai"} 1.0'
"""The exposition line of a replica that leads (the default Lease name)."""
LEASE_NAMESPACE = "flokoa-system"


# --- PromQL ------------------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_COMMENT = re.compile(r"#[^\n]*")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w:.$])[A-Za-z_:][A-Za-z0-9_:]*")
_CALL = re.compile(r"\s*\(")
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "atan2",
        "inf",
        "nan",
    }
)


def metric_names(expr: str) -> set[str]:
    """The metric names selected by a PromQL expression.

    Strings, comments, label matchers, ranges and grouping clauses are removed first; what
    is left that looks like an identifier and is neither a function call, a keyword nor
    part of a number (``1e-3``) or a Grafana variable (``$job``) is a metric name.
    """
    text = _STRING.sub('""', expr)
    text = _COMMENT.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        name = match.group(0)
        if _CALL.match(text, match.end()) or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of config/prometheus/rules.yaml."""
    doc = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict[str, Any]:
    """The Grafana dashboard."""
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    return loaded


def dashboard_panels(board: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included (rows themselves excluded)."""
    board = board if board is not None else dashboard()
    panels: list[dict[str, Any]] = []
    for panel in board["panels"]:
        if panel.get("type") == "row":
            panels.extend(panel.get("panels", []))
        else:
            panels.append(panel)
    return panels


def dashboard_expressions() -> list[tuple[str, str]]:
    """``(panel title, expr)`` of every query of the dashboard."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard_panels()
        for target in panel.get("targets", [])
    ]


def expand_variables(expr: str, *, job: str = JOB, namespace: str = ".*") -> str:
    """A dashboard query with its Grafana variables replaced, ready for Prometheus."""
    return (
        expr.replace("$__rate_interval", "1m").replace("$job", job).replace("$namespace", namespace)
    )


@pytest.fixture
def promtool() -> str:
    """Path of promtool."""
    return require_tool("promtool")


@pytest.fixture
def prometheus_bin() -> str:
    """Path of the prometheus server."""
    return require_tool("prometheus")


# --- a running controller ----------------------------------------------------------------------

_SCRUBBED_PREFIXES = ("AWS_", "GOOGLE_", "GCE_", "BOTO_", "FLOKOA_", "KUBE")
_SCRUBBED = {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR"}


def free_port() -> int:
    """A port that was free a moment ago (for servers that cannot bind port 0 themselves)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def controller_env(workdir: Path) -> dict[str, str]:
    """The controller's environment: no proxies, no ambient cloud identity from the host."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name.upper() not in _SCRUBBED and not name.upper().startswith(_SCRUBBED_PREFIXES)
    }
    nowhere = f"127.0.0.1:{free_port()}"
    env.update(
        {
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(workdir / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "aws-credentials"),
            "GCE_METADATA_HOST": nowhere,
            "GCE_METADATA_IP": nowhere,
            "CLOUDSDK_CONFIG": str(workdir / "gcloud"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass
class RunningController:
    """A ``flokoa-controller run`` process against envtest, with real activity behind it."""

    process: asyncio.subprocess.Process
    metrics_url: str
    kubeconfig: Path
    client: Any
    """A ``KubeClient`` of the test (not the controller's)."""
    logs: list[str] = field(default_factory=list)
    """The controller's log lines so far (JSON)."""

    async def scrape(self) -> str:
        """The text of ``/metrics``."""
        async with aiohttp.ClientSession() as session, session.get(self.metrics_url) as reply:
            assert reply.status == 200, await reply.text()
            return await reply.text()

    def log_tail(self, lines: int = 40) -> str:
        """The last log lines, for assertion messages."""
        return "\n".join(self.logs[-lines:])


async def _drain(
    stream: asyncio.StreamReader, logs: list[str], address: asyncio.Future[str]
) -> None:
    while raw := await stream.readline():
        line = raw.decode(errors="replace").rstrip("\n")
        logs.append(line)
        if address.done():
            continue
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("role") == "metrics":
                address.set_result(str(record["address"]))
    if not address.done():
        address.set_exception(AssertionError("the controller exited before serving /metrics"))


def _has_ready_condition(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" for c in conditions)


@contextlib.asynccontextmanager
async def start_controller(workdir: Path) -> AsyncIterator[RunningController]:
    """envtest + fake providers + demo objects + ``flokoa-controller run`` (stopped after)."""
    from flokoa_envtest import APIServer
    from flokoa_envtest.dev import DemoFakes, apply_objects, demo_objects
    from flokoa_envtest.fakes import FakeOpenAI, FakeProviders
    from flokoa_envtest.server import load_manifests

    from flokoa_controller.controllers.resources import MODELPROVIDERS, MODELS
    from flokoa_controller.kube.client import KubeClient
    from flokoa_controller.kube.config import load_kubeconfig
    from flokoa_controller.kube.errors import AlreadyExists
    from flokoa_controller.kube.resources import NAMESPACES

    crds = [m for m in load_manifests([CRD_DIR]) if m.get("kind") == "CustomResourceDefinition"]
    ca = trustme.CA()
    async with contextlib.AsyncExitStack() as stack:
        api = await stack.enter_async_context(
            APIServer(crds=crds, kubeconfig_path=workdir / "kubeconfig")
        )
        for crd in crds:
            await api.wait_established(str(crd["metadata"]["name"]))
        providers = await stack.enter_async_context(FakeProviders())
        tls_openai = await stack.enter_async_context(FakeOpenAI(tls=ca))
        client = await stack.enter_async_context(
            KubeClient(load_kubeconfig(str(api.kubeconfig_path)))
        )
        with contextlib.suppress(AlreadyExists):
            await client.create(
                NAMESPACES,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NAMESPACE}},
            )
        fakes = DemoFakes(providers, tls_openai, ca)
        await apply_objects(client, demo_objects(fakes, DEMO_NAMESPACE), DEMO_NAMESPACE)

        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "flokoa_controller",
            "run",
            f"--kubeconfig={api.kubeconfig_path}",
            "--leader-elect",
            f"--leader-election-namespace={LEASE_NAMESPACE}",
            "--metrics-bind-address=127.0.0.1:0",
            "--health-probe-bind-address=127.0.0.1:0",
            "--log-format=json",
            "--allow-destinations=127.0.0.0/8",  # the demo fakes listen on 127.0.0.1
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=controller_env(workdir),
        )
        logs: list[str] = []
        address: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        assert process.stdout is not None
        drain = asyncio.create_task(_drain(process.stdout, logs, address))
        try:
            try:
                async with asyncio.timeout(60):
                    host_port = await address
            except (TimeoutError, AssertionError) as exc:
                tail = "\n".join(logs[-40:])
                raise AssertionError(f"no metrics address ({exc!r}); log:\n{tail}") from None
            running = RunningController(
                process, f"http://{host_port}/metrics", api.kubeconfig_path, client, logs
            )

            async def settled() -> bool:
                for rt in (MODELPROVIDERS, MODELS):
                    listed = await client.list(rt, DEMO_NAMESPACE)
                    if not all(_has_ready_condition(obj) for obj in listed["items"]):
                        return False
                return LEADING in await running.scrape()

            try:
                await poll_until(
                    settled, within=90, what="every demo object to get a Ready condition"
                )
            except AssertionError as exc:
                raise AssertionError(f"{exc}\ncontroller log:\n{running.log_tail()}") from None
            yield running
        finally:
            await _stop_process(process)
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await drain


async def _stop_process(process: asyncio.subprocess.Process, grace: float = 30.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; always reaped."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(grace):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


# --- a real Prometheus ---------------------------------------------------------------------------


@dataclass
class RunningPrometheus:
    """A Prometheus server on 127.0.0.1."""

    process: asyncio.subprocess.Process
    url: str
    log: Path

    async def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>``; the ``data`` of a successful reply."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/api/v1/{path}", params=params) as reply,
        ):
            body = await reply.json()
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """The result vector of an instant query."""
        data = await self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result


def prometheus_config(targets: Iterable[str], rule_files: Iterable[Path]) -> dict[str, Any]:
    """A Prometheus configuration scraping ``targets`` every second as job ``JOB``."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": JOB,
                "static_configs": [
                    {"targets": list(targets), "labels": {"namespace": LEASE_NAMESPACE}}
                ],
            }
        ],
    }


@contextlib.asynccontextmanager
async def start_prometheus(
    binary: str, workdir: Path, targets: Iterable[str], rule_files: Iterable[Path]
) -> AsyncIterator[RunningPrometheus]:
    """Start Prometheus on 127.0.0.1; always stopped (SIGTERM, then SIGKILL) afterwards.

    Prometheus cannot listen on port 0 and report the port, so a port is picked by binding
    port 0 and releasing it. Another process may take it in between: Prometheus then exits
    with "address already in use" and the start is retried with a new port (at most 5
    times). ``/api/v1/status/flags`` must show our storage path, so a foreign server that
    grabbed the port is never mistaken for ours.
    """
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(targets, rule_files)), encoding="utf-8")
    loop = asyncio.get_running_loop()
    for attempt in range(5):
        port = free_port()
        storage = workdir / f"data-{attempt}"
        log = workdir / f"prometheus-{attempt}.log"
        with log.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={storage}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=info",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )
        running = RunningPrometheus(process, f"http://127.0.0.1:{port}", log)
        try:
            deadline = loop.time() + 30
            ours = False
            while process.returncode is None and loop.time() < deadline:
                with contextlib.suppress(aiohttp.ClientError, AssertionError, ValueError):
                    flags = await running.api("status/flags")
                    ours = flags.get("storage.tsdb.path") == str(storage)
                    if ours:
                        break
                await asyncio.sleep(0.05)  # polling interval while the server starts
            if ours:
                yield running
                return
            text = log.read_text(errors="replace")
            if "address already in use" in text and attempt < 4:
                continue
            raise AssertionError(f"prometheus did not start:\n{text[-3000:]}")
        finally:
            await _stop_process(process, grace=10)
    raise AssertionError("prometheus could not find a free port")


def iter_rules(groups: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every rule of ``/api/v1/rules``' groups."""
    for group in groups:
        yield from group["rules"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def live_controller(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningController]:
    """One running controller per test module (its tests share the module's event loop)."""
    async with start_controller(tmp_path_factory.mktemp("controller")) as running:
        yield running


@pytest.fixture(scope="session")
def ops() -> SimpleNamespace:
    """This conftest's helpers and constants, for the test modules."""
    return SimpleNamespace(
        REPO=REPO,
        CRD_DIR=CRD_DIR,
        RULES_FILE=RULES_FILE,
        PROMETHEUS_RULE_FILE=PROMETHEUS_RULE_FILE,
        PROMTOOL_TESTS=PROMTOOL_TESTS,
        DASHBOARD_FILE=DASHBOARD_FILE,
        DOCS=DOCS,
        JOB=JOB,
        PROMETHEUS_SYNTHETIC=PROMETHEUS_SYNTHETIC,
        DEMO_NAMESPACE=DEMO_NAMESPACE,
        metric_names=metric_names,
        alert_rules=alert_rules,
        dashboard=dashboard,
        dashboard_panels=dashboard_panels,
        dashboard_expressions=dashboard_expressions,
        expand_variables=expand_variables,
        start_prometheus=start_prometheus,
        iter_rules=iter_rules,
    )
