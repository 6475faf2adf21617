"""End to end: the watch's echo of the controllers' own status writes is not reconciled.

A status write comes back through the watch as an update with the resourceVersion the
write returned. The reconcile that wrote it already acted on that state (the write was
optimistically locked), so the controllers' watches drop that one event; any other
update, including somebody else's edit of the status, is reconciled as before.

The watch may deliver the echo before the write's reply: a real kube-apiserver often does
(seen on v1.32.6, where this test counted one reconcile too many before the writer
recognised an echo arriving while its write was in flight). envtest answers first unless
``faults.write_reply_delay`` holds the replies, which the second variant does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from flokoa_controller.controllers.modelprovider import ModelProviderReconciler
from flokoa_controller.controllers.resources import MODELPROVIDERS

if TYPE_CHECKING:
    from conftest import Harness


@pytest.mark.parametrize("reply_delay", [0.0, 0.3], ids=["reply-first", "watch-first"])
async def test_own_write_costs_one_reconcile(harness: Harness, reply_delay: float) -> None:
    h = harness
    if reply_delay:
        if h.api is None:
            pytest.skip("needs envtest's write_reply_delay (a real server races by itself)")
        h.api.faults.write_reply_delay = reply_delay  # every echo arrives before its reply
    await h.put_secret("openai-key", {"api-key": h.fakes.openai.api_key})
    await h.put_model("m", "p", "gpt-4o")  # waits for its provider
    await h.wait_reason("model", "m", "ProviderNotFound", status="False")
    await h.settle()
    providers0 = h.reconciles("modelprovider")
    models0 = h.reconciles("model")

    await h.put_provider("p", h.openai_spec())
    await h.wait_reason("provider", "p", "ProbeSucceeded")
    await h.wait_reason("model", "m", "ModelFound", status="True")
    reconciler = h.controllers.provider_reconciler
    assert isinstance(reconciler, ModelProviderReconciler)
    # both writes are in the caches (their echoes handled) and nothing is queued
    await h.wait_for(
        lambda: (
            reconciler.writer.pending() == 0
            and h.controllers.model_reconciler.writer.pending() == 0
            and h.idle()
        ),
        what="echoes delivered",
    )
    # the provider: its ADDED event (which starts the probe) and the probe's completion
    # (which writes), and not its own status write
    assert h.reconciles("modelprovider") - providers0 == 2
    # the Model: re-triggered by the provider's status (once per provider event: the
    # provider's ADDED and its status write, which starts the check), the check's
    # completion, and not by its own status write
    assert h.reconciles("model") - models0 == 3

    # somebody else edits the status: reconciled, and put back
    obj = h.provider("p")
    assert obj is not None
    await h.client.patch(
        MODELPROVIDERS,
        "p",
        {"status": {"ready": False}},
        h.namespace,
        patch_type="merge",
        subresource="status",
    )
    await h.wait_for(
        lambda: (
            (h.provider("p") or {}).get("status", {}).get("ready") is True
            and h.reconciles("modelprovider") - providers0 == 4  # start + completion
        ),
        what="the foreign status edit reconciled and reverted",
    )
