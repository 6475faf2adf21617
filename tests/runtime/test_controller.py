"""Controller: outcome table, metrics, concurrency, reconcile IDs, shutdown (looptime)."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY

from flokoa_controller.kube.resources import SECRETS
from flokoa_controller.runtime.controller import (
    Controller,
    ReconcileContext,
    Request,
    Result,
    TerminalError,
    reconcile_context,
    request_for,
)
from flokoa_controller.runtime.informer import Informer
from flokoa_controller.runtime.logging import JSONFormatter
from flokoa_controller.runtime.predicate import Predicate
from flokoa_controller.runtime.ratelimiter import ItemExponentialFailureRateLimiter

pytestmark = pytest.mark.looptime

Behaviour = Callable[[Request, int], Awaitable[Result]]


class ScriptedReconciler:
    """Runs ``behaviour(request, attempt)``; records each call's loop time and context."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.calls: list[tuple[Request, float, ReconcileContext | None]] = []
        self.in_flight: set[Request] = set()
        self.max_parallel = 0
        self.overlaps: list[Request] = []

    def attempts(self, request: Request) -> list[float]:
        return [t for r, t, _ in self.calls if r == request]

    async def reconcile(self, request: Request) -> Result:
        if request in self.in_flight:
            self.overlaps.append(request)
        self.in_flight.add(request)
        self.max_parallel = max(self.max_parallel, len(self.in_flight))
        attempt = len(self.attempts(request))
        self.calls.append((request, asyncio.get_running_loop().time(), reconcile_context.get()))
        try:
            return await self.behaviour(request, attempt)
        finally:
            self.in_flight.discard(request)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sample(metric: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(metric, labels)
    return 0.0 if value is None else value


async def wait_for(predicate: Callable[[], bool], limit: float = 600) -> None:
    async with asyncio.timeout(limit):
        while not predicate():  # noqa: ASYNC110 (polling with a deadline)
            await asyncio.sleep(0.1)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def make(name: str, reconciler: ScriptedReconciler, **kwargs: Any) -> Controller:
    kwargs.setdefault("rate_limiter", ItemExponentialFailureRateLimiter(1.0, 60.0))
    return Controller(name, reconciler, **kwargs)


def test_request_and_result() -> None:
    assert str(Request("ns", "a")) == "ns/a"
    assert str(Request("", "cluster-wide")) == "cluster-wide"
    assert Request("ns", "a") == Request("ns", "a")
    assert len({Request("ns", "a"), Request("ns", "a")}) == 1
    with pytest.raises(AttributeError):
        Request("ns", "a").name = "b"  # type: ignore[misc]
    assert Result() == Result(requeue=False, requeue_after=0.0)
    assert request_for({"metadata": {"name": "x", "namespace": "y"}}) == Request("y", "x")
    assert request_for({"metadata": {"name": "node"}}) == Request("", "node")


def test_constructor_validation_and_initial_metrics() -> None:
    name = unique("init")
    reconciler = ScriptedReconciler(lambda r, a: _ok())
    Controller(name, reconciler, max_concurrent_reconciles=3)
    for result in ("success", "error", "requeue", "requeue_after"):
        assert (
            REGISTRY.get_sample_value(
                "controller_runtime_reconcile_total", {"controller": name, "result": result}
            )
            == 0
        )
    for family in (
        "controller_runtime_reconcile_errors_total",
        "controller_runtime_terminal_reconcile_errors_total",
        "controller_runtime_reconcile_panics_total",
        "controller_runtime_active_workers",
        "controller_runtime_reconcile_time_seconds_count",
    ):
        assert REGISTRY.get_sample_value(family, {"controller": name}) == 0, family
    assert sample("controller_runtime_max_concurrent_reconciles", controller=name) == 3
    assert sample("workqueue_depth", name=name, controller=name) == 0
    with pytest.raises(ValueError):
        Controller("", reconciler)
    with pytest.raises(ValueError):
        Controller(name, reconciler, max_concurrent_reconciles=0)


async def _ok() -> Result:
    return Result()


async def test_success_forgets() -> None:
    name = unique("ok")
    rec = ScriptedReconciler(lambda r, a: _ok())
    ctl = make(name, rec)
    ctl.queue.rate_limiter.when(Request("ns", "a"))  # a failure on record, to be forgotten
    ctl.enqueue(Request("ns", "a"))
    task = asyncio.create_task(ctl.run())
    await wait_for(lambda: len(rec.calls) == 1)
    await asyncio.sleep(100)
    assert len(rec.calls) == 1
    assert ctl.queue.num_requeues(Request("ns", "a")) == 0
    assert sample("controller_runtime_reconcile_total", controller=name, result="success") == 1
    assert sample("controller_runtime_reconcile_time_seconds_count", controller=name) == 1
    await stop(task)


async def test_error_requeues_rate_limited_until_success() -> None:
    name = unique("err")
    req = Request("ns", "flaky")

    async def behaviour(request: Request, attempt: int) -> Result:
        if attempt < 3:
            raise RuntimeError("API unavailable")
        return Result()

    rec = ScriptedReconciler(behaviour)
    ctl = make(name, rec)
    ctl.enqueue(req)
    task = asyncio.create_task(ctl.run())
    await wait_for(lambda: len(rec.calls) == 4)
    times = rec.attempts(req)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([1.0, 2.0, 4.0])  # exponential, failures kept
    await asyncio.sleep(1000)
    assert len(rec.calls) == 4
    assert ctl.queue.num_requeues(req) == 0  # forgotten on success
    assert sample("controller_runtime_reconcile_total", controller=name, result="error") == 3
    assert sample("controller_runtime_reconcile_errors_total", controller=name) == 3
    assert sample("controller_runtime_reconcile_panics_total", controller=name) == 0
    assert sample("controller_runtime_reconcile_total", controller=name, result="success") == 1
    await stop(task)


async def test_terminal_error_is_not_requeued() -> None:
    name = unique("term")

    async def behaviour(request: Request, attempt: int) -> Result:
        raise TerminalError("spec.baseURL is not a URL")

    rec = ScriptedReconciler(behaviour)
    ctl = make(name, rec)
    ctl.enqueue(Request("ns", "bad"))
    task = asyncio.create_task(ctl.run())
    await wait_for(lambda: len(rec.calls) == 1)
    await asyncio.sleep(1000)
    assert len(rec.calls) == 1
    assert sample("controller_runtime_reconcile_total", controller=name, result="error") == 1
    assert sample("controller_runtime_reconcile_errors_total", controller=name) == 1
    assert sample("controller_runtime_terminal_reconcile_errors_total", controller=name) == 1
    # A new event still brings it back.
    ctl.enqueue(Request("ns", "bad"))
    await wait_for(lambda: len(rec.calls) == 2)
    await stop(task)


async def test_requeue_after_forgets_then_waits() -> None:
    name = unique("after")
    req = Request("ns", "poll")

    async def behaviour(request: Request, attempt: int) -> Result:
        return Result(requeue=True, requeue_after=30.0) if attempt < 2 else Result()

    rec = ScriptedReconciler(behaviour)
    ctl = make(name, rec)
    for _ in range(5):
        ctl.queue.rate_limiter.when(req)
    ctl.enqueue(req)
    task = asyncio.create_task(ctl.run())
    await wait_for(lambda: len(rec.calls) == 3)
    times = rec.attempts(req)
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([30.0, 30.0])
    assert ctl.queue.num_requeues(req) == 0
    assert (
        sample("controller_runtime_reconcile_total", controller=name, result="requeue_after") == 2
    )
    await stop(task)


async def test_requeue_is_rate_limited() -> None:
    name = unique("requeue")
    req = Request("ns", "again")

    async def behaviour(request: Request, attempt: int) -> Result:
        return Result(requeue=True) if attempt < 3 else Result()

    rec = ScriptedReconciler(behaviour)
    ctl = make(name, rec)
    ctl.enqueue(req)
    task = asyncio.create_task(ctl.run())
    await wait_for(lambda: len(rec.calls) == 4)
    times = rec.attempts(req)
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([1.0, 2.0, 4.0])
    assert sample("controller_runtime_reconcile_total", controller=name, result="requeue") == 3
    assert sample("controller_runtime_reconcile_errors_total", controller=name) == 0
    await stop(task)


async def test_panics_are_recovered_counted_and_requeued() -> None:
    name = unique("panic")

    async def behaviour(request: Request, attempt: int) -> Result:
        if attempt == 0:
            return cast(dict[str, Any], {})["missing"]  # KeyError: a bug
        if attempt == 1:
            return cast(Result, None)  # not a Result: a bug too
        return Result()

    rec = ScriptedReconciler(behaviour)
    ctl = make(name, rec)
    ctl.enqueue(Request("ns", "buggy"))
    task = asyncio.create_task(ctl.run())
    await wait_for(lambda: len(rec.calls) == 3)
    assert sample("controller_runtime_reconcile_panics_total", controller=name) == 2
    assert sample("controller_runtime_reconcile_errors_total", controller=name) == 2
    assert sample("controller_runtime_reconcile_total", controller=name, result="error") == 2
    assert not task.done()
    await stop(task)


async def test_panic_without_recovery_fails_run() -> None:
    name = unique("norecover")

    async def behaviour(request: Request, attempt: int) -> Result:
        raise AttributeError("'NoneType' object has no attribute 'spec'")

    rec = ScriptedReconciler(behaviour)
    ctl = make(name, rec, recover_panic=False)
    ctl.enqueue(Request("ns", "x"))
    with pytest.raises(AttributeError):
        await asyncio.wait_for(ctl.run(), 10)
    assert sample("controller_runtime_reconcile_panics_total", controller=name) == 1
    assert ctl.queue.shutting_down


async def test_workers_run_in_parallel_but_never_on_one_key() -> None:
    name = unique("parallel")
    active: list[float] = []

    async def behaviour(request: Request, attempt: int) -> Result:
        await asyncio.sleep(0.5)
        active.append(sample("controller_runtime_active_workers", controller=name))
        await asyncio.sleep(0.5)
        return Result()

    rec = ScriptedReconciler(behaviour)
    ctl = make(name, rec, max_concurrent_reconciles=4)
    task = asyncio.create_task(ctl.run())
    keys = [Request("ns", f"obj-{i}") for i in range(6)]
    for _ in range(5):  # keep re-adding while they are processed
        for key in keys:
            ctl.enqueue(key)
        await asyncio.sleep(0.3)
    await wait_for(lambda: not ctl.queue.processing() and not len(ctl.queue))
    assert rec.overlaps == []
    assert rec.max_parallel == 4
    assert max(active) == 4
    assert sample("controller_runtime_active_workers", controller=name) == 0
    # Re-adds during processing coalesce: each key ran at most twice more.
    for key in keys:
        assert 1 <= len(rec.attempts(key)) <= 3
    await stop(task)


async def test_reconcile_ids_in_logs() -> None:
    name = unique("logs")
    app_log = logging.getLogger("test.reconciler")

    async def behaviour(request: Request, attempt: int) -> Result:
        app_log.info("looking at %s", request)
        await asyncio.sleep(0.1)
        if attempt == 0:
            raise RuntimeError("boom")
        return Result()

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    loggers = [app_log, logging.getLogger("flokoa_controller.runtime.controller")]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        rec = ScriptedReconciler(behaviour)
        ctl = make(name, rec, max_concurrent_reconciles=2)
        ctl.enqueue(Request("ns", "a"))
        ctl.enqueue(Request("ns", "b"))
        task = asyncio.create_task(ctl.run())
        await wait_for(lambda: len(rec.calls) == 4)
        await asyncio.sleep(1)
        await stop(task)
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
            lg.setLevel(logging.NOTSET)
    assert reconcile_context.get() is None
    contexts = [ctx for _, _, ctx in rec.calls]
    assert all(ctx is not None and ctx.controller == name for ctx in contexts)
    ids = {ctx.reconcile_id for ctx in contexts if ctx is not None}
    assert len(ids) == 4  # one per reconcile
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [line for line in lines if line.get("reconcileID")]
    assert {line["reconcileID"] for line in mine} == ids
    for line in mine:
        ctx = next(c for c in contexts if c is not None and c.reconcile_id == line["reconcileID"])
        assert (line["controller"], line["namespace"], line["name"]) == (
            name,
            ctx.namespace,
            ctx.name,
        )
    errors = [line for line in mine if line["msg"] == "Reconciler error"]
    assert len(errors) == 2
    assert all("RuntimeError: boom" in line["exception"] for line in errors)
    # Log lines of the reconciler itself carry the IDs too.
    assert sum(1 for line in mine if line["logger"] == "test.reconciler") == 4


async def test_graceful_shutdown_finishes_in_flight_reconciles() -> None:
    name = unique("grace")
    finished: list[Request] = []

    async def behaviour(request: Request, attempt: int) -> Result:
        await asyncio.sleep(5)
        finished.append(request)
        return Result()

    rec = ScriptedReconciler(behaviour)
    ctl = make(name, rec, max_concurrent_reconciles=2, grace_period=10)
    for i in range(5):
        ctl.enqueue(Request("ns", f"o{i}"))
    task = asyncio.create_task(ctl.run())
    await wait_for(lambda: len(rec.calls) == 2)
    t0 = asyncio.get_running_loop().time()
    await stop(task)
    assert asyncio.get_running_loop().time() - t0 == pytest.approx(5.0, abs=0.11)
    assert len(finished) == 2  # the two in flight finished, no new one started
    assert len(rec.calls) == 2
    assert ctl.queue.shutting_down


async def test_shutdown_cancels_reconciles_past_the_grace_period() -> None:
    name = unique("stuck")
    cancelled: list[Request] = []

    async def behaviour(request: Request, attempt: int) -> Result:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(request)
            raise
        return Result()

    rec = ScriptedReconciler(behaviour)
    ctl = make(name, rec, grace_period=2)
    ctl.enqueue(Request("ns", "stuck"))
    task = asyncio.create_task(ctl.run())
    await wait_for(lambda: len(rec.calls) == 1)
    t0 = asyncio.get_running_loop().time()
    await stop(task)
    assert asyncio.get_running_loop().time() - t0 == pytest.approx(2.0, abs=0.001)
    assert cancelled == [Request("ns", "stuck")]
    assert sample("controller_runtime_active_workers", controller=name) == 0


def _secret(name: str, rv: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv},
    }


def _provider(name: str, secret: str, rv: str = "1") -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Provider",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv},
        "spec": {"secret": secret},
    }


async def test_watch_own_key_and_mapped_related_kind() -> None:
    """Real informers fed events directly (no server): own keys, a mapper, tombstones."""
    name = unique("watch")
    no_client = cast(Any, None)  # the informers are not run: events are applied directly
    providers = Informer(
        no_client,
        SECRETS,
        indexers={"by-secret": lambda o: [f"ns/{o['spec']['secret']}"]},
    )
    secrets = Informer(no_client, SECRETS)
    seen: list[Request] = []

    async def behaviour(request: Request, attempt: int) -> Result:
        seen.append(request)
        return Result()

    ctl = make(name, ScriptedReconciler(behaviour))

    def secret_to_providers(secret: dict[str, Any]) -> list[Request]:
        key = f"ns/{secret['metadata']['name']}"
        return [request_for(p) for p in providers.store.by_index("by-secret", key)]

    ctl.watch(providers)
    ctl.watch(secrets, secret_to_providers)
    providers.replace(
        None, [_provider("p1", "s1"), _provider("p2", "s1"), _provider("p3", "s2")], "1"
    )
    secrets.replace(None, [_secret("s1", "1"), _secret("s2", "1")], "1")
    # Initial list: each provider once (own add + secret adds coalesce in the queue).
    assert len(ctl.queue) == 3
    task = asyncio.create_task(ctl.run())
    await wait_for(lambda: len(seen) == 3)
    assert set(seen) == {Request("ns", "p1"), Request("ns", "p2"), Request("ns", "p3")}

    seen.clear()
    secrets.apply("MODIFIED", _secret("s1", "2"))
    await wait_for(lambda: len(seen) == 2)
    assert set(seen) == {Request("ns", "p1"), Request("ns", "p2")}

    # Update of a related object maps old and new: p3 moves from s2 to s1 ... here a provider
    # update enqueues itself only.
    seen.clear()
    providers.apply("MODIFIED", _provider("p3", "s1", rv="2"))
    await wait_for(lambda: len(seen) == 1)
    assert seen == [Request("ns", "p3")]

    # A secret deleted while disconnected arrives as a tombstone and still maps.
    seen.clear()
    secrets.replace(None, [_secret("s2", "1")], "3")
    await wait_for(lambda: len(seen) == 3)
    assert set(seen) == {Request("ns", "p1"), Request("ns", "p2"), Request("ns", "p3")}

    # A provider deleted (event and tombstone) enqueues its own key.
    seen.clear()
    providers.apply("DELETED", _provider("p1", "s1"))
    providers.replace(None, [_provider("p3", "s1", rv="2")], "4")
    await wait_for(lambda: len(seen) == 2)
    assert set(seen) == {Request("ns", "p1"), Request("ns", "p2")}
    await stop(task)


async def test_mapper_update_maps_old_and_new() -> None:
    name = unique("oldnew")
    no_client = cast(Any, None)
    models = Informer(no_client, SECRETS)
    ctl = make(name, ScriptedReconciler(lambda r, a: _ok()))

    def model_to_provider(model: dict[str, Any]) -> list[Request]:
        return [Request("ns", model["spec"]["secret"])]

    ctl.watch(models, model_to_provider)
    models.apply("ADDED", _provider("m", "old-provider"))
    assert await ctl.queue.get() == Request("ns", "old-provider")
    ctl.queue.done(Request("ns", "old-provider"))
    models.apply("MODIFIED", _provider("m", "new-provider", rv="2"))
    got = {await ctl.queue.get(), await ctl.queue.get()}
    assert got == {Request("ns", "old-provider"), Request("ns", "new-provider")}


async def test_predicates_filter_each_event_kind() -> None:
    """An event any predicate rejects enqueues nothing; the others pass unchanged."""
    name = unique("predicate")
    informer = Informer(cast(Any, None), SECRETS)
    ctl = make(name, ScriptedReconciler(lambda r, a: _ok()))
    ctl.watch(
        informer,
        predicates=[
            Predicate(create=lambda obj: obj["metadata"]["name"] != "quiet"),
            Predicate(update=lambda old, new: old["spec"] != new["spec"]),
            Predicate(delete=lambda obj: False),
        ],
    )
    informer.apply("ADDED", _provider("quiet", "s"))
    informer.apply("ADDED", _provider("loud", "s"))
    assert len(ctl.queue) == 1
    assert await ctl.queue.get() == Request("ns", "loud")
    ctl.queue.done(Request("ns", "loud"))

    informer.apply("MODIFIED", _provider("loud", "s", rv="2"))  # spec unchanged: dropped
    assert len(ctl.queue) == 0
    informer.apply("MODIFIED", _provider("loud", "t", rv="3"))
    assert len(ctl.queue) == 1
    assert await ctl.queue.get() == Request("ns", "loud")
    ctl.queue.done(Request("ns", "loud"))

    informer.apply("DELETED", _provider("loud", "t", rv="3"))
    assert len(ctl.queue) == 0
