"""End to end: Model reasons, and Models following their provider (through the index)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flokoa_controller.controllers.resources import MODELPROVIDERS
from flokoa_controller.kube.resources import NAMESPACES

if TYPE_CHECKING:
    from conftest import Harness, MakeHarness
    from flokoa_envtest.testing import Kubectl


async def test_model_reasons_follow_the_provider(harness: Harness) -> None:
    h = harness
    await h.put_model("early", "later", "gpt-4o")
    obj = await h.wait_reason("model", "early", "ProviderNotFound", status="False")
    assert h.condition(obj, "ProviderReady")["status"] == "False"
    assert h.condition(obj, "ModelAvailable")["status"] == "Unknown"
    assert f'"{h.namespace}/later"' in h.ready_condition(obj)["message"]  # type: ignore[index]
    await h.wait_event("early", "ProviderNotFound")

    # the provider appears without its Secret: the Model waits on it
    await h.put_provider("later", h.openai_spec(secret="later-key"))
    obj = await h.wait_reason("model", "early", "ProviderNotReady", status="False")
    assert "SecretNotFound" in h.ready_condition(obj)["message"]  # type: ignore[index]
    # the Secret appears: provider Ready, then the Model (no Model event needed)
    await h.put_secret("later-key", {"api-key": h.fakes.openai.api_key})
    await h.wait_reason("provider", "later", "ProbeSucceeded")
    obj = await h.wait_reason("model", "early", "ModelFound", status="True")
    assert obj["status"]["provider"] == "openai"
    await h.wait_event("early", "ModelReady")

    # a model the account does not have
    await h.put_model("imaginary", "later", "gpt-imaginary")
    obj = await h.wait_reason("model", "imaginary", "ModelNotFound", status="False")
    available = h.condition(obj, "ModelAvailable")
    assert (available["status"], available["reason"]) == ("False", "ModelNotFound")
    assert "gpt-imaginary" in available["message"]
    assert "404" in available["message"]

    # a transient failure of the model check is reported, then retried to success
    h.fakes.openai.force(503, path="/v1/models/gpt-4o-mini", times=1)
    await h.put_model("flaky", "later", "gpt-4o-mini")
    await h.wait_reason("model", "flaky", "ProviderUnavailable", status="False")
    await h.wait_reason("model", "flaky", "ModelFound", status="True", within=10)

    # the provider is deleted: its Models say so
    await h.client.delete(MODELPROVIDERS, "later", h.namespace)
    await h.wait_reason("model", "early", "ProviderNotFound", status="False")


async def test_provider_ref_stays_in_the_model_namespace(make_harness: MakeHarness) -> None:
    async with make_harness(all_namespaces=True) as h:
        await h.put_secret("k", {"api-key": h.fakes.openai.api_key})
        await h.put_provider("shared", h.openai_spec(secret="k"))
        await h.wait_reason("provider", "shared", "ProbeSucceeded")
        other = f"{h.namespace}-b"
        await h.client.create(
            NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}}
        )
        h.created_namespaces.append(other)
        own = h.namespace
        h.namespace = other
        try:
            await h.put_model("m", "shared", "gpt-4o")
            await h.wait_reason("model", "m", "ProviderNotFound", status="False")
        finally:
            h.namespace = own


async def test_connectivity_test_with_kubectl(harness: Harness, kubectl: Kubectl) -> None:
    """The user spec's check: `kubectl get model connectivity-test -w` turns ready."""
    h = harness
    ns = h.namespace
    await h.put_secret("openai-credentials", {"api-key": h.fakes.openai.api_key})
    await h.put_provider("openai-provider", h.openai_spec(secret="openai-credentials"))
    manifest = f"""
apiVersion: agent.flokoa.ai/v1alpha1
kind: Model
metadata:
  name: connectivity-test
  namespace: {ns}
spec:
  model: "gpt-4o-mini"
  providerRef:
    name: openai-provider
"""
    # kubectl get -w fails fast on a missing object: create it first, then watch
    await kubectl("apply", "-f", "-", input=manifest)
    watch = await kubectl.start("get", "model", "connectivity-test", "-n", ns, "-w")
    line = await watch.wait_for_line(lambda text: "true" in text.split())
    assert line.split()[:4] == ["connectivity-test", "gpt-4o-mini", "openai-provider", "true"]
    listing = await kubectl("get", "modelproviders", "-n", ns)
    header, row = listing.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "PROVIDER", "READY", "REASON", "AGE"]
    assert row.split()[:4] == ["openai-provider", "openai", "true", "ProbeSucceeded"]
