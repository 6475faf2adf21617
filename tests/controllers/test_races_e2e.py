"""End to end: an object replaced while its probe runs, against envtest's optimistic locking."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from flokoa_controller.controllers.resources import MODELPROVIDERS
from flokoa_controller.providers.http import ProbeHTTP
from flokoa_controller.providers.result import ProbeResult
from flokoa_controller.providers.target import ProbeTarget

if TYPE_CHECKING:
    from conftest import MakeHarness

OLD_URL = "https://old.example.test/v1"
NEW_URL = "https://new.example.test/v1"


async def test_verdict_of_a_replaced_provider_never_lands_on_its_successor(
    make_harness: MakeHarness,
) -> None:
    """Deleted and re-created with the same name, Secret and generation while the probe of
    the old object runs: the old verdict must not be written onto the new object (it would
    look probed, with the old endpoint's outcome, until the re-validation interval)."""
    probing = asyncio.Event()
    release = asyncio.Event()
    probed: list[str] = []

    async def probe(target: ProbeTarget, http: ProbeHTTP) -> ProbeResult:
        probed.append(str(target.base_url))
        if target.base_url == OLD_URL:
            probing.set()
            await release.wait()
            return ProbeResult(False, "InvalidCredentials", "rejected", OLD_URL, 401, 0.01)
        return ProbeResult(True, "ProbeSucceeded", "accepted", NEW_URL, 200, 0.01)

    async with make_harness(probe_provider=probe) as h:
        await h.put_secret("creds", {"api-key": "sk-race-0123456789"})
        spec = {"apiKeySecretRef": {"name": "creds"}, "openai": {"baseURL": OLD_URL}}
        old = await h.put_provider("p", spec)
        await asyncio.wait_for(probing.wait(), 20)
        await h.client.delete(MODELPROVIDERS, "p", h.namespace)
        new = await h.put_provider("p", {**spec, "openai": {"baseURL": NEW_URL}})
        assert new["metadata"]["uid"] != old["metadata"]["uid"]
        assert new["metadata"]["generation"] == old["metadata"]["generation"]
        await h.wait_for(
            lambda: (
                (h.provider("p") or {}).get("metadata", {}).get("uid") == new["metadata"]["uid"]
            ),
            what="the new object in the cache",
        )
        release.set()
        obj = await h.wait_reason(
            "provider",
            "p",
            "ProbeSucceeded",
            status="True",
            where=lambda o: o["metadata"]["uid"] == new["metadata"]["uid"],
        )
        assert obj["status"]["endpoint"] == NEW_URL
        assert probed.count(NEW_URL) >= 1
        # the old object's probe was dropped with it (its result keyed by the old UID):
        # no write of its verdict was even attempted
        assert h.controllers.probes.in_flight() == 0
        if h.api is not None:
            assert 409 not in [e.code for e in h.status_writes()]
            assert all(e.code < 300 for e in h.status_writes())
