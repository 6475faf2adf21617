"""``flokoa-controller dev`` end to end: demo objects with the right columns, poked with the
printed kubectl commands, stopped cleanly."""

from __future__ import annotations

import asyncio
import io
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from flokoa_envtest.dev import DevEnvironment, run_dev
from flokoa_envtest.testing import poll_until

from flokoa_controller.cli import build_parser

if TYPE_CHECKING:
    from flokoa_envtest.testing import MakeKubectl

EXPECTED = {
    # provider: (type, ready, reason)
    "openai": ("openai", "true", "ProbeSucceeded"),
    "azure-openai": ("openai", "true", "ProbeSucceeded"),
    "anthropic": ("anthropic", "true", "ProbeSucceeded"),
    "gemini": ("google", "true", "ProbeSucceeded"),
    "vertex": ("google", "true", "ProbeSucceeded"),
    "bedrock": ("bedrock", "true", "ProbeSucceeded"),
    "bedrock-keyless": ("bedrock", "true", "ProbeSucceeded"),
    "internal-llm": ("openai", "true", "ProbeSucceeded"),
    "openai-revoked": ("openai", "false", "InvalidCredentials"),
    "openai-missing-secret": ("openai", "false", "SecretNotFound"),
}


async def test_dev(tmp_path: Path, make_kubectl: MakeKubectl) -> None:
    args = build_parser().parse_args(["dev", "--dir", str(tmp_path), "--metrics-bind-address", "0"])
    ready: asyncio.Future[DevEnvironment] = asyncio.get_running_loop().create_future()
    out = io.StringIO()
    task = asyncio.create_task(run_dev(args, on_ready=ready.set_result, out=out))
    try:
        env = await asyncio.wait_for(asyncio.shield(ready), 60)
        banner = out.getvalue()
        assert f"export KUBECONFIG={env.kubeconfig}" in banner
        assert stat.S_IMODE(os.stat(env.keys_file).st_mode) == 0o600
        keys = dict(line.split("=", 1) for line in env.keys_file.read_text().splitlines())
        assert keys["OPENAI_API_KEY"] not in banner
        kubectl = make_kubectl(env.kubeconfig)
        ns = env.namespace

        async def rows() -> dict[str, list[str]] | None:
            result = await kubectl("get", "modelproviders", "-n", ns, check=False)
            if result.returncode != 0:
                return None
            lines = result.stdout.splitlines()
            table = {line.split()[0]: line.split() for line in lines[1:]}
            for name, (kind, is_ready, reason) in EXPECTED.items():
                if table.get(name, [])[1:4] != [kind, is_ready, reason]:
                    return None
            assert lines[0].split() == ["NAME", "PROVIDER", "READY", "REASON", "AGE"]
            return table

        await poll_until(rows, within=30, what="the demo providers' expected states")
        models = (await kubectl("get", "models", "-n", ns)).stdout
        assert models.splitlines()[0].split() == ["NAME", "MODEL", "PROVIDER", "READY", "AGE"]
        table = {line.split()[0]: line.split() for line in models.splitlines()[1:]}
        assert table["connectivity-test"][1:4] == ["gpt-4o-mini", "openai", "true"]
        assert table["no-such-model"][3] == "false"

        # the banner's poke: fix the revoked key with the printed pipeline
        secret = await kubectl(
            "create",
            "secret",
            "generic",
            "openai-revoked-credentials",
            "-n",
            ns,
            f"--from-literal=api-key={keys['OPENAI_API_KEY']}",
            "--dry-run=client",
            "-o",
            "yaml",
        )
        await kubectl("apply", "-f", "-", input=secret.stdout)

        async def fixed() -> bool:
            got = await kubectl(
                "get", "modelprovider", "openai-revoked", "-n", ns, "-o", "jsonpath={.status.ready}"
            )
            return got.stdout == "true"

        await poll_until(fixed, within=30, what="openai-revoked to turn ready")
        described = await kubectl("describe", "modelprovider", "openai-revoked", "-n", ns)
        assert "ProviderReady" in described.stdout
        assert "ProbeFailed" in described.stdout
    finally:
        if ready.done():
            ready.result().manager.stop()
        else:
            task.cancel()
    assert await asyncio.wait_for(task, 30) == 0
