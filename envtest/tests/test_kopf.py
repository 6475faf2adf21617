"""kopf acceptance: envtest works unchanged with kopf, a real operator framework.

``kopf run --standalone -n NS kopf_operator.py`` runs as a subprocess against an envtest with
TLS, a bearer token and the project's CRDs. Through the API we check that kopf's create handler
patched status after a retry (its progress annotations round-trip), that an update fires the
update handler, that a delete waits for kopf's finalizer and then completes, that a Secret event
handler fires, and that kopf's Events were stored. kopf's own requests must never be refused as
malformed, and its watches must resume from the bookmark sent before the server-side timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from flokoa_envtest import APIServer
from flokoa_envtest.testing import RawClient

pytestmark = pytest.mark.timeout(90)

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "config" / "crd"
OPERATOR = Path(__file__).resolve().with_name("kopf_operator.py")
KOPF = Path(sys.executable).with_name("kopf")
NS = "kopf-test"
MP = f"/apis/agent.flokoa.ai/v1alpha1/namespaces/{NS}/modelproviders"
SECRETS = f"/api/v1/namespaces/{NS}/secrets"
EVENTS = f"/api/v1/namespaces/{NS}/events"
KOPF_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
MALFORMED = frozenset({400, 405, 406, 415})
"""Codes meaning envtest did not understand a request kopf sent."""

TROUBLE = (
    "Traceback",
    "Failed to post an event",
    "finished with inconsistencies",
    "Ignoring an unsupported event type",
    "Error in the watch-stream",
)
"""kopf log lines that mean envtest answered something kopf did not expect."""

T = TypeVar("T")


class Operator:
    """A ``kopf run`` subprocess whose output goes to a log file (shown when a check fails)."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log

    def tail(self, lines: int = 60) -> str:
        """The end of kopf's log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self) -> int:
        """SIGTERM, then SIGKILL after 15 s; the exit code."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                async with asyncio.timeout(15):
                    await self.process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        return self.process.returncode if self.process.returncode is not None else -1


@contextlib.asynccontextmanager
async def kopf_run(api: APIServer, tmp_path: Path, *, streaming: bool) -> AsyncIterator[Operator]:
    """Run the test operator against ``api`` until the block ends (always stopped)."""
    if not KOPF.exists():
        pytest.fail(f"kopf is a declared dependency but {KOPF} is missing")
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
    env["KUBECONFIG"] = str(api.kubeconfig_path)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["KOPF_TEST_STREAMING"] = "1" if streaming else "0"
    log = tmp_path / "kopf.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            str(KOPF), "run", "--standalone", "--verbose", "-n", NS, str(OPERATOR),
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
            env=env, cwd=tmp_path,
        )  # fmt: skip
    operator = Operator(process, log)
    try:
        yield operator
    finally:
        await operator.stop()


async def eventually(
    operator: Operator,
    what: str,
    fetch: Callable[[], Awaitable[T]],
    check: Callable[[T], bool],
    within: float = 20.0,
) -> T:
    """Poll ``fetch`` until ``check`` holds; fail with the last value and kopf's log."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await fetch()
        if check(value):
            return value
        if operator.process.returncode is not None:
            raise AssertionError(f"kopf exited while waiting for {what}:\n{operator.tail()}")
        if loop.time() > deadline:
            raise AssertionError(
                f"{what}: not within {within} s; last seen {value!r}\nkopf log:\n{operator.tail()}"
            )
        await asyncio.sleep(0.05)


def annotations(obj: Any) -> dict[str, str]:
    """``metadata.annotations`` of a decoded object (empty when absent)."""
    if not isinstance(obj, dict):
        return {}
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def kopf_watches(api: APIServer, path: str) -> list[int]:
    """resourceVersions kopf's watches on ``path`` started from, in order."""
    return [
        int(e.query.get("resourceVersion") or 0)
        for e in api.audit
        if e.verb == "watch" and e.path == path and e.user_agent.startswith("kopf/")
    ]


@pytest.mark.parametrize("streaming", [False, True], ids=["list-watch", "streaming-list"])
async def test_kopf_operator_against_envtest(tmp_path: Path, streaming: bool) -> None:
    async with APIServer(crds=[CRD_DIR], tls=True) as api:
        await api.wait_established("modelproviders.agent.flokoa.ai")
        assert api.ca_path is not None
        tls = ssl.create_default_context(cafile=str(api.ca_path))
        async with RawClient(api.url, token=api.token, ssl_context=tls) as http:
            created = await http.request("POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
            assert created.status == 201, created.body
            async with kopf_run(api, tmp_path, streaming=streaming) as operator:
                await _exercise(api, http, operator)
                code = await operator.stop()
            assert code == 0, f"kopf exited with {code}:\n{operator.tail()}"
        log = operator.log.read_text(errors="replace")
        for trouble in TROUBLE:
            assert trouble not in log, f"kopf logged {trouble!r}:\n{operator.tail()}"
        refused = [
            f"{e.method} {e.path}?{e.query} -> {e.code}"
            for e in api.audit
            if e.user_agent.startswith("kopf/") and (e.code in MALFORMED or e.code >= 500)
        ]
        assert not refused, f"envtest refused kopf's requests: {refused}\n{operator.tail()}"


async def _exercise(api: APIServer, http: RawClient, operator: Operator) -> None:
    # kopf lists and watches both resources before anything exists: creations are live events.
    await eventually(
        operator,
        "kopf watching ModelProviders and Secrets",
        lambda: _now(lambda: (kopf_watches(api, MP), kopf_watches(api, SECRETS))),
        lambda seen: bool(seen[0]) and bool(seen[1]),
        within=45.0,  # kopf's start-up (imports, discovery) on a busy machine
    )

    # Secret event handler: kopf merge-patches the Secret and posts a core/v1 Event about it.
    secret = {"metadata": {"name": "creds"}, "stringData": {"api-key": "sk-test"}}
    reply = await http.request("POST", SECRETS, secret)
    assert reply.status == 201, reply.body
    seen = await eventually(
        operator,
        "the Secret annotated by the event handler",
        lambda: http.get(f"{SECRETS}/creds"),
        lambda r: "kopf-test/seen" in annotations(r.body),
    )
    assert annotations(seen.body)["kopf-test/seen"] == "ADDED"

    # Create: the first attempt fails, kopf stores its progress and retries, then patches status.
    provider = {
        "apiVersion": "agent.flokoa.ai/v1alpha1",
        "kind": "ModelProvider",
        "metadata": {"name": "p"},
        "spec": {"apiKeySecretRef": {"name": "creds"}, "openai": {}},
    }
    reply = await http.request("POST", MP, provider)
    assert reply.status == 201, reply.body
    uid = reply.body["metadata"]["uid"]
    handled = await eventually(
        operator,
        "status patched by the create handler",
        lambda: http.get(f"{MP}/p"),
        lambda r: (r.body.get("status") or {}).get("secretHash") == "kopf-retry-1",
    )
    assert handled.body["status"]["provider"] == "openai"
    assert KOPF_FINALIZER in handled.body["metadata"]["finalizers"]
    assert "kopf.zalando.org/last-handled-configuration" in annotations(handled.body)

    # Update: a spec change fires the update handler (annotation + status).
    new_url = "https://llm.example.com/v1"
    reply = await http.request(
        "PATCH",
        f"{MP}/p",
        {"spec": {"openai": {"baseURL": new_url}}},
        content_type="application/merge-patch+json",
    )
    assert reply.status == 200, reply.body
    updated = await eventually(
        operator,
        "the update handler's annotation",
        lambda: http.get(f"{MP}/p"),
        lambda r: annotations(r.body).get("kopf-test/updated") == new_url,
    )
    await eventually(
        operator,
        "status.ready set by the update handler",
        lambda: http.get(f"{MP}/p"),
        lambda r: (r.body.get("status") or {}).get("ready") is True,
    )
    assert updated.body["metadata"]["generation"] == 2

    # Delete: kopf's finalizer holds the object until the delete handler ran, then it is gone.
    reply = await http.request("DELETE", f"{MP}/p")
    assert reply.status == 200, reply.body
    assert reply.body["metadata"].get("deletionTimestamp")
    assert KOPF_FINALIZER in reply.body["metadata"]["finalizers"]
    await eventually(
        operator,
        "the ModelProvider deleted once kopf removed its finalizer",
        lambda: http.get(f"{MP}/p"),
        lambda r: r.status == 404,
    )

    # kopf's Events, posted with the core/v1 events API, reference the objects.
    events = await eventually(
        operator,
        "kopf's Events",
        lambda: http.get(EVENTS),
        lambda r: (
            {"KopfCreated", "KopfDeleted", "KopfSecretEvent"}
            <= {e.get("reason") for e in r.body.get("items", [])}
        ),
    )
    by_reason = {e["reason"]: e for e in events.body["items"]}
    assert by_reason["KopfCreated"]["involvedObject"]["uid"] == uid
    assert by_reason["KopfCreated"]["involvedObject"]["kind"] == "ModelProvider"
    assert by_reason["KopfSecretEvent"]["involvedObject"]["name"] == "creds"
    assert by_reason["KopfDeleted"]["source"]["component"] == "kopf"

    # Nothing changes namespaces after kopf starts, so its 4 s namespace watches can only resume
    # from a later resourceVersion thanks to the bookmark sent before the server-side timeout.
    await eventually(
        operator,
        "a namespace watch resumed from a later bookmark",
        lambda: _now(lambda: kopf_watches(api, "/api/v1/namespaces")),
        lambda rvs: len(rvs) >= 2 and rvs[-1] > rvs[0],
    )


async def _now(fn: Callable[[], T]) -> T:
    return fn()
