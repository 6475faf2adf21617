"""Token sources: file rotation, exec caching, invalidation; no token in repr."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from flokoa_controller.kube.tokens import (
    ExecTokenSource,
    FileTokenSource,
    StaticTokenSource,
    TokenError,
    TokenSource,
    parse_timestamp,
)


class Clock:
    """A hand-driven clock."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


async def test_static() -> None:
    src = StaticTokenSource("Bearer abc")
    assert isinstance(src, TokenSource)
    assert await src.token() == "abc"
    src.invalidate()
    assert await src.token() == "abc"
    assert "abc" not in repr(src)


async def test_file_rereads_only_after_interval_or_invalidate(tmp_path: Path) -> None:
    path = tmp_path / "token"
    write(path, "one\n", 1_000_000_000)
    clock = Clock()
    src = FileTokenSource(path, refresh_interval=60.0, clock=clock)
    assert await src.token() == "one"
    write(path, "two", 2_000_000_000)
    clock.now += 59.0
    assert await src.token() == "one"  # not checked yet
    clock.now += 1.0
    assert await src.token() == "two"  # interval elapsed and the file changed
    write(path, "three", 3_000_000_000)
    src.invalidate()  # after a 401: re-read at once
    assert await src.token() == "three"
    assert "three" not in repr(src)


async def test_file_keeps_previous_token_when_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "token"
    write(path, "one", 1_000_000_000)
    clock = Clock()
    src = FileTokenSource(path, refresh_interval=1.0, clock=clock)
    assert await src.token() == "one"
    path.unlink()
    clock.now += 5
    assert await src.token() == "one"
    write(path, "", 2_000_000_000)
    src.invalidate()
    assert await src.token() == "one"


async def test_file_missing_or_empty_without_previous_token(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="cannot read token file"):
        await FileTokenSource(tmp_path / "absent").token()
    (tmp_path / "empty").write_text("  \n")
    with pytest.raises(TokenError, match="empty"):
        await FileTokenSource(tmp_path / "empty").token()


class FakePlugin:
    """An ExecProvider stand-in returning queued ExecCredential statuses."""

    def __init__(self, *statuses: Mapping[str, Any]) -> None:
        self.statuses = list(statuses)
        self.calls = 0

    def run(self, previous_response: Any = None) -> Mapping[str, Any]:
        self.calls += 1
        return self.statuses.pop(0)


async def test_exec_caches_until_expiry() -> None:
    clock = Clock(parse_timestamp("2030-01-01T00:00:00Z"))
    plugin = FakePlugin(
        {"token": "a", "expirationTimestamp": "2030-01-01T00:10:00Z"},
        {"token": "b", "expirationTimestamp": "2030-01-01T00:20:00Z"},
    )
    src = ExecTokenSource(plugin, clock=clock, expiry_skew=10.0)
    assert await src.token() == "a"
    clock.now += 589  # 9 min 49 s: still fresh (skew 10 s)
    assert await src.token() == "a"
    assert plugin.calls == 1
    clock.now += 2  # within the skew of the expiry
    assert await src.token() == "b"
    assert plugin.calls == 2
    assert "b" not in repr(src).replace("ExecTokenSource", "")


async def test_exec_without_expiry_cached_until_invalidated() -> None:
    plugin = FakePlugin({"token": "a"}, {"token": "b"})
    src = ExecTokenSource(plugin, clock=Clock())
    assert await src.token() == "a"
    assert await src.token() == "a"
    src.invalidate()
    assert await src.token() == "b"
    assert plugin.calls == 2


async def test_exec_seeded_token_is_used_first() -> None:
    plugin = FakePlugin({"token": "fresh"})
    src = ExecTokenSource(plugin, token="Bearer seeded", expires_at=2000.0, clock=Clock(1000.0))
    assert await src.token() == "seeded"
    assert plugin.calls == 0


async def test_exec_concurrent_callers_run_plugin_once() -> None:
    import asyncio

    plugin = FakePlugin({"token": "a"})
    src = ExecTokenSource(plugin, clock=Clock())
    tokens = await asyncio.gather(*(src.token() for _ in range(10)))
    assert tokens == ["a"] * 10
    assert plugin.calls == 1


async def test_exec_failures() -> None:
    class Failing:
        def run(self, previous_response: Any = None) -> Mapping[str, Any]:
            raise RuntimeError("exec: process returned 1")

    with pytest.raises(TokenError, match="process returned 1"):
        await ExecTokenSource(Failing()).token()
    with pytest.raises(TokenError, match="neither a token"):
        await ExecTokenSource(FakePlugin({})).token()
    with pytest.raises(TokenError, match="expirationTimestamp"):
        await ExecTokenSource(FakePlugin({"token": "x", "expirationTimestamp": "soon"})).token()
    # a certificate-only credential: no bearer token
    assert (
        await ExecTokenSource(
            FakePlugin({"clientCertificateData": "c", "clientKeyData": "k"})
        ).token()
        is None
    )
