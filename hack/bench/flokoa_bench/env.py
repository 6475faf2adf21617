"""One scenario's world: a fresh envtest process, the harness client, observer and audit."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flokoa_bench import workload
from flokoa_bench.api import Control, Harness
from flokoa_bench.audit import AuditCollector
from flokoa_bench.contenders import BENCH_DIR
from flokoa_bench.observer import Observer
from flokoa_bench.procs import Child, spawn


@dataclass
class World:
    """A running envtest with the harness attached (see :func:`open_world`)."""

    envtest: Child
    harness: Harness
    control: Control
    observer: Observer
    audit: AuditCollector
    base_url: str
    workdir: Path
    children: list[Child] = field(default_factory=list)
    uids: dict[str, str] = field(default_factory=dict)
    """Secret name → UID (part of the expected ``secretHash``)."""

    def expected(self, index: int, revision: int = 0, name: str | None = None) -> str:
        """The ``secretHash`` object ``index`` must reach at ``revision``."""
        secret = name or workload.name_of(index)
        return workload.expected_hash(self.uids[secret], index, revision, secret)

    @property
    def kubeconfig(self) -> Path:
        """The envtest kubeconfig (no credentials)."""
        return Path(self.envtest.info["kubeconfig"])

    async def seed(self, start: int, count: int, secret_bytes: int, *, providers: bool) -> None:
        """Create Secrets (and ModelProviders) in-process."""
        step = 1000
        for offset in range(start, start + count, step):
            answer = await self.control.call(
                "POST",
                "/seed",
                {
                    "start": offset,
                    "count": min(step, start + count - offset),
                    "secret_bytes": secret_bytes,
                    "base_url": self.base_url,
                    "providers": providers,
                },
            )
            self.uids.update(answer["uids"])

    async def create_provider(self, index: int, name: str | None = None) -> float:
        """Create ModelProvider ``index`` over HTTP; the wall time the create returned."""
        await self.harness.create(
            workload.MODELPROVIDERS_PATH, workload.model_provider(index, self.base_url, name)
        )
        return time.time()

    async def canary(self, within: float = 120.0) -> float:
        """Create a canary Secret+ModelProvider and wait until it is correct; seconds taken."""
        began = time.time()
        created = await self.harness.create(
            workload.SECRETS_PATH, workload.secret(0, 64, name=workload.CANARY)
        )
        self.uids[workload.CANARY] = created["metadata"]["uid"]
        self.observer.expect(workload.CANARY, self.expected(0, name=workload.CANARY))
        await self.harness.create(
            workload.MODELPROVIDERS_PATH,
            workload.model_provider(0, self.base_url, workload.CANARY),
        )
        if not await self.observer.wait_all(within):
            raise RuntimeError(
                f"the contender did not make the canary Ready (observer: "
                f"{self.observer.state.get(workload.CANARY)}, errors {self.observer.errors[-3:]})"
            )
        return time.time() - began

    async def close(self) -> None:
        """Stop every child, the observer, the audit collector and envtest."""
        for child in self.children:
            await child.stop()
        await self.observer.stop()
        await self.audit.stop()
        await self.harness.close()
        await self.control.close()
        await self.envtest.stop()


async def open_world(workdir: Path, base_url: str, *, tag_identities: bool = False) -> World:
    """Start a fresh envtest process and attach the harness."""
    args = [sys.executable, str(BENCH_DIR / "envtest_server.py")]
    args += ["--kubeconfig-out", str(workdir / "kubeconfig.yaml")]
    if tag_identities:
        args.append("--tag-identities")
    envtest = await spawn("envtest", args, workdir, wait_ready=True)
    harness = Harness(envtest.info["url"])
    control = Control(envtest.info["control"])
    observer = Observer(harness)
    audit = AuditCollector(control)
    await observer.start()
    audit.start()
    return World(envtest, harness, control, observer, audit, base_url, workdir)


async def sample_memory(child: Child, samples: list[dict[str, float]], every: float = 0.5) -> Any:
    """Append the child's memory every ``every`` seconds until cancelled."""
    while child.alive:
        mem = child.memory()
        if mem:
            samples.append(mem)
        await asyncio.sleep(every)
