"""Manager flags: defaults, environment variables, durations, bind addresses, validation."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from flokoa_controller.runtime.options import (
    DEFAULT_LEADER_ELECTION_ID,
    ManagerOptions,
    add_env_flag,
    add_manager_flags,
    env_name,
    options_from_args,
    parse_bind_address,
    parse_duration,
    pod_namespace,
)


def parse(argv: list[str]) -> ManagerOptions:
    parser = argparse.ArgumentParser()
    add_manager_flags(parser)
    return options_from_args(parser.parse_args(argv))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("2h", 7200.0),
        ("15", 15.0),
        ("0.5", 0.5),
        ("1h2m3.5s", 3723.5),
        ("250us", 0.00025),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "15x", "1m 30s", "-3", "abc", "5s5"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_parse_bind_address() -> None:
    assert parse_bind_address(":8080") == ("0.0.0.0", 8080)
    assert parse_bind_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_bind_address("[::1]:9000") == ("::1", 9000)
    assert parse_bind_address("0") is None
    for bad in ("8080", "host:port", ":70000"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_bind_address(bad)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("FLOKOA_NAMESPACE", "FLOKOA_LEADER_ELECT", "FLOKOA_LEASE_DURATION"):
        monkeypatch.delenv(var, raising=False)
    opts = parse([])
    assert opts.namespaces == ()
    assert opts.leader_elect is False
    assert opts.leader_election_id == DEFAULT_LEADER_ELECTION_ID
    assert (opts.lease_duration, opts.renew_deadline, opts.retry_period) == (15.0, 10.0, 2.0)
    assert opts.metrics_bind_address == ":8080"
    assert opts.health_probe_bind_address == ":8081"
    assert opts.max_concurrent_reconciles == 4
    assert opts.graceful_shutdown_timeout == 30.0
    assert opts.cache_sync_timeout == 120.0
    assert opts.watch_inactivity_timeout == 90.0
    assert opts.resync_period == 36000.0  # controller-runtime's SyncPeriod: 10 hours
    assert opts.event_loop == "auto"
    assert opts.log_format == "auto"
    assert opts.log_level == "info"


def test_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOKOA_NAMESPACE", raising=False)
    opts = parse(
        [
            "--namespace",
            "a",
            "--namespace",
            "b,c",
            "--leader-elect",
            "--lease-duration",
            "1m",
            "--renew-deadline",
            "40s",
            "--retry-period",
            "5s",
            "--metrics-bind-address",
            "0",
            "--max-concurrent-reconciles",
            "8",
            "--log-level",
            "DEBUG",
            "--log-format",
            "text",
            "--watch-inactivity-timeout",
            "0",
            "--no-streaming-list",
            "--sync-period",
            "5m",
            "--event-loop",
            "asyncio",
        ]
    )
    assert opts.namespaces == ("a", "b", "c")
    assert opts.leader_elect is True
    assert (opts.lease_duration, opts.renew_deadline, opts.retry_period) == (60.0, 40.0, 5.0)
    assert opts.metrics_bind_address == "0"
    assert opts.max_concurrent_reconciles == 8
    assert opts.log_level == "debug"
    assert opts.log_format == "text"
    assert opts.watch_inactivity_timeout is None
    assert opts.streaming_list is False
    assert opts.resync_period == 300.0
    assert opts.event_loop == "asyncio"
    assert parse(["--sync-period", "0"]).resync_period is None


def test_environment_variables_and_command_line_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOKOA_NAMESPACE", "x,y")
    monkeypatch.setenv("FLOKOA_LEADER_ELECT", "true")
    monkeypatch.setenv("FLOKOA_LEASE_DURATION", "20s")
    monkeypatch.setenv("FLOKOA_METRICS_BIND_ADDRESS", "127.0.0.1:9999")
    opts = parse([])
    assert opts.namespaces == ("x", "y")
    assert opts.leader_elect is True
    assert opts.lease_duration == 20.0
    assert opts.metrics_bind_address == "127.0.0.1:9999"
    # the command line wins, and a repeatable flag replaces the environment's list
    opts = parse(["--namespace", "z", "--no-leader-elect", "--lease-duration", "30"])
    assert opts.namespaces == ("z",)
    assert opts.leader_elect is False
    assert opts.lease_duration == 30.0


def test_invalid_environment_value_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOKOA_RETRY_PERIOD", "soon")
    parser = argparse.ArgumentParser()
    add_manager_flags(parser)
    with pytest.raises(SystemExit):
        parser.parse_args([])


def test_help_documents_every_flag_and_its_variable(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="run")
    add_manager_flags(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    flags = [a for action in parser._actions for a in action.option_strings if a.startswith("--")]
    for flag in flags:
        if flag in ("--help",) or flag.startswith("--no-"):
            continue
        assert flag in text
        assert env_name(flag) in text, flag
    assert "FLOKOA_" in text


def test_validation() -> None:
    ManagerOptions(leader_elect=True).validate()
    with pytest.raises(ValueError, match="lease-duration"):
        ManagerOptions(leader_elect=True, lease_duration=10, renew_deadline=10).validate()
    with pytest.raises(ValueError, match="renew-deadline"):
        ManagerOptions(leader_elect=True, renew_deadline=2.4, retry_period=2).validate()
    with pytest.raises(ValueError, match="max-concurrent"):
        ManagerOptions(max_concurrent_reconciles=0).validate()


def test_lease_namespace(tmp_path: Path) -> None:
    assert ManagerOptions(leader_election_namespace="ops").lease_namespace() == "ops"
    ns_file = tmp_path / "namespace"
    ns_file.write_text("flokoa-system\n")
    assert pod_namespace(ns_file) == "flokoa-system"
    assert pod_namespace(tmp_path / "missing") is None


def test_controllers_can_add_flags_with_the_same_convention(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOKOA_PROBE_INTERVAL", "5m")
    parser = argparse.ArgumentParser()
    add_env_flag(parser, "--probe-interval", type=parse_duration, default="10m", help="Probe.")
    assert parser.parse_args([]).probe_interval == 300.0
    assert parser.parse_args(["--probe-interval", "1m"]).probe_interval == 60.0
