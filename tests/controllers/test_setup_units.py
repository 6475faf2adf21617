"""Index functions, flag parsing and the readiness gauges (no cluster needed)."""

from __future__ import annotations

import argparse

from prometheus_client import CollectorRegistry

from flokoa_controller.api.modelprovider import ModelProviderSpec
from flokoa_controller.controllers.identity import AmbientPolicy, identity_of
from flokoa_controller.controllers.metrics import ReadinessCollector, register_collector
from flokoa_controller.controllers.setup import (
    ControllerSettings,
    add_flags,
    models_by_provider,
    providers_by_secret,
)
from flokoa_controller.providers.identity import IdentitySettings
from flokoa_controller.providers.target import AmbientIdentity, ServiceAccountIdentity


def test_providers_by_secret_lists_every_reference_in_own_namespace() -> None:
    obj = {
        "metadata": {"name": "p", "namespace": "team"},
        "spec": {
            "apiKeySecretRef": {"name": "key"},
            "google": {"vertex": {"serviceAccountKeySecretRef": {"name": "sa"}}},
            "bedrock": {"credentialsSecretRef": {"name": "aws"}},
            "tls": {"caSecretRef": {"name": "key"}},
        },
    }
    assert providers_by_secret(obj) == ["team/key", "team/sa", "team/aws"]
    assert providers_by_secret({"metadata": {"name": "p", "namespace": "x"}, "spec": "junk"}) == []
    assert (
        providers_by_secret({"metadata": {"namespace": "x"}, "spec": {"apiKeySecretRef": 3}}) == []
    )


def test_models_by_provider() -> None:
    obj = {"metadata": {"namespace": "team"}, "spec": {"providerRef": {"name": "openai"}}}
    assert models_by_provider(obj) == ["team/openai"]
    assert models_by_provider({"metadata": {"namespace": "team"}, "spec": {}}) == []


def test_flags_and_settings(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FLOKOA_PROBE_CONCURRENCY_PER_HOST", "3")
    parser = argparse.ArgumentParser()
    add_flags(parser)
    args = parser.parse_args(["--provider-revalidate-interval", "2m30s"])
    settings = ControllerSettings.from_args(args)
    assert settings.revalidate_interval == 150
    assert settings.probe_concurrency_per_host == 3
    assert settings.probe_connect_timeout == 10
    assert settings.max_probe_timeout == 30
    assert (settings.max_concurrent_probes, settings.max_concurrent_probes_per_namespace) == (64, 8)
    assert ControllerSettings.from_args(argparse.Namespace()) == ControllerSettings()
    args = parser.parse_args(
        [
            "--max-probe-timeout=5s",
            "--max-concurrent-probes=10",
            "--max-concurrent-probes-per-namespace=2",
        ]
    )
    settings = ControllerSettings.from_args(args)
    assert settings.max_probe_timeout == 5
    assert (settings.max_concurrent_probes, settings.max_concurrent_probes_per_namespace) == (10, 2)


def test_identity_flags(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Defaults: no namespace may use the operator's identity, Google's and Entra's
    endpoints, no extra token URI or host; flags and FLOKOA_* variables set them."""
    parser = argparse.ArgumentParser()
    add_flags(parser)
    default = ControllerSettings.from_args(parser.parse_args([]))
    assert default.ambient_identity_namespaces == ()
    assert default.identity == IdentitySettings()
    assert default.identity.google_sts_url == "https://sts.googleapis.com/v1/token"
    assert default.identity.azure_authority_host == "https://login.microsoftonline.com"

    monkeypatch.setenv("FLOKOA_IDENTITY_ALLOWED_HOSTS", "gw.internal,*.llm.corp")
    parser = argparse.ArgumentParser()
    add_flags(parser)
    args = parser.parse_args(
        [
            "--ambient-identity-namespaces",
            "platform",
            "--ambient-identity-namespaces",
            "ops,infra",
            "--google-workload-identity-audience",
            "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k",
            "--google-token-uris",
            "https://oauth2.private/token",
            "--azure-authority-host",
            "https://login.microsoftonline.us",
            "--azure-tenant-id",
            "contoso.onmicrosoft.com",
        ]
    )
    settings = ControllerSettings.from_args(args)
    assert settings.ambient_identity_namespaces == ("platform", "ops", "infra")
    identity = settings.identity
    assert identity.google_workload_identity_audience is not None
    assert identity.google_token_uris == ("https://oauth2.private/token",)
    assert identity.azure_authority_host == "https://login.microsoftonline.us"
    assert identity.azure_tenant_id == "contoso.onmicrosoft.com"
    assert identity.allowed_hosts == ("gw.internal", "*.llm.corp")


def test_identity_of_a_spec() -> None:
    """Which identity a spec's probes use: its ServiceAccount, its Secrets, or — only where
    the administrator allows — the operator's own."""
    policy = AmbientPolicy.of(["platform"])
    vertex = {"google": {"vertex": {"projectID": "my-project", "location": "us-central1"}}}
    cases = [
        ({"serviceAccountName": "a", "bedrock": {"region": "us-east-1"}}, "team", "sa"),
        ({"bedrock": {"region": "us-east-1"}}, "team", "denied"),
        ({"bedrock": {"region": "us-east-1"}}, "platform", "ambient"),
        ({"apiKeySecretRef": {"name": "k"}, "bedrock": {"region": "us-east-1"}}, "team", None),
        (
            {"bedrock": {"region": "us-east-1", "credentialsSecretRef": {"name": "k"}}},
            "team",
            None,
        ),
        (vertex, "team", "denied"),
        ({"apiKeySecretRef": {"name": "k"}, "openai": {}}, "team", None),
    ]
    for raw, namespace, expected in cases:
        spec = ModelProviderSpec.model_validate(raw)
        identity = identity_of(spec, namespace, policy)
        kind = {
            ServiceAccountIdentity: "sa",
            AmbientIdentity: "ambient"
            if identity and getattr(identity, "allowed", 0)
            else "denied",
        }.get(type(identity))
        assert kind == expected, (raw, namespace)


def test_readiness_gauge_counts_the_store_at_scrape_time() -> None:
    objects: list[dict] = [
        {"status": {"provider": "openai", "ready": True}},
        {"status": {"provider": "openai", "ready": False}},
        {"status": {"provider": "openai", "ready": True}},
        {"status": "garbage"},
        {},
    ]
    registry = CollectorRegistry()
    unregister = register_collector(ReadinessCollector("t_objs", "doc", lambda: objects), registry)
    assert registry.get_sample_value("t_objs", {"provider": "openai", "ready": "true"}) == 2
    assert registry.get_sample_value("t_objs", {"provider": "openai", "ready": "false"}) == 1
    assert registry.get_sample_value("t_objs", {"provider": "bedrock", "ready": "true"}) == 0
    assert registry.get_sample_value("t_objs", {"provider": "unknown", "ready": "false"}) == 2
    objects.clear()
    assert registry.get_sample_value("t_objs", {"provider": "openai", "ready": "true"}) == 0
    unregister()
    unregister()
    assert registry.get_sample_value("t_objs", {"provider": "openai", "ready": "true"}) is None


def test_readiness_gauge_is_silent_while_inactive() -> None:
    """A standby (inactive) reports no sample at all, so `sum` over replicas counts once."""
    leading = False
    registry = CollectorRegistry()
    objects = [{"status": {"provider": "openai", "ready": True}}]
    collector = ReadinessCollector("t_objs", "doc", lambda: objects, active=lambda: leading)
    unregister = register_collector(collector, registry)
    assert registry.get_sample_value("t_objs", {"provider": "openai", "ready": "true"}) is None
    assert [m.samples for m in collector.collect()] == []
    leading = True
    assert registry.get_sample_value("t_objs", {"provider": "openai", "ready": "true"}) == 1
    unregister()


def test_zero_durations_are_refused_not_silently_defaulted(capsys) -> None:  # type: ignore[no-untyped-def]
    import pytest

    parser = argparse.ArgumentParser()
    add_flags(parser)
    for flag in ("--provider-revalidate-interval", "--probe-connect-timeout"):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([flag, "0s"])
        assert exc.value.code == 2
        assert "must be longer than zero" in capsys.readouterr().err
