"""End to end: Secret rotation (API key and CA), revocation found by re-validation, the TLS
settings matrix and the environment's proxy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trustme
from flokoa_envtest.fakes import FakeProxy

from flokoa_controller.controllers.setup import ControllerSettings

if TYPE_CHECKING:
    from conftest import Harness, MakeHarness


async def test_api_key_rotation(harness: Harness) -> None:
    h = harness
    keys = h.fakes.openai.keys
    await h.put_secret("openai-key", {"api-key": h.fakes.openai.api_key})
    await h.put_provider("p", h.openai_spec())
    await h.put_model("m", "p", "gpt-4o")
    first = await h.wait_reason("provider", "p", "ProbeSucceeded", status="True")
    await h.wait_reason("model", "m", "ModelFound")
    hash1 = first["status"]["secretHash"]

    # a new valid key: new secretHash, a fresh probe with the new key, still Ready
    new_key = keys.new()
    await h.put_secret("openai-key", {"api-key": new_key})
    second = await h.wait_reason(
        "provider", "p", "ProbeSucceeded", where=lambda o: o["status"]["secretHash"] != hash1
    )
    assert h.fakes.openai.requests[-1].header("Authorization") is not None
    auths = [r.header("Authorization") for r in h.fakes.openai.requests]
    assert f"Bearer {new_key}" in auths
    hash2 = second["status"]["secretHash"]

    # the provider revokes it, and the Secret is rotated to that revoked key: not Ready
    keys.revoke(new_key)
    revoked = keys.new()
    keys.revoke(revoked)
    await h.put_secret("openai-key", {"api-key": revoked})
    bad = await h.wait_reason("provider", "p", "InvalidCredentials", status="False")
    assert bad["status"]["secretHash"] not in (hash1, hash2)
    await h.wait_reason("model", "m", "ProviderNotReady", status="False")
    await h.wait_event("p", "ProbeFailed")

    # fixed: Ready again, and so is the Model
    await h.put_secret("openai-key", {"api-key": h.fakes.openai.api_key})
    fixed = await h.wait_reason("provider", "p", "ProbeSucceeded", status="True")
    assert fixed["status"]["secretHash"] == hash1  # same bytes, same hash
    await h.wait_reason("model", "m", "ModelFound", status="True")
    # recoveries are events (a first Ready is not: the status says it)
    await h.wait_event("p", "ProviderReady")
    await h.wait_event("m", "ModelReady")
    normal = [(e["involvedObject"]["name"], e["reason"], e["count"]) for e in await h.events()]
    assert sorted(n for n in normal if n[1] in ("ProviderReady", "ModelReady")) == [
        ("m", "ModelReady", 1),
        ("p", "ProviderReady", 1),
    ]


async def test_revocation_found_by_revalidation(make_harness: MakeHarness) -> None:
    """Nothing changes in the cluster; the provider revokes the key; re-validation sees it."""
    async with make_harness(settings=ControllerSettings(revalidate_interval=0.5)) as h:
        key = h.fakes.openai.keys.new()
        await h.put_secret("openai-key", {"api-key": key})
        await h.put_provider("p", h.openai_spec())
        await h.put_model("m", "p", "gpt-4o")
        await h.wait_reason("provider", "p", "ProbeSucceeded")
        await h.wait_reason("model", "m", "ModelFound")
        h.fakes.openai.keys.revoke(key)
        await h.wait_reason("provider", "p", "InvalidCredentials", within=10)
        await h.wait_reason("model", "m", "ProviderNotReady", within=10)
        h.fakes.openai.keys.add(key)
        await h.wait_reason("provider", "p", "ProbeSucceeded", within=10)
        # the Model is re-checked at its own re-validation interval (the model existence too):
        # the provider's unchanged probes write nothing, so they no longer bring it back
        h.fakes.openai.models.discard("gpt-4o")
        await h.wait_reason("model", "m", "ModelNotFound", within=10)


async def test_ca_rotation(harness: Harness) -> None:
    h = harness
    server = h.tls_openai
    wrong = trustme.CA()
    await h.put_secret("k", {"api-key": server.api_key})
    await h.put_secret("ca", {"ca.crt": wrong.cert_pem.bytes()})
    spec = {
        "apiKeySecretRef": {"name": "k"},
        "openai": {"baseURL": server.base_url, "timeoutSeconds": 5},
        "tls": {"caSecretRef": {"name": "ca"}},
    }
    await h.put_provider("p", spec)
    first = await h.wait_reason("provider", "p", "TLSVerificationFailed", status="False")
    await h.put_secret("ca", {"ca.crt": h.ca.cert_pem.bytes()})
    ok = await h.wait_reason("provider", "p", "ProbeSucceeded", status="True")
    assert ok["status"]["secretHash"] != first["status"]["secretHash"]
    # a bundle holding the old and the new CA (a rotation in progress) still works
    await h.put_secret("ca", {"ca.crt": wrong.cert_pem.bytes() + h.ca.cert_pem.bytes()})
    both = await h.wait_reason(
        "provider",
        "p",
        "ProbeSucceeded",
        where=lambda o: o["status"]["secretHash"] != ok["status"]["secretHash"],
    )
    assert both["status"]["ready"] is True
    await h.put_secret("ca", {"ca.crt": wrong.cert_pem.bytes()})
    await h.wait_reason("provider", "p", "TLSVerificationFailed", status="False")


async def test_tls_matrix(harness: Harness, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h = harness
    server = h.tls_openai
    # the "system" bundle: a CA unrelated to the server's
    system = tmp_path / "system.pem"
    system.write_bytes(trustme.CA().cert_pem.bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(system))
    await h.put_secret("k", {"api-key": server.api_key})
    await h.put_secret("ca", {"ca.crt": h.ca.cert_pem.bytes()})
    await h.put_secret("other-ca", {"ca.crt": trustme.CA().cert_pem.bytes()})
    base = {"apiKeySecretRef": {"name": "k"}, "openai": {"baseURL": server.base_url}}
    cases = {
        "custom-ca": ({"caSecretRef": {"name": "ca"}}, "ProbeSucceeded"),
        "custom-and-system": (
            {"caSecretRef": {"name": "ca"}, "useSystemCAs": True},
            "ProbeSucceeded",
        ),
        "wrong-ca": ({"caSecretRef": {"name": "other-ca"}}, "TLSVerificationFailed"),
        "system-only": ({}, "TLSVerificationFailed"),
        "insecure": ({"insecureSkipVerify": True}, "ProbeSucceeded"),
    }
    for name, (tls, _) in cases.items():
        await h.put_provider(name, {**base, "tls": tls})
    for name, (_, reason) in cases.items():
        obj = await h.wait_reason("provider", name, reason)
        ready = h.ready_condition(obj)
        assert ready is not None
        if name == "insecure":
            assert ready["status"] == "True"
            assert "TLS certificate verification is disabled" in ready["message"]
        else:
            assert "verification is disabled" not in ready["message"]
    event = await h.wait_event("insecure", "InsecureTLS")
    assert event["type"] == "Warning"
    assert not [e for e in await h.events("custom-ca") if e["reason"] == "InsecureTLS"]


async def test_probe_goes_through_the_environment_proxy(harness: Harness, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """HTTPS_PROXY carries the probe (CONNECT, TLS end to end); NO_PROXY bypasses it."""
    h = harness
    server = h.tls_openai
    target = server.url.removeprefix("https://")
    await h.put_secret("k", {"api-key": server.api_key})
    await h.put_secret("ca", {"ca.crt": h.ca.cert_pem.bytes()})
    spec = {
        "apiKeySecretRef": {"name": "k"},
        "openai": {"baseURL": server.base_url, "timeoutSeconds": 5},
        "tls": {"caSecretRef": {"name": "ca"}},
    }
    async with FakeProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        await h.put_provider("via-proxy", spec)
        await h.wait_reason("provider", "via-proxy", "ProbeSucceeded")
        assert target in proxy.connects
        seen = len(proxy.connects)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        await h.put_provider("direct", spec)
        await h.wait_reason("provider", "direct", "ProbeSucceeded")
        assert len(proxy.connects) == seen
