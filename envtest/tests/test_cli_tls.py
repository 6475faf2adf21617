"""The ``flokoa-controller envtest`` command, and the TLS + bearer-token mode."""

from __future__ import annotations

import asyncio
import signal
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from flokoa_envtest import APIServer
from flokoa_envtest.testing import Kubectl, RawClient
from kubernetes import client, config

REPO = Path(__file__).resolve().parents[2]


async def _read_banner(proc: asyncio.subprocess.Process) -> dict[str, str]:
    assert proc.stdout is not None
    banner: dict[str, str] = {}
    async with asyncio.timeout(30):
        while "kubeconfig" not in banner:
            line = (await proc.stdout.readline()).decode()
            if not line:
                raise AssertionError("envtest exited before printing its banner")
            key, _, value = line.partition(": ")
            banner[key.strip()] = value.strip()
    return banner


async def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flokoa_controller", "envtest",
        "--port", "0", "--kubeconfig-out", str(kubeconfig),
        "--crd", str(REPO / "config" / "crd"), "--expire-watch-resumes", "1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        banner = await _read_banner(proc)
        url = banner["envtest API server"]
        assert banner["kubeconfig"] == str(kubeconfig)
        assert banner["service account issuer"] == url
        written = yaml.safe_load(kubeconfig.read_text())
        assert written["clusters"][0]["cluster"]["server"] == url
        async with RawClient(url) as http:
            assert (await http.get("/version")).body["minor"] == "32"
            served = await http.get("/apis/agent.flokoa.ai/v1alpha1/modelproviders")
            assert served.status == 200
            w = await http.watch("/api/v1/configmaps", resourceVersion="1")
            event = await w.next()
            assert event is not None
            assert event["object"]["code"] == 410
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await proc.wait()
    assert proc.returncode == 0


async def test_tls_requires_the_bearer_token(make_kubectl: Callable[[Path], Kubectl]) -> None:
    async with APIServer(tls=True) as api:
        assert api.url.startswith("https://")
        assert api.ca_path is not None
        assert api.token
        kc = yaml.safe_load(api.kubeconfig_path.read_text())
        assert kc["users"][0]["user"]["token"] == api.token
        core = client.CoreV1Api(config.new_client_from_config(config_file=str(api.kubeconfig_path)))
        names = await asyncio.to_thread(core.list_namespace)
        assert "default" in [n.metadata.name for n in names.items]
        ctx = ssl.create_default_context(cafile=str(api.ca_path))
        async with RawClient(api.url, ssl_context=ctx) as anonymous:
            denied = await anonymous.get("/api/v1/namespaces")
            assert (denied.status, denied.body["reason"]) == (401, "Unauthorized")
            assert (await anonymous.get("/healthz")).status == 200
        async with RawClient(api.url, token="wrong", ssl_context=ctx) as wrong:
            assert (await wrong.get("/api/v1/namespaces")).status == 401
        kubectl = make_kubectl(api.kubeconfig_path)
        out = await kubectl("get", "namespaces", "-o", "name")
        assert "namespace/default" in out.stdout.split()


@pytest.mark.parametrize("argv", [["envtest", "--help"]])
def test_cli_help_lists_the_fault_flags(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from flokoa_controller.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--tls", "--crd", "--error-rate", "--zombie-watches", "--watch-max-seconds"):
        assert flag in text
