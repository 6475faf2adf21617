"""End to end: a re-validation whose outcome is unchanged writes nothing.

Probes and model checks are counted from the fake's request log (the provider probe is
``GET /v1/models``, a model check ``GET /v1/models/{id}``), status writes from envtest's
audit log. The re-validation interval is short (0.5 s) so several pass in a test; the
restart test uses a clock the test moves by hand instead.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from flokoa_envtest.testing import StoppedClock

from flokoa_controller.controllers.setup import ControllerSettings

if TYPE_CHECKING:
    from conftest import MakeHarness

INTERVAL = 0.5


async def test_unchanged_revalidations_write_nothing(make_harness: MakeHarness) -> None:
    """Several intervals pass: the provider is probed and the Model checked again each
    time, and no status is written; a revoked key then costs exactly one provider write
    (with a new lastProbeTime), and the re-validations after it none."""
    async with make_harness(settings=ControllerSettings(revalidate_interval=INTERVAL)) as h:
        if h.api is None:
            pytest.skip("needs the envtest audit log")
        key = h.fakes.openai.keys.new()
        await h.put_secret("openai-key", {"api-key": key})
        await h.put_provider("p", h.openai_spec())
        await h.put_model("m", "p", "gpt-4o")
        converged = await h.wait_reason("provider", "p", "ProbeSucceeded")
        await h.wait_reason("model", "m", "ModelFound", status="True")
        await h.settle()
        written, probes, checks = h.write_counts(), h.provider_probes(), h.model_checks()

        await h.wait_for(
            lambda: h.provider_probes() >= probes + 3 and h.model_checks() >= checks + 3,
            what="three re-validations",
        )
        assert h.write_counts() == written, "an unchanged re-validation wrote a status"
        provider = h.provider("p")
        assert provider is not None
        assert provider["status"]["lastProbeTime"] == converged["status"]["lastProbeTime"]

        # more than a second has passed since the converging probe: a new lastProbeTime
        h.fakes.openai.keys.revoke(key)
        bad = await h.wait_reason("provider", "p", "InvalidCredentials", status="False")
        await h.wait_reason("model", "m", "ProviderNotReady", status="False")
        assert bad["status"]["lastProbeTime"] > converged["status"]["lastProbeTime"]
        assert h.write_counts()[0] == written[0] + 1
        # the Model's own re-check may see the revoked key before its provider's probe
        # does (InvalidCredentials, then ProviderNotReady): one or two outcome changes
        assert written[1] + 1 <= h.write_counts()[1] <= written[1] + 2
        written, probes = h.write_counts(), h.provider_probes()
        await h.wait_for(lambda: h.provider_probes() >= probes + 3, what="more re-validations")
        await h.settle()
        assert h.write_counts() == written, "an unchanged failing re-validation wrote a status"


async def test_restart_spreads_overdue_revalidations(make_harness: MakeHarness) -> None:
    """After a restart, providers and Models overdue by their status are neither probed
    nor written at once: each is due at a point within one interval, spread by UID."""
    clock = StoppedClock()
    async with make_harness(now=clock) as h:
        if h.api is None:
            pytest.skip("needs the envtest audit log")
        await h.put_secret("openai-key", {"api-key": h.fakes.openai.api_key})
        names = [f"p{i}" for i in range(4)]
        for name in names:
            await h.put_provider(name, h.openai_spec())
            await h.put_model(f"m-{name}", name, "gpt-4o")
        for name in names:
            await h.wait_reason("provider", name, "ProbeSucceeded")
            await h.wait_reason("model", f"m-{name}", "ModelFound", status="True")
        await h.settle()
        written, probes, checks = h.write_counts(), h.provider_probes(), h.model_checks()
        assert (probes, checks) == (4, 4)

        clock.advance(3600)  # every status is far overdue
        before = h.reconciles("modelprovider"), h.reconciles("model")
        await h.restart()
        await h.settle({"modelprovider": before[0] + 4, "model": before[1] + 4})
        assert (h.provider_probes(), h.model_checks()) == (probes, checks), "a probe burst"
        assert h.write_counts() == written, "a status was written after the restart"

        interval = h.controllers.provider_reconciler.schedule.interval
        for reconciler, kind, prefix in (
            (h.controllers.provider_reconciler, "provider", ""),
            (h.controllers.model_reconciler, "model", "m-"),
        ):
            dues = []
            for name in names:
                obj = h.provider(name) if kind == "provider" else h.model(prefix + name)
                assert obj is not None
                due = reconciler.due.get(f"{h.namespace}/{prefix}{name}", obj["metadata"]["uid"])
                assert due is not None
                assert clock() <= due < clock() + timedelta(seconds=interval)
                dues.append(due)
            assert len(set(dues)) == len(names), f"{kind}s due at the same time"


async def test_resyncs_cost_no_probe_and_no_write(make_harness: MakeHarness) -> None:
    """Every cached object is replayed to the controllers (``--sync-period``) several
    times: each replay is a reconcile, and none probes, checks or writes."""
    async with make_harness() as h:
        if h.api is None:
            pytest.skip("needs the envtest audit log")
        await h.put_secret("openai-key", {"api-key": h.fakes.openai.api_key})
        await h.put_provider("p", h.openai_spec())
        await h.put_model("m", "p", "gpt-4o")
        await h.wait_reason("provider", "p", "ProbeSucceeded")
        await h.wait_reason("model", "m", "ModelFound", status="True")
        await h.settle()
        written, probes, checks = h.write_counts(), h.provider_probes(), h.model_checks()
        reconciles = h.reconciles("modelprovider"), h.reconciles("model")
        for _ in range(3):
            for informer in (h.controllers.providers, h.controllers.models, h.controllers.secrets):
                informer.resync()
            await h.settle()
        assert h.reconciles("modelprovider") >= reconciles[0] + 3
        assert h.reconciles("model") >= reconciles[1] + 3
        assert (h.write_counts(), h.provider_probes(), h.model_checks()) == (
            written,
            probes,
            checks,
        )
