"""envtest answers the recorded requests exactly as a real kube-apiserver v1.32.6 did.

``../shared/fidelity/kube-apiserver-v1.32.6.json`` holds 95 requests and the answers of a
real kube-apiserver (etcd 3.4, default feature gates, RBAC on, the project's CRDs installed);
``replay.py`` beside it sends them again, in order, to a server and compares the normalized
answers (status code, content type, Warning headers, body). This test runs it against envtest
with the project's CRDs: every answer must be identical. The replay lives in ``shared/`` (read
only here) and is never adjusted to envtest; a difference is fixed in envtest.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from flokoa_envtest import APIServer
from flokoa_envtest.server import load_manifests
from flokoa_envtest.testing import require_file

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "config" / "crd"
FIDELITY = REPO.parent / "shared" / "fidelity"
"""``shared/`` sits beside the repository (in CI: a copy beside the fresh clone)."""
GOLDEN = "kube-apiserver-v1.32.6.json"


async def test_envtest_answers_like_kube_apiserver(tmp_path: Path) -> None:
    replay = require_file(FIDELITY / "replay.py")
    golden = require_file(FIDELITY / GOLDEN)
    crds = [m for m in load_manifests([CRD_DIR]) if m.get("kind") == "CustomResourceDefinition"]
    assert len(crds) == 2, "the recording was made with the ModelProvider and Model CRDs"
    async with APIServer(crds=crds, tls=True) as api:
        for crd in crds:
            metadata = crd["metadata"]
            assert isinstance(metadata, dict)
            await api.wait_established(str(metadata["name"]))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(replay),
            str(golden),
            "--kubeconfig",
            str(api.kubeconfig_path),
            "-v",
            "--record",
            str(tmp_path / "envtest.json"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    text = out.decode(errors="replace")
    last = text.strip().splitlines()[-1] if text.strip() else ""
    assert last.startswith("identical 95/95;"), text[-6000:]
    assert process.returncode == 0, text[-6000:]
