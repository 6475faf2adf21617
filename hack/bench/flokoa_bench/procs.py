"""Child processes of the benchmark: start, wait for readiness, sample memory, stop.

Memory is read from ``/proc/<pid>/status`` (``VmRSS`` now, ``VmHWM`` the peak, in MiB), with
the thread count (``Threads``).
Every process is started in its own session so it (and nothing else) can be signalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

READY_PREFIX = "BENCH-READY "


def proc_memory(pid: int) -> dict[str, float]:
    """``{"rss_mib", "hwm_mib"}`` of ``pid`` (empty if it is gone)."""
    out: dict[str, float] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            out["rss_mib"] = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            out["hwm_mib"] = int(line.split()[1]) / 1024
        elif line.startswith("Threads:"):
            out["threads"] = int(line.split()[1])
    return out


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds consumed by ``pid`` so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


@dataclass
class Child:
    """A running child process whose output goes to ``log_path``."""

    name: str
    proc: asyncio.subprocess.Process
    log_path: Path
    info: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    _log: Any = None

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    @property
    def alive(self) -> bool:
        """Whether it has not exited."""
        return self.proc.returncode is None

    def memory(self) -> dict[str, float]:
        """RSS and peak RSS in MiB."""
        return proc_memory(self.pid)

    def cpu_seconds(self) -> float:
        """CPU seconds consumed so far."""
        return proc_cpu_seconds(self.pid)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process (no-op if it has exited)."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    async def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code."""
        if self.alive:
            self.kill(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                self.kill(signal.SIGKILL)
                await self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def tail(self, lines: int = 30) -> str:
        """The last lines of its log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


async def spawn(
    name: str,
    argv: list[str],
    log_dir: Path,
    *,
    env: dict[str, str] | None = None,
    wait_ready: bool = False,
    ready_timeout: float = 60.0,
    cwd: Path | None = None,
) -> Child:
    """Start ``argv``; with ``wait_ready``, wait for its ``BENCH-READY {json}`` line.

    stdout and stderr go to ``log_dir/<name>.log``.
    """
    log_path = log_dir / f"{name}.log"
    log = _open_log(log_path)
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE if wait_ready else log,
        stderr=log,
        env=full_env,
        cwd=str(cwd) if cwd else None,
        start_new_session=True,
    )
    child = Child(name, proc, log_path, _log=log)
    if wait_ready:
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(_ready_line(proc.stdout, log), ready_timeout)
        except (TimeoutError, EOFError) as exc:
            await child.stop(1.0)
            raise RuntimeError(f"{name} did not start:\n{child.tail()}") from exc
        child.info = json.loads(line[len(READY_PREFIX) :])
        asyncio.get_running_loop().create_task(_pump(proc.stdout, log))
    return child


def _open_log(path: Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


async def _ready_line(stream: asyncio.StreamReader, log: Any) -> str:
    while True:
        raw = await stream.readline()
        if not raw:
            raise EOFError
        log.write(raw)
        log.flush()
        line = raw.decode(errors="replace").strip()
        if line.startswith(READY_PREFIX):
            return line


async def _pump(stream: asyncio.StreamReader, log: Any) -> None:
    with contextlib.suppress(Exception):
        while True:
            raw = await stream.readline()
            if not raw:
                return
            if not log.closed:
                log.write(raw)
                log.flush()
