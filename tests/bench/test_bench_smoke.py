"""bench-smoke: every benchmark scenario with a small N, asserting correctness only.

Runs ``hack/bench/run.py`` as a subprocess (it starts envtest, the fake OpenAI endpoint and
each contender as processes of their own, and stops them all) and checks the verdicts it
wrote: every object Ready with the right ``secretHash``, zero status writes while idle,
chaos converged, no status write from the old leader after the new one took the Lease.
Timings are in the results file but never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "hack" / "bench" / "run.py"

SMOKE_SCENARIOS = ("cold_start", "memory_64k", "burst", "chaos", "failover", "adversarial")
SMOKE_ARGS = (
    "--n", "20",
    "--rotations", "20",
    "--idle-seconds", "4",
    "--chaos-min-seconds", "6",
    "--lease", "3,2,0.5",
    "--timeout", "90",
    "--black-holes", "3",
    "--tricklers", "3",
    "--parallel",
)  # fmt: skip


def _run_smoke(out: Path) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(RUN),
        *SMOKE_ARGS,
        "--scenarios",
        ",".join(SMOKE_SCENARIOS),
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    results = sorted(out.glob("*.json"))
    assert results, f"no results written\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    data: dict[str, Any] = json.loads(results[-1].read_text())
    data["_output"] = proc.stdout[-4000:] + proc.stderr[-4000:]
    return data


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One smoke run shared by the assertions below."""
    return _run_smoke(tmp_path_factory.mktemp("bench"))


def _result(smoke: dict[str, Any], scenario: str, contender: str) -> dict[str, Any]:
    result = smoke["scenarios"].get(scenario, {}).get(contender)
    assert isinstance(result, dict), f"{scenario}/{contender} missing\n{smoke['_output']}"
    assert "error" not in result, f"{scenario}/{contender}: {result['error']}"
    return result


CONTENDERS = ("flokoa", "limit", "kopf")


@pytest.mark.slow
@pytest.mark.parametrize("contender", CONTENDERS)
@pytest.mark.parametrize("scenario", ["cold_start", "memory_64k", "create_burst", "rotation"])
def test_every_object_ends_ready_with_the_right_hash(
    smoke: dict[str, Any], scenario: str, contender: str
) -> None:
    result = _result(smoke, scenario, contender)
    assert result["ok"] is True, json.dumps(result.get("verify"), indent=1)
    if "verify" in result:
        assert result["verify"]["wrong"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("contender", CONTENDERS)
def test_idle_costs_no_writes_and_no_lists(smoke: dict[str, Any], contender: str) -> None:
    result = _result(smoke, "idle", contender)
    requests = result["requests"]
    assert requests["status_writes"] == 0, requests
    assert requests["object_writes"] == 0, requests
    if contender == "flokoa":
        assert requests["lists"] == 0, requests
        assert requests["streaming_lists"] == 0, requests
        assert requests["writes"] == 0, requests


@pytest.mark.slow
@pytest.mark.parametrize("contender", CONTENDERS)
def test_chaos_converges(smoke: dict[str, Any], contender: str) -> None:
    result = _result(smoke, "chaos", contender)
    assert result["verify"]["wrong"] == 0, result["verify"]
    assert result["alive"] is True
    assert result["watch_drops"] >= 1  # the faults did happen during the run
    assert result["ok"] is True


@pytest.mark.slow
def test_failover_has_no_double_writes(smoke: dict[str, Any]) -> None:
    result = _result(smoke, "failover", "flokoa")
    assert result["takeover_s"] is not None, "the standby never acquired the Lease"
    assert result["old_leader_status_writes_after_takeover"] == 0, result["offending_writes"]
    assert result["standby_status_writes_before_takeover"] == 0, result["offending_writes"]
    assert result["verify"]["wrong"] == 0
    assert result["new_leader_alive"] is True


@pytest.mark.slow
def test_adversarial_rotations_are_reflected_beside_hostile_namespaces(
    smoke: dict[str, Any],
) -> None:
    result = _result(smoke, "adversarial", "flokoa")
    hostile = result["hostile"]
    assert hostile["hostile_connections_held_at_start"] >= 1, "the attack never started"
    assert hostile["rotation"]["verify"]["wrong"] == 0
    assert result["quiet"]["rotation"]["verify"]["wrong"] == 0
    assert hostile["alive"] is True
    assert result["ok"] is True
