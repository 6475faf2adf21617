"""The container image, built from the repository's Dockerfile and run the way the manifests run it.

No registry can be pulled from here, so the base is Debian bookworm made with debootstrap
(hack/image_base.py, cached in podman's image store); the Dockerfile is built FROM it with
``--build-arg BASE_IMAGE`` (podman's layer cache makes later builds fast). The container then
runs with the Deployment's constraints — read-only root filesystem with a tmpfs /tmp, UID
65532, no capabilities, no privilege escalation — and ``--network=host``, as
``run --kubeconfig`` against an envtest API server (TLS, bearer token) on the host, with the
kubeconfig mounted read-only. A ModelProvider must go Ready through a fake OpenAI endpoint,
/healthz and /metrics must answer, and SIGTERM must end the process with exit code 0 within
the Deployment's grace period.

Skipped when podman does not work (failed under ``FLOKOA_REQUIRE_TOOLS=1``); .ci/run installs
podman, debootstrap and the rest, and hack/containers.conf holds the settings podman needs on
machines without systemd.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from flokoa_envtest.testing import poll_until, secret_manifest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

IMAGE = "localhost/flokoa-controller:test"
NAMESPACE = "team-a"
LEASE_NAMESPACE = "flokoa-system"
GRACE_SECONDS = 40
"""terminationGracePeriodSeconds of config/manager/manager.yaml."""
HOST_CA_BUNDLES = (
    Path("/etc/ssl/certs/ca-certificates.crt"),
    Path("/etc/pki/tls/certs/ca-bundle.crt"),
)
"""The host's CA bundle is handed to pip in the build (the ``pip-ca`` build secret), for
networks where PyPI is reached through a TLS-intercepting proxy; it is never in a layer."""


@dataclass
class Built:
    """The image under test and what building it cost."""

    podman: str
    image: str
    env: dict[str, str]
    base_seconds: float
    build_seconds: float


def podman_run(podman: str, env: dict[str, str], *args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        [podman, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"podman {' '.join(args)}:\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def built(image_base: Any, missing_tool: Any) -> Built:
    """The image, built FROM the debootstrap base (both made on first use)."""
    base = image_base
    podman = shutil.which("podman")
    if podman is None:
        missing_tool("podman is not installed")
        raise AssertionError("not reached")
    env = base.podman_env()
    info = subprocess.run(
        [podman, "info"], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    if info.returncode != 0:
        missing_tool(f"podman does not work here: {info.stderr.strip()[-500:]}")
    started = time.monotonic()
    try:
        base_image = base.ensure_base(podman)
    except base.BaseUnavailable as exc:
        missing_tool(f"no base image: {exc}")
        raise
    base_seconds = time.monotonic() - started
    args = ["build", "--build-arg", f"BASE_IMAGE={base_image}", "--tag", IMAGE]
    ca = next((p for p in HOST_CA_BUNDLES if p.is_file()), None)
    if ca is not None:
        args += ["--secret", f"id=pip-ca,src={ca}"]
    started = time.monotonic()
    podman_run(podman, env, *args, str(REPO), timeout=1500)
    return Built(podman, IMAGE, env, base_seconds, time.monotonic() - started)


def test_image_size_and_build_time(built: Built, capsys: pytest.CaptureFixture[str]) -> None:
    """Reported, not asserted (figures, not limits)."""
    size = int(
        podman_run(
            built.podman, built.env, "image", "inspect", "--format", "{{.Size}}", built.image
        )
    )
    with capsys.disabled():
        print(
            f"\n[image] {built.image}: {size / 1e6:.0f} MB; base {built.base_seconds:.0f}s,"
            f" build {built.build_seconds:.0f}s",
            file=sys.stderr,
        )
    assert size > 0


INSPECT = r"""
import json, os, shutil, site, sys
found = {"compilers": [], "pip_caches": [], "tests": [], "installers_in_venv": []}
found["uid"] = os.getuid()
for name in ("gcc", "cc", "c++", "g++", "clang", "tcc", "make", "ld"):
    if shutil.which(name, path="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin:/opt/venv/bin"):
        found["compilers"].append(name)
for top in ("/root", "/home", "/tmp", "/opt", "/var/cache", "/usr/local"):
    for root, dirs, files in os.walk(top):
        if os.path.basename(root) == "pip" and os.path.basename(os.path.dirname(root)) == ".cache":
            found["pip_caches"].append(root)
        if root.startswith("/var/cache/pip") or root.startswith("/root/.cache/pip"):
            found["pip_caches"].append(root)
for root, dirs, files in os.walk("/opt/venv"):
    if "conftest.py" in files or os.path.basename(root) == "tests" and "flokoa" in root:
        found["tests"].append(root)
for path in ("/src", "/src/tests", "/tests", "/opt/venv/tests"):
    if os.path.exists(path):
        found["tests"].append(path)
for sp in site.getsitepackages():
    for installer in ("pip", "setuptools", "pkg_resources"):
        if sp.startswith("/opt/venv") and os.path.isdir(os.path.join(sp, installer)):
            found["installers_in_venv"].append(installer)
import importlib.util, subprocess
found["envtest_modules"] = [
    os.path.join(root, d)
    for root, dirs, files in os.walk("/opt/venv")
    for d in dirs + files
    if "envtest" in d
]
found["envtest_only_deps"] = [
    m for m in ("flokoa_envtest", "celpy", "re2", "trustme", "jsonschema", "pytest")
    if importlib.util.find_spec(m) is not None
]
run_help = subprocess.run(["flokoa-controller", "run", "--help"], capture_output=True, text=True)
found["run_help"] = [run_help.returncode, "--kubeconfig" in run_help.stdout]
dev = subprocess.run(["flokoa-controller", "dev"], capture_output=True, text=True)
found["dev"] = [dev.returncode, dev.stderr.strip()]
print(json.dumps(found))
"""


def test_image_contains_no_compilers_caches_or_tests(built: Built) -> None:
    out = podman_run(
        built.podman,
        built.env,
        "run",
        "--rm",
        "--read-only",
        "--user=65532",
        "--cap-drop=ALL",
        "--network=none",
        "--entrypoint=python",
        built.image,
        "-c",
        INSPECT,
    )
    found = json.loads(out)
    assert found["uid"] == 65532
    assert found["compilers"] == [], "the runtime image must have no compiler toolchain"
    assert found["pip_caches"] == []
    assert found["tests"] == [], "the test suite must not be in the image"
    assert found["installers_in_venv"] == [], "the runtime installs nothing: no pip, no setuptools"
    # envtest (the in-memory API server and provider fakes) is its own distribution: none of
    # it, nor what only it needs, is in the image; the operator's command still works and
    # ``dev`` says in one line what to install.
    assert found["envtest_modules"] == [], "envtest must not be in the operator's image"
    assert found["envtest_only_deps"] == []
    assert found["run_help"] == [0, True]
    assert found["dev"][0] == 2
    assert "flokoa-envtest" in found["dev"][1]
    assert "\n" not in found["dev"][1]
    config = json.loads(
        podman_run(
            built.podman, built.env, "image", "inspect", "--format", "{{json .Config}}", built.image
        )
    )
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["flokoa-controller"]


# --- running it against an envtest on the host -------------------------------------------------


@dataclass
class Container:
    name: str
    process: asyncio.subprocess.Process
    logs: list[str]
    addresses: dict[str, str]

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.logs[-lines:])


async def _drain(stream: asyncio.StreamReader, container: Container) -> None:
    while raw := await stream.readline():
        line = raw.decode(errors="replace").rstrip("\n")
        container.logs.append(line)
        with contextlib.suppress(ValueError, TypeError, KeyError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("role") in ("health", "metrics"):
                container.addresses[str(record["role"])] = str(record["address"])


@contextlib.asynccontextmanager
async def run_container(built: Built, kubeconfig: Path) -> AsyncIterator[Container]:
    """``podman run`` with the Deployment's constraints; removed afterwards whatever happens."""
    name = f"flokoa-test-{uuid.uuid4().hex[:8]}"
    process = await asyncio.create_subprocess_exec(
        built.podman,
        "run",
        "--rm",
        f"--name={name}",
        "--read-only",
        "--read-only-tmpfs=false",
        "--tmpfs=/tmp:rw,size=64m,mode=1777",
        "--user=65532:65532",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        "--network=host",
        "--env=PYTHONDONTWRITEBYTECODE=1",
        f"--volume={kubeconfig}:/etc/flokoa/kubeconfig:ro",
        built.image,
        "run",
        "--kubeconfig=/etc/flokoa/kubeconfig",
        "--leader-elect",
        f"--leader-election-namespace={LEASE_NAMESPACE}",
        "--metrics-bind-address=127.0.0.1:0",
        "--health-probe-bind-address=127.0.0.1:0",
        "--log-format=json",
        "--allow-destinations=127.0.0.0/8",  # the fake provider listens on the host's loopback
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=built.env,
    )
    container = Container(name, process, [], {})
    assert process.stdout is not None
    drain = asyncio.create_task(_drain(process.stdout, container))
    try:
        yield container
    finally:
        if process.returncode is None:
            rm = await asyncio.create_subprocess_exec(
                built.podman,
                "rm",
                "--force",
                "--time=0",
                name,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                env=built.env,
            )
            await rm.wait()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain


@pytest.fixture
def host_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's own client talks to envtest directly, never through a host proxy."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


def _ready(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def test_image_runs_against_envtest_and_stops_on_sigterm(
    built: Built, tmp_path: Path, host_env: None
) -> None:
    from flokoa_envtest import APIServer
    from flokoa_envtest.fakes import FakeProviders
    from flokoa_envtest.server import load_manifests

    from flokoa_controller.controllers.resources import MODELPROVIDERS
    from flokoa_controller.kube.client import KubeClient
    from flokoa_controller.kube.config import load_kubeconfig
    from flokoa_controller.kube.resources import NAMESPACES, SECRETS

    crds = [
        m
        for m in load_manifests([REPO / "config" / "crd"])
        if m.get("kind") == "CustomResourceDefinition"
    ]
    async with contextlib.AsyncExitStack() as stack:
        api = await stack.enter_async_context(
            APIServer(crds=crds, tls=True, kubeconfig_path=tmp_path / "kubeconfig")
        )
        for crd in crds:
            await api.wait_established(str(crd["metadata"]["name"]))
        providers = await stack.enter_async_context(FakeProviders())
        client = await stack.enter_async_context(
            KubeClient(load_kubeconfig(str(api.kubeconfig_path)))
        )
        for ns in (NAMESPACE, LEASE_NAMESPACE):
            await client.create(
                NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            )
        await client.create(
            SECRETS,
            secret_manifest("openai-credentials", NAMESPACE, {"api-key": providers.openai.api_key}),
            NAMESPACE,
        )
        await client.create(
            MODELPROVIDERS,
            {
                "apiVersion": "agent.flokoa.ai/v1alpha1",
                "kind": "ModelProvider",
                "metadata": {"name": "openai", "namespace": NAMESPACE},
                "spec": {
                    "apiKeySecretRef": {"name": "openai-credentials", "key": "api-key"},
                    "openai": {"baseURL": providers.openai.base_url, "timeoutSeconds": 10},
                },
            },
            NAMESPACE,
        )
        # The container's user (65532) reads the kubeconfig from a read-only bind mount; the
        # kubeconfig carries the CA inline, so nothing else is mounted.
        kubeconfig = tmp_path / "mounted" / "kubeconfig"
        kubeconfig.parent.mkdir()
        doc = yaml.safe_load(api.kubeconfig_path.read_text(encoding="utf-8"))
        assert "certificate-authority-data" in doc["clusters"][0]["cluster"]
        kubeconfig.write_text(api.kubeconfig_path.read_text(encoding="utf-8"), encoding="utf-8")
        kubeconfig.chmod(0o644)
        kubeconfig.parent.chmod(0o755)

        async with run_container(built, kubeconfig) as container:
            await poll_until(
                lambda: (
                    {"health", "metrics"} <= container.addresses.keys()
                    or container.process.returncode is not None
                ),
                within=120,
                what="the container to serve health probes and metrics",
            )
            assert container.process.returncode is None, container.tail()

            async def provider_ready() -> bool:
                return _ready(await client.get(MODELPROVIDERS, "openai", NAMESPACE))

            try:
                await poll_until(provider_ready, within=60, what="ModelProvider openai Ready")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\ncontainer log:\n{container.tail()}") from None

            async with aiohttp.ClientSession() as session:
                health = f"http://{container.addresses['health']}"
                async with session.get(f"{health}/healthz") as reply:
                    assert reply.status == 200, await reply.text()
                async with session.get(f"{health}/readyz") as reply:
                    assert reply.status == 200, await reply.text()
                async with session.get(f"http://{container.addresses['metrics']}/metrics") as reply:
                    assert reply.status == 200
                    metrics = await reply.text()
            assert (
                'leader_election_master_status{name="flokoa-controller.agent.flokoa.ai"} 1.0'
                in metrics
            )
            assert "flokoa_" in metrics

            # SIGTERM to the container's PID 1 (the operator itself, as in a pod: no init).
            kill = await asyncio.create_subprocess_exec(
                built.podman,
                "kill",
                "--signal=TERM",
                container.name,
                env=built.env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, kill_err = await kill.communicate()
            assert kill.returncode == 0, kill_err.decode()
            try:
                async with asyncio.timeout(GRACE_SECONDS):
                    code = await container.process.wait()
            except TimeoutError:
                raise AssertionError(
                    f"still running {GRACE_SECONDS}s after SIGTERM:\n{container.tail()}"
                ) from None
            assert code == 0, f"exit code {code} after SIGTERM:\n{container.tail()}"
        # Nothing the operator logged carries the API key.
        assert providers.openai.api_key not in "\n".join(container.logs)
