"""End to end: the Secret informer leaves Helm release Secrets out (server-side field
selector), and the controllers are wired to their shared pieces as documented."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from flokoa_controller.controllers.setup import SECRET_FIELD_SELECTOR
from flokoa_controller.kube.resources import SECRETS

if TYPE_CHECKING:
    from conftest import Harness

HELM_TYPE = "helm.sh/release.v1"


async def test_helm_release_secrets_are_neither_listed_nor_watched(harness: Harness) -> None:
    h = harness
    ns = h.namespace
    release = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "sh.helm.release.v1.app.v1", "namespace": ns},
        "type": HELM_TYPE,
        "data": {"release": h.b64("H4sI" + "x" * 4096), "api-key": h.b64(h.fakes.openai.api_key)},
    }
    await h.client.create(SECRETS, release, ns)
    await h.put_secret("plain", {"api-key": h.fakes.openai.api_key})
    # Events arrive in resourceVersion order: once the later Secret is cached, the release
    # Secret would have been too, had the watch selected it.
    await h.wait_for(
        lambda: h.controllers.secrets.store.get_by("plain", ns), what="the Opaque Secret cached"
    )
    assert h.controllers.secrets.store.get_by(release["metadata"]["name"], ns) is None
    assert all(s.get("type") != HELM_TYPE for s in h.controllers.secrets.store.list())

    # A ModelProvider cannot use it (documented): not found, and never read.
    await h.put_provider("helm", h.openai_spec(secret=release["metadata"]["name"]))
    obj = await h.wait_reason("provider", "helm", "SecretNotFound", status="False")
    assert release["metadata"]["name"] in h.ready_condition(obj)["message"]  # type: ignore[index]
    await h.put_provider("plain", h.openai_spec(secret="plain"))
    await h.wait_reason("provider", "plain", "ProbeSucceeded", status="True")

    if h.api is not None:
        operator = [
            e
            for e in h.api.audit.filter(resource="secrets", namespace=ns)
            if e.verb in ("list", "watch") and not e.user_agent.startswith("flokoa-controllers-t")
        ]
        assert operator, "the Secret informer made no list or watch"
        assert {e.query.get("fieldSelector") for e in operator} == {SECRET_FIELD_SELECTOR}
        reads = h.api.audit.filter(verb="get", resource="secrets", namespace=ns)
        assert [e.name for e in reads if e.name == release["metadata"]["name"]] == []


async def test_shared_informers_and_views_are_wired(harness: Harness) -> None:
    h = harness
    # The Secret informer is shared: another user cannot silently widen or narrow it.
    assert h.manager.informer(SECRETS, field_selector=SECRET_FIELD_SELECTOR) is (
        h.controllers.secrets
    )
    with pytest.raises(ValueError, match="field selector"):
        h.manager.informer(SECRETS)
    # Models read their provider through the provider status writer's read-your-writes view.
    writer = h.controllers.provider_reconciler.writer
    assert h.controllers.model_reconciler.latest_provider == writer.latest
