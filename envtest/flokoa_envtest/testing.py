"""Helpers for tests against envtest or a real cluster: running the real ``kubectl``.

``Kubectl`` runs the preinstalled kubectl with a kubeconfig and a private discovery cache
(``KUBECACHEDIR``), asynchronously (the envtest server shares the test's event loop), with a
timeout, and makes sure no process outlives the test (:meth:`Kubectl.aclose`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
import orjson
import yaml
from aiohttp import web

from flokoa_envtest.server import APIServer

JSONDict = dict[str, Any]


@dataclass(frozen=True)
class KubectlResult:
    """A finished kubectl invocation."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> KubectlResult:
        """Raise AssertionError (with the output) unless the command succeeded."""
        if self.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(self.args)} failed ({self.returncode}):\n"
                f"stdout: {self.stdout}\nstderr: {self.stderr}"
            )
        return self


@dataclass
class BackgroundKubectl:
    """A long-running kubectl (``get -w``): read its output lines until a condition holds."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)

    async def wait_for_line(self, predicate: Callable[[str], bool], within: float = 20.0) -> str:
        """The first stdout line (seen so far or coming) satisfying ``predicate``."""
        for line in self.lines:
            if predicate(line):
                return line
        assert self.process.stdout is not None
        async with asyncio.timeout(within):
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    raise AssertionError(f"kubectl ended; output so far: {self.lines}")
                line = raw.decode().rstrip("\n")
                self.lines.append(line)
                if predicate(line):
                    return line

    async def stop(self) -> None:
        """Terminate the process (kill after 5 s) and reap it."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                async with asyncio.timeout(5):
                    await self.process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()


class Kubectl:
    """Runs ``kubectl --kubeconfig K`` with a fresh ``KUBECACHEDIR``."""

    def __init__(
        self,
        kubeconfig: Path,
        cache_dir: Path,
        *,
        binary: str = "kubectl",
        timeout: float = 60.0,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.cache_dir = cache_dir
        self.binary = binary
        self.timeout = timeout
        """Default seconds before a command is killed (and the test fails)."""
        self._background: list[BackgroundKubectl] = []

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KUBECACHEDIR"] = str(self.cache_dir)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env.pop("KUBECTL_EXTERNAL_DIFF", None)
        return env

    async def __call__(
        self, *args: str, input: str | None = None, check: bool = True, within: float | None = None
    ) -> KubectlResult:
        """Run kubectl to completion; with ``check`` a non-zero exit fails the test."""
        proc = await asyncio.create_subprocess_exec(
            self.binary,
            "--kubeconfig",
            str(self.kubeconfig),
            *args,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._env(),
        )
        try:
            async with asyncio.timeout(within or self.timeout):
                out, err = await proc.communicate(input.encode() if input is not None else None)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise AssertionError(f"kubectl {' '.join(args)} timed out") from None
        result = KubectlResult(tuple(args), proc.returncode or 0, out.decode(), err.decode())
        return result.check() if check else result

    async def start(self, *args: str) -> BackgroundKubectl:
        """Start a long-running kubectl (stopped by :meth:`aclose` at the latest)."""
        proc = await asyncio.create_subprocess_exec(
            self.binary,
            "--kubeconfig",
            str(self.kubeconfig),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._env(),
        )
        background = BackgroundKubectl(proc)
        self._background.append(background)
        return background

    async def aclose(self) -> None:
        """Stop every background kubectl still running."""
        for background in self._background:
            await background.stop()
        self._background.clear()


MakeKubectl = Callable[[Path], Kubectl]
"""``make_kubectl(kubeconfig)``: a :class:`Kubectl` for any kubeconfig (the pytest fixture)."""


@dataclass
class Cluster:
    """The cluster a test runs against (the ``cluster`` fixture of envtest's pytest plugin)."""

    kubeconfig_path: Path
    api: APIServer | None
    """The envtest server, or None when testing a real cluster."""

    @property
    def is_envtest(self) -> bool:
        """Whether this is envtest (fault knobs and audit available)."""
        return self.api is not None


class StoppedClock:
    """A wall clock for tests that moves only when told to (whole seconds, like status times)."""

    def __init__(self) -> None:
        self.time = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.time

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        self.time += timedelta(seconds=seconds)


def closed_port() -> int:
    """A local port nothing listens on (bound on 127.0.0.1, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve_local(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    *,
    ssl_context: ssl.SSLContext | None = None,
    shutdown_timeout: float = 60.0,
) -> tuple[web.AppRunner, int]:
    """Serve ``handler`` for every method and path on 127.0.0.1 at a free port.

    Returns the runner (the caller stops the server with ``runner.cleanup()``) and the port;
    ``shutdown_timeout`` is how long ``cleanup`` waits for requests still being answered.
    """
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    return runner, int(runner.addresses[0][1])


def find_tool(name: str) -> str | None:
    """The path of executable ``name`` on PATH, or None."""
    return shutil.which(name)


def require_tool(name: str) -> str:
    """The path of executable ``name``; without it the calling test is skipped, or failed
    when ``FLOKOA_REQUIRE_TOOLS=1`` (where a missing tool must not pass unnoticed)."""
    path = find_tool(name)
    if path is not None:
        return path
    _missing(name, "not on PATH")


def require_file(path: Path) -> Path:
    """``path`` if it exists; else the calling test is skipped, or failed when
    ``FLOKOA_REQUIRE_TOOLS=1`` (files kept beside the repository, such as ``../shared``)."""
    if path.exists():
        return path
    _missing(str(path), "missing")


def _missing(what: str, why: str) -> NoReturn:
    import pytest  # only here: ``dev`` imports this module without the test dependencies

    if os.environ.get("FLOKOA_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{what} is required (FLOKOA_REQUIRE_TOOLS=1) but {why}")
    pytest.skip(f"{what} is {why}")


def rendered_objects(*command: str) -> list[dict[str, Any]]:
    """The objects a manifest renderer (``kubectl kustomize``, ``helm template``) prints as
    YAML (AssertionError with its stderr when it fails; 60 s at most)."""
    result = subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def kustomize_build(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize DIRECTORY`` renders (AssertionError with its stderr
    when the build fails)."""
    return rendered_objects(kubectl, "kustomize", str(directory))


async def poll_until(
    check: Callable[[], object],
    *,
    within: float = 20.0,
    what: str = "the condition",
    interval: float = 0.1,
) -> Any:
    """Call ``check()`` (awaiting what it returns, if awaitable) until the value is truthy
    and return it; AssertionError naming ``what`` once ``within`` seconds have passed.

    ``interval`` is the polling period between calls, not a wait for the condition.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        await asyncio.sleep(interval)


def b64(value: str | bytes) -> str:
    """Base64 of a Secret value (text is UTF-8 encoded first)."""
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


def secret_manifest(
    name: str,
    namespace: str,
    data: Mapping[str, str | bytes],
    *,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An ``Opaque`` v1 Secret ``namespace/name`` holding ``data`` (base64 encoded), with
    any further ``metadata`` fields (``uid``, ``resourceVersion``, ...)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, **(metadata or {})},
        "type": "Opaque",
        "data": {key: b64(value) for key, value in data.items()},
    }


KUBECTL_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
"""kubectl's client-side apply annotation: a full copy of the applied object, data included."""


def applied_secret(value: str) -> dict[str, Any]:
    """The Secret ``ns/creds`` as ``kubectl apply`` leaves it: ``value`` under ``apiKey`` in
    ``data`` and again in kubectl's last-applied annotation, managedFields naming the key;
    besides, a key ``other``, a label ``app: x`` and an annotation ``keep: me`` (what a
    transform must keep). For tests of what a cache keeps of a Secret."""
    applied = {"apiVersion": "v1", "kind": "Secret", "stringData": {"apiKey": value}}
    managed = [{"manager": "kubectl", "fieldsV1": {"f:data": {"f:apiKey": {}}}}]
    return secret_manifest(
        "creds",
        "ns",
        {"apiKey": value, "other": "x"},
        metadata={
            "resourceVersion": "7",
            "labels": {"app": "x"},
            "annotations": {KUBECTL_LAST_APPLIED: json.dumps(applied), "keep": "me"},
            "managedFields": managed,
        },
    )


@dataclass
class Reply:
    """An HTTP reply: status, headers and the decoded JSON body (None if not JSON)."""

    status: int
    headers: dict[str, str]
    body: Any
    warnings: list[str] = field(default_factory=list)


class WatchStream:
    """An open watch response: read its events one by one with a deadline."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.status = response.status

    async def next(self, within: float = 10.0) -> JSONDict | None:
        """The next event (within ``within`` s), or None when the stream ended cleanly."""
        async with asyncio.timeout(within):
            line = await self.response.content.readline()
        if not line:
            return None
        event: JSONDict = orjson.loads(line)
        return event

    async def until(
        self, predicate: Callable[[JSONDict], bool], within: float = 10.0
    ) -> list[JSONDict]:
        """Events up to and including the first one satisfying ``predicate``."""
        seen: list[JSONDict] = []
        async with asyncio.timeout(within):
            while True:
                event = await self.next(within)
                if event is None:
                    raise AssertionError(f"watch ended before the expected event; saw {seen}")
                seen.append(event)
                if predicate(event):
                    return seen

    def close(self) -> None:
        """Close the connection."""
        self.response.close()


class RawClient:
    """A thin aiohttp client for poking the API server's HTTP surface directly."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        user_agent: str = "raw-test",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.base_url = base_url
        headers = {"User-Agent": user_agent}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        connector = aiohttp.TCPConnector(ssl=ssl_context) if ssl_context is not None else None
        self.session = aiohttp.ClientSession(headers=headers, connector=connector)
        self._watches: list[WatchStream] = []

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Reply:
        """Send one request; JSON bodies are encoded, bytes sent as they are."""
        data: bytes | None
        if body is None:
            data = None
        elif isinstance(body, bytes):
            data = body
        else:
            data = orjson.dumps(body)
        hdrs = dict(headers or {})
        if data is not None:
            hdrs.setdefault("Content-Type", content_type)
        async with self.session.request(
            method, self.base_url + path, data=data, headers=hdrs, params=params
        ) as resp:
            raw = await resp.read()
            try:
                decoded: Any = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                decoded = raw.decode(errors="replace")
            return Reply(
                resp.status, dict(resp.headers), decoded, resp.headers.getall("Warning", [])
            )

    async def get(self, path: str, **params: str) -> Reply:
        """GET with query parameters."""
        return await self.request("GET", path, params=params or None)

    async def watch(
        self, path: str, *, headers: dict[str, str] | None = None, **params: str
    ) -> WatchStream:
        """Open ``GET path?watch=1&…``; closed by :meth:`close` at the latest."""
        query = {"watch": "1", **params}
        resp = await self.session.get(self.base_url + path, params=query, headers=headers)
        stream = WatchStream(resp)
        self._watches.append(stream)
        return stream

    async def close(self) -> None:
        """Close open watches and the session."""
        for w in self._watches:
            w.close()
        await self.session.close()

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
