"""``--event-loop``: which loop the operator runs on."""

from __future__ import annotations

import asyncio
import sys

import pytest

from flokoa_controller.runtime import eventloop


async def _loop_type() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_asyncio_is_the_standard_loop() -> None:
    assert eventloop.loop_factory("asyncio") is None
    assert eventloop.run(_loop_type(), "asyncio").startswith("asyncio")


def test_auto_takes_uvloop_when_installed() -> None:
    import uvloop  # a dependency of the operator on every platform it is built for

    assert eventloop.loop_factory("auto") is uvloop.new_event_loop
    assert eventloop.run(_loop_type(), "auto").startswith("uvloop")
    assert eventloop.run(_loop_type(), "uvloop").startswith("uvloop")


def test_auto_without_uvloop_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import fails
    assert eventloop.loop_factory("auto") is None
    with pytest.raises(ValueError, match="uvloop is not installed"):
        eventloop.loop_factory("uvloop")


def test_unknown_choice() -> None:
    with pytest.raises(ValueError, match="--event-loop must be one of"):
        eventloop.loop_factory("trio")
