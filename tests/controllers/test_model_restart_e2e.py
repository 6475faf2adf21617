"""End to end: after a restart, when a Model is checked again is read from its status.

The wall clock of the controllers is a :class:`StoppedClock` the test moves by hand, so
"nothing is due yet" and "the backoff has passed" do not depend on how fast the machine is.
Model checks are counted from the fake's request log (``GET /v1/models/{id}``; the provider
probe is ``GET /v1/models``), status writes from envtest's audit log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from flokoa_envtest.testing import StoppedClock

from flokoa_controller.controllers.conditions import format_time
from flokoa_controller.controllers.model import provider_hash
from flokoa_controller.controllers.resources import MODELPROVIDERS

if TYPE_CHECKING:
    from conftest import Harness, MakeHarness

FLAKY = "/v1/models/gpt-4o-mini"


async def _converge(h: Harness) -> None:
    await h.put_secret("openai-key", {"api-key": h.fakes.openai.api_key})
    await h.put_provider("p", h.openai_spec())
    await h.wait_reason("provider", "p", "ProbeSucceeded")
    await h.put_model("found", "p", "gpt-4o")
    await h.put_model("missing", "p", "gpt-imaginary")
    await h.wait_reason("model", "found", "ModelFound", status="True")
    await h.wait_reason("model", "missing", "ModelNotFound", status="False")


async def test_restart_checks_nothing_and_writes_nothing(make_harness: MakeHarness) -> None:
    """Conclusive answers and a transient failure still in its backoff survive a restart:
    the new manager checks no model and writes no status; the backoff then goes on from
    the status (the clock moves), and the check succeeds once the provider recovers."""
    clock = StoppedClock()
    async with make_harness(now=clock) as h:
        if h.api is None:
            pytest.skip("needs the envtest audit log")
        await _converge(h)
        h.fakes.openai.force(503, path=FLAKY)
        await h.put_model("flaky", "p", "gpt-4o-mini")
        failed = await h.wait_reason("model", "flaky", "ProviderUnavailable", status="False")
        assert failed["status"]["lastCheckTime"] == format_time(clock())
        await h.settle()
        checks, probes, written = h.model_checks(), h.provider_probes(), h.write_counts()
        assert checks == 3  # found, missing, and one failed attempt for flaky (clock stopped)

        before = h.reconciles("model")
        await h.restart()
        await h.settle({"model": before + 3})  # every Model reconciled by the new manager
        assert h.model_checks() == checks, "a model was checked again after the restart"
        assert h.provider_probes() == probes
        assert h.write_counts() == written, "a status was written after the restart"

        # the backoff read from status: due two seconds after the failed check (whole
        # seconds are counted from the end of the second the check was in)
        clock.advance(2)
        await h.wait_for(lambda: h.model_checks() > checks, what="the retry", within=10)
        assert len(h.fakes.openai.requests_to(FLAKY)) == 2
        h.fakes.openai.forced.clear()
        clock.advance(60)
        obj = await h.wait_reason("model", "flaky", "ModelFound", status="True", within=10)
        assert obj["status"]["lastCheckTime"] == format_time(clock())
        await h.settle()
        found = [r for r in h.fakes.openai.requests if r.path == "/v1/models/gpt-4o"]
        assert len(found) == 1, "the conclusive answer was never checked again"


async def test_provider_probed_before_the_restart_rechecks_its_models(
    make_harness: MakeHarness,
) -> None:
    """The previous leader probed the provider again and stopped before checking its
    Models: the new manager checks them (and only them) without probing the provider."""
    clock = StoppedClock()
    async with make_harness(now=clock) as h:
        if h.api is None:
            pytest.skip("needs the envtest audit log")
        await _converge(h)
        await h.settle()
        checks, probes = h.model_checks(), h.provider_probes()

        async def probed_meanwhile() -> None:
            clock.advance(60)
            await h.client.patch(
                MODELPROVIDERS,
                "p",
                {"status": {"lastProbeTime": format_time(clock())}},
                h.namespace,
                subresource="status",
            )

        before = h.reconciles("model")
        written = h.write_counts()
        await h.restart(probed_meanwhile)
        await h.settle({"model": before + 2})
        await h.wait_for(lambda: h.model_checks() == checks + 2, what="both models re-checked")
        assert h.provider_probes() == probes, "the provider was not due"
        assert h.write_counts() == (written[0], written[1] + 2)  # the test's own write not counted
        provider = h.provider("p")
        assert provider is not None
        for name in ("found", "missing"):
            obj = await h.wait_for(
                lambda name=name: (
                    (h.model(name) or {}).get("status", {}).get("lastCheckTime")
                    == format_time(clock())
                    and h.model(name)
                ),
                what=f"{name}'s new status in the cache",
            )
            assert obj["status"]["providerHash"] == provider_hash(provider)
        await h.settle()
        assert h.model_checks() == checks + 2


async def test_rotation_within_the_same_second_rechecks_models(
    make_harness: MakeHarness,
) -> None:
    """The clock does not move: the provider's lastProbeTime stays the same across the
    rotation, yet its Models are checked again, with the new key."""
    clock = StoppedClock()
    async with make_harness(now=clock) as h:
        await _converge(h)
        await h.settle()
        first = h.provider("p")
        assert first is not None
        checks = h.model_checks()

        new_key = h.fakes.openai.keys.new()
        await h.put_secret("openai-key", {"api-key": new_key})
        second = await h.wait_reason(
            "provider",
            "p",
            "ProbeSucceeded",
            where=lambda o: o["status"]["secretHash"] != first["status"]["secretHash"],
        )
        assert second["status"]["lastProbeTime"] == first["status"]["lastProbeTime"]
        await h.wait_for(lambda: h.model_checks() == checks + 2, what="models re-checked")
        rechecked = h.fakes.openai.requests_to("/v1/models/")[-2:]
        assert {r.header("Authorization") for r in rechecked} == {f"Bearer {new_key}"}
        await h.settle()
        assert h.model_checks() == checks + 2
