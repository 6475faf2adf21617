"""`--deny-destinations` / `--allow-destinations`: parsing, environment, defaults, dev."""

from __future__ import annotations

import argparse

import pytest
from flokoa_envtest.dev import dev_settings

from flokoa_controller.controllers.setup import ControllerSettings, add_flags
from flokoa_controller.providers.destinations import DestinationNotAllowed


def parse(argv: list[str]) -> ControllerSettings:
    parser = argparse.ArgumentParser()
    add_flags(parser)
    return ControllerSettings.from_args(parser.parse_args(argv))


def test_flags_are_comma_separated_and_repeatable() -> None:
    settings = parse(
        [
            "--deny-destinations",
            "10.0.0.0/8,*.internal",
            "--allow-destinations=10.20.0.0/16",
            "--allow-destinations=gateway.internal",
        ]
    )
    assert settings.deny_destinations == ("10.0.0.0/8", "*.internal")
    assert settings.allow_destinations == ("10.20.0.0/16", "gateway.internal")
    policy = settings.destination_policy()
    assert policy.name_refusal("10.1.0.1") is not None
    assert policy.name_refusal("10.20.3.4") is None
    assert policy.name_refusal("vault.internal") is not None
    assert policy.name_refusal("gateway.internal") is None


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOKOA_DENY_DESTINATIONS", "192.168.0.0/16")
    monkeypatch.setenv("FLOKOA_ALLOW_DESTINATIONS", "127.0.0.1,fe80::1")
    settings = parse([])
    assert settings.deny_destinations == ("192.168.0.0/16",)
    assert settings.allow_destinations == ("127.0.0.1", "fe80::1")


def test_invalid_entry_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(["--deny-destinations", "10.0.0.0/40"])
    assert "--deny-destinations" in capsys.readouterr().err


def test_defaults_deny_loopback_metadata_and_the_api_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    policy = parse([]).destination_policy("https://10.0.0.1:6443")
    for host in ("127.0.0.1", "::1", "169.254.169.254", "metadata.google.internal"):
        assert policy.name_refusal(host) is not None, host
    for host in ("10.96.0.1", "10.0.0.1"):
        assert "Kubernetes API server" in (policy.name_refusal(host) or ""), host
    assert policy.name_refusal("10.0.0.2") is None  # private ranges stay allowed


async def test_dev_allows_loopback_and_nothing_else() -> None:
    parser = argparse.ArgumentParser()
    add_flags(parser)
    settings = dev_settings(parser.parse_args([]))
    assert "127.0.0.0/8" in settings.allow_destinations
    policy = settings.destination_policy()
    assert policy.name_refusal("127.0.0.1") is None
    with pytest.raises(DestinationNotAllowed):
        await policy.check("169.254.169.254")
