"""End to end: namespaces are a boundary, secrets never leak, and a converged cluster costs
nothing (no status write, no probe), not even after a restart."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import pytest
from prometheus_client import REGISTRY, generate_latest

from flokoa_controller.controllers.resources import MODELPROVIDERS, MODELS
from flokoa_controller.kube.resources import NAMESPACES

if TYPE_CHECKING:
    from conftest import Harness, MakeHarness

CANARY = "sk-canary-7f3a9-DO-NOT-LEAK-0b1e"


async def test_reference_never_reaches_another_namespace(make_harness: MakeHarness) -> None:
    async with make_harness(all_namespaces=True) as h:
        other = f"{h.namespace}-other"
        await h.client.create(
            NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}}
        )
        h.created_namespaces.append(other)
        await h.put_secret("shared", {"api-key": h.fakes.openai.api_key}, namespace=other)
        await h.put_provider("p", h.openai_spec(secret="shared"))
        obj = await h.wait_reason("provider", "p", "SecretNotFound", status="False")
        assert f'"{h.namespace}/shared"' in h.ready_condition(obj)["message"]  # type: ignore[index]
        # the cache does hold the other namespace's Secret (as a digest)...
        cached = h.controllers.secrets.store.get_by("shared", other)
        assert cached is not None
        assert "data" not in cached
        # ...but nothing ever read it, nor any Secret of that name
        if h.api is not None:
            reads = [e for e in h.api.audit.filter(verb="get", resource="secrets") if e.name]
            assert not [e for e in reads if e.name == "shared"], reads
        assert not h.fakes.openai.requests


async def test_canary_secret_never_leaks(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    caplog.set_level(logging.DEBUG)
    f = h.fakes
    # the fake OpenAI echoes a rejected key in its 401 body, in full
    await h.put_secret("canary", {"api-key": CANARY, "spare": CANARY})
    await h.put_provider("echoed", h.openai_spec(secret="canary"))
    await h.put_model("m", "echoed", "gpt-4o")
    await h.put_secret("broken", {"api-key": f"{CANARY}\r\nX-Injected: 1"})
    await h.put_provider("broken", h.openai_spec(secret="broken"))
    await h.put_secret(
        "aws", {"AWS_ACCESS_KEY_ID": "AKIAFAKEFAKE0001", "AWS_SECRET_ACCESS_KEY": CANARY}
    )
    await h.put_provider(
        "bedrock",
        {
            "bedrock": {
                "region": "us-east-1",
                "endpointURL": f.bedrock.url,
                "credentialsSecretRef": {"name": "aws"},
            }
        },
    )
    sa = {
        "type": "service_account",
        "client_email": "x@fake-project.iam.gserviceaccount.com",
        "token_uri": f.google_oauth.token_uri,
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{CANARY}\n-----END PRIVATE KEY-----\n",
    }
    await h.put_secret("sa", {"credentials.json": json.dumps(sa)})
    await h.put_provider(
        "vertex",
        {
            "google": {
                "baseURL": f.vertex.base_url,
                "vertex": {
                    "projectID": "fake-project",
                    "location": "global",
                    "serviceAccountKeySecretRef": {"name": "sa"},
                },
            }
        },
    )
    await h.wait_reason("provider", "echoed", "InvalidCredentials")
    await h.wait_reason("model", "m", "ProviderNotReady")
    await h.wait_reason("provider", "broken", "InvalidSecret")
    await h.wait_reason("provider", "bedrock", "InvalidCredentials")
    await h.wait_reason("provider", "vertex", "InvalidSecret")
    assert any(
        CANARY in r.body.decode(errors="replace") or CANARY in str(r.headers)
        for r in f.openai.requests
    ), "the canary did travel to the provider"
    await h.wait_event("echoed", "ProbeFailed")
    await h.controllers.recorder.flush()

    captured: dict[str, str] = {
        "logs": "\n".join(
            f"{r.getMessage()} {r.__dict__} {r.exc_text or ''}" for r in caplog.records
        ),
        "log text": caplog.text,
        "events": json.dumps(await h.events()),
        "status": json.dumps(
            [
                o.get("status")
                for rt in (MODELPROVIDERS, MODELS)
                for o in (await h.client.list(rt, h.namespace))["items"]
            ]
        ),
        "cache": repr(h.controllers.secrets.store.list()),
        "metrics": generate_latest(REGISTRY).decode(),
    }
    assert "InvalidCredentials" in captured["status"]
    assert "<redacted>" in captured["status"] or "Incorrect API key" in captured["status"]
    for where, text in captured.items():
        assert CANARY not in text, f"canary leaked into {where}"
        assert CANARY[:20] not in text, f"canary prefix leaked into {where}"


async def _converged(h: Harness) -> list[str]:
    f = h.fakes
    await h.put_secret("ok", {"api-key": f.openai.api_key})
    await h.put_secret("bad", {"api-key": "sk-fake-unknown"})
    names = []
    for i in range(5):
        await h.put_provider(f"ok-{i}", h.openai_spec(secret="ok"))
        await h.put_model(f"m-{i}", f"ok-{i}", "gpt-4o")
        names.append(f"ok-{i}")
    await h.put_provider("bad", h.openai_spec(secret="bad"))
    await h.put_provider("missing", h.openai_spec(secret="absent"))
    await h.put_model("m-bad", "bad", "gpt-4o")
    await h.put_model("m-none", "nobody", "gpt-4o")
    await h.put_model("m-unknown", "ok-0", "gpt-unknown")
    for name in names:
        await h.wait_reason("provider", name, "ProbeSucceeded")
        await h.wait_reason("model", f"m-{name[3:]}", "ModelFound")
    await h.wait_reason("provider", "bad", "InvalidCredentials")
    await h.wait_reason("provider", "missing", "SecretNotFound")
    await h.wait_reason("model", "m-bad", "ProviderNotReady")
    await h.wait_reason("model", "m-none", "ProviderNotFound")
    await h.wait_reason("model", "m-unknown", "ModelNotFound")
    await h.settle()
    return [*names, "bad", "missing"]


async def test_converged_cluster_costs_nothing_even_after_restart(harness: Harness) -> None:
    h = harness
    if h.api is None:
        pytest.skip("needs the envtest audit log")
    providers = await _converged(h)
    writes = len(h.status_writes()) + len(h.status_writes("models"))
    probes = len(h.fakes.openai.requests)

    # touch every provider's metadata: each is reconciled, nothing is written or probed
    before = h.reconciles("modelprovider")
    for name in providers:
        await h.client.patch(
            MODELPROVIDERS, name, {"metadata": {"labels": {"touched": "1"}}}, h.namespace
        )
    await h.settle({"modelprovider": before + len(providers)})
    assert len(h.status_writes()) + len(h.status_writes("models")) == writes
    assert len(h.fakes.openai.requests) == probes

    # restart: fresh caches, every object reconciled again, still nothing written or probed
    before_p, before_m = h.reconciles("modelprovider"), h.reconciles("model")
    await h.restart()
    await h.settle({"modelprovider": before_p + len(providers), "model": before_m + 8})
    assert len(h.status_writes()) + len(h.status_writes("models")) == writes
    assert len(h.fakes.openai.requests) == probes
    # and the restarted controller still works
    await h.put_secret("bad", {"api-key": h.fakes.openai.api_key})
    await h.wait_reason("provider", "bad", "ProbeSucceeded")
    await h.wait_reason("model", "m-bad", "ModelFound")


async def test_unrelated_secrets_cause_no_work(harness: Harness) -> None:
    h = harness
    await h.put_secret("ok", {"api-key": h.fakes.openai.api_key})
    await h.put_provider("p", h.openai_spec(secret="ok"))
    await h.wait_reason("provider", "p", "ProbeSucceeded")
    await h.settle()

    def adds() -> float:
        return (
            REGISTRY.get_sample_value(
                "workqueue_adds_total", {"name": "modelprovider", "controller": "modelprovider"}
            )
            or 0.0
        )

    before = adds()
    for i in range(3):
        written = await h.put_secret("unrelated", {"api-key": f"v{i}"})
        rv = written["metadata"]["resourceVersion"]
        await h.wait_for(
            lambda rv=rv: (
                (h.controllers.secrets.store.get_by("unrelated", h.namespace) or {})
                .get("metadata", {})
                .get("resourceVersion")
                == rv
            ),
            what="the informer to see the unrelated Secret",
        )
    assert adds() == before
    # while a change to the referenced Secret does enqueue the provider
    await h.put_secret("ok", {"api-key": h.fakes.openai.api_key, "extra": "x"})
    await h.wait_for(lambda: adds() > before, what="the provider to be enqueued")
