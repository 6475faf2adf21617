"""How each contender is started: flokoa-controller, the limit, the kopf peer.

Each runs as its own process against the kubeconfig it is given, with the same number of
concurrent probe+write workers (``concurrency``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from flokoa_bench.procs import Child, spawn

BENCH_DIR = Path(__file__).resolve().parents[1]
REPO = BENCH_DIR.parents[1]
CONTENDERS = ("flokoa", "limit", "kopf")


@dataclass(frozen=True)
class LeaderElection:
    """Leader-election settings for flokoa-controller replicas."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    namespace: str = "default"


@dataclass(frozen=True)
class Launch:
    """How to start one contender process."""

    contender: str
    kubeconfig: Path
    concurrency: int = 4
    leader_election: LeaderElection | None = None
    extra_args: tuple[str, ...] = ()
    profile: Path | None = None
    """Record a py-spy profile (flokoa only) to this file."""
    env: dict[str, str] = field(default_factory=dict)

    def argv(self) -> list[str]:
        """The command line."""
        py = sys.executable
        if self.contender == "flokoa":
            argv = [
                py,
                "-m",
                "flokoa_controller",
                "run",
                "--kubeconfig",
                str(self.kubeconfig),
                "--metrics-bind-address",
                "127.0.0.1:0",
                "--health-probe-bind-address",
                "127.0.0.1:0",
                "--max-concurrent-reconciles",
                str(self.concurrency),
                "--log-format",
                "json",
                # the fake provider listens on 127.0.0.1, denied by default
                "--allow-destinations",
                "127.0.0.0/8",
            ]
            le = self.leader_election
            if le is not None:
                argv += [
                    "--leader-elect",
                    "--leader-election-namespace",
                    le.namespace,
                    "--lease-duration",
                    f"{le.lease_duration}s",
                    "--renew-deadline",
                    f"{le.renew_deadline}s",
                    "--retry-period",
                    f"{le.retry_period}s",
                ]
            argv += list(self.extra_args)
            if self.profile is not None:
                argv = [
                    str(Path(py).parent / "py-spy"),
                    "record",
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--output",
                    str(self.profile),
                    "--",
                    *argv,
                ]
            return argv
        if self.contender == "limit":
            return [
                py,
                str(BENCH_DIR / "limit.py"),
                "--kubeconfig",
                str(self.kubeconfig),
                "--concurrency",
                str(self.concurrency),
                *self.extra_args,
            ]
        if self.contender == "kopf":
            return [
                py,
                "-m",
                "kopf",
                "run",
                "--standalone",
                "--all-namespaces",
                str(BENCH_DIR / "peers" / "kopf_operator.py"),
                *self.extra_args,
            ]
        raise ValueError(f"unknown contender {self.contender!r}")

    def environ(self) -> dict[str, str]:
        """Extra environment variables."""
        env = {"KUBECONFIG": str(self.kubeconfig), **self.env}
        if self.contender == "kopf":
            env["BENCH_CONCURRENCY"] = str(self.concurrency)
        return env


async def start(launch: Launch, log_dir: Path, name: str | None = None) -> Child:
    """Start the contender described by ``launch``."""
    return await spawn(
        name or launch.contender, launch.argv(), log_dir, env=launch.environ(), cwd=log_dir
    )
