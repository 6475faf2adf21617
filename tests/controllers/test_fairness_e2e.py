"""End to end: one hostile namespace cannot stall the others (issue 12, fair capacity).

Black holes (endpoints that accept and never answer) in one namespace used to hold every
reconcile worker for up to 3 x timeoutSeconds + 5 s, so rotations in every other namespace
waited. Probes now run outside the workers (``controllers/probes_inflight.py``), capped
globally and per namespace and served round-robin: the hostile namespace holds at most its
own cap of probe slots, and everybody else's rotations are reflected as usual. Timings are
figures for the benchmark (``hack/bench``, scenario ``adversarial``), not asserted here.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from flokoa_envtest.fakes import FakeOpenAI

from flokoa_controller.controllers.resources import MODELPROVIDERS
from flokoa_controller.controllers.setup import ControllerSettings
from flokoa_controller.kube.resources import NAMESPACES

if TYPE_CHECKING:
    from conftest import Harness, MakeHarness

BLACK_HOLES = 40
NORMAL_NAMESPACES = 20
NORMAL_PER_NAMESPACE = 10
ROTATIONS = 50


def _names(*prefixes: str) -> tuple[str, ...]:
    """Fresh namespace names. The harness watches exactly these (and its own), not every
    namespace: on a shared real cluster, other namespaces' providers would take probe slots
    and the counts below would be off."""
    suffix = uuid.uuid4().hex[:6]
    return tuple(f"{prefix}-{suffix}" for prefix in prefixes)


async def _namespace(h: Harness, ns: str) -> str:
    await h.client.create(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    )
    h.created_namespaces.append(ns)
    return ns


async def _provider(h: Harness, ns: str, name: str, base_url: str, secret: str) -> None:
    body: dict[str, Any] = {
        "apiVersion": "agent.flokoa.ai/v1alpha1",
        "kind": "ModelProvider",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "apiKeySecretRef": {"name": secret},
            "openai": {"baseURL": base_url, "timeoutSeconds": 600},  # capped at 30 s
        },
    }
    await h.client.create(MODELPROVIDERS, body, ns)


def _status(h: Harness, ns: str, name: str) -> dict[str, Any]:
    obj = h.controllers.providers.store.get_by(name, ns) or {}
    return obj.get("status") or {}


async def test_rotations_elsewhere_are_reflected_while_a_namespace_is_a_black_hole(
    make_harness: MakeHarness,
) -> None:
    names = _names("hostile", *(f"normal{n}" for n in range(NORMAL_NAMESPACES)))
    async with (
        FakeOpenAI() as hole,
        make_harness(also_watch=names) as h,
    ):
        hole.gate = asyncio.Event()  # accepts, never answers (until the fake stops)
        hostile = await _namespace(h, names[0])
        await h.put_secret("key", {"api-key": hole.api_key}, namespace=hostile)
        for i in range(BLACK_HOLES):
            await _provider(h, hostile, f"hole-{i}", hole.base_url, "key")
        # the black holes hold their namespace's probe slots (more than the 4 workers)
        per_namespace = ControllerSettings().max_concurrent_probes_per_namespace
        await h.wait_for(lambda: hole.in_flight >= per_namespace, what="black holes held")

        keys = h.fakes.openai.keys
        normal: list[tuple[str, str]] = []
        for n in range(NORMAL_NAMESPACES):
            ns = await _namespace(h, names[1 + n])
            for i in range(NORMAL_PER_NAMESPACE):
                await h.put_secret(f"key-{i}", {"api-key": keys.new()}, namespace=ns)
                await _provider(h, ns, f"p-{i}", h.fakes.openai.base_url, f"key-{i}")
                normal.append((ns, f"p-{i}"))
        await h.wait_for(
            lambda: all(_status(h, ns, name).get("ready") is True for ns, name in normal),
            within=60,
            what="every normal provider Ready",
        )
        rotated = normal[:: len(normal) // ROTATIONS][:ROTATIONS]  # spread over the namespaces
        before = {key: _status(h, *key)["secretHash"] for key in rotated}

        # rotate 50 normal Secrets: each rotation shows in the status (new hash, Ready)
        for ns, name in rotated:
            await h.put_secret(f"key-{name[2:]}", {"api-key": keys.new()}, namespace=ns)
        await h.wait_for(
            lambda: all(
                _status(h, *key).get("secretHash") not in (None, before[key])
                and _status(h, *key).get("ready") is True
                for key in rotated
            ),
            within=60,
            what="every rotation reflected",
        )
        # meanwhile the hostile namespace never had more than its cap in flight
        assert hole.max_in_flight <= per_namespace
        assert all(not _status(h, hostile, f"hole-{i}").get("ready") for i in range(BLACK_HOLES))


async def test_the_in_flight_caps_hold_at_the_endpoints(make_harness: MakeHarness) -> None:
    """Three namespaces of black holes, one fake each: at most ``per-namespace`` requests
    ever reach one fake at once, at most ``global`` reach them all, and the caps fill."""
    settings = ControllerSettings(
        max_concurrent_probes=5,
        max_concurrent_probes_per_namespace=2,
        probe_concurrency_per_host=100,
    )
    names = _names("holes0", "holes1", "holes2")
    async with (
        FakeOpenAI() as a,
        FakeOpenAI() as b,
        FakeOpenAI() as c,
        make_harness(also_watch=names, settings=settings) as h,
    ):
        holes = [a, b, c]
        for hole in holes:
            hole.gate = asyncio.Event()
        for n, hole in enumerate(holes):
            ns = await _namespace(h, names[n])
            await h.put_secret("key", {"api-key": hole.api_key}, namespace=ns)
            for i in range(6):
                await _provider(h, ns, f"hole-{i}", hole.base_url, "key")

        def total() -> int:
            return sum(hole.in_flight for hole in holes)

        await h.wait_for(lambda: total() == 5, what="the global cap filled")
        # give the queues every chance to overrun the caps: let many reconciles pass
        await h.settle()
        for _ in range(50):
            await asyncio.sleep(0)
        assert total() == 5
        assert sum(len(hole.requests) for hole in holes) == 5, "a waiting probe was sent"
        assert all(hole.max_in_flight <= 2 for hole in holes)
        assert sorted(hole.in_flight for hole in holes) == [1, 2, 2]
        assert h.controllers.probes.peak_in_flight == 5
        assert h.controllers.probes.queued() == 18 - 5


async def test_shutdown_cancels_the_probes_in_flight(make_harness: MakeHarness) -> None:
    """Probes hanging on a black hole (30 s deadline) end with the controllers, within the
    manager's grace period (5 s here), not at their deadline."""
    names = _names("holes")
    async with FakeOpenAI() as hole, make_harness(also_watch=names) as h:
        hole.gate = asyncio.Event()
        ns = await _namespace(h, names[0])
        await h.put_secret("key", {"api-key": hole.api_key}, namespace=ns)
        for i in range(4):
            await _provider(h, ns, f"hole-{i}", hole.base_url, "key")
        probes = h.controllers.probes
        await h.wait_for(lambda: probes.in_flight() == 4, what="probes hanging")
        h.manager.stop()
        assert h.task is not None
        await asyncio.wait_for(h.task, h.options.graceful_shutdown_timeout + 5)
        assert (probes.in_flight(), probes.queued(), len(probes)) == (0, 0, 0)
