"""Structured logging: JSON lines with reconcile context, readable text, format selection."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from flokoa_controller.runtime.controller import ReconcileContext, reconcile_context
from flokoa_controller.runtime.logging import configure_logging, resolve_format


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root")
def test_json_lines_carry_reconcile_context_extra_and_exception() -> None:
    out = io.StringIO()
    configure_logging("json", "debug", stream=out)
    logger = logging.getLogger("flokoa.test")
    token = reconcile_context.set(ReconcileContext("modelprovider", "team-a", "openai", "rid-1"))
    try:
        logger.info("probe %s", "done", extra={"outcome": "Ready"})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("failed")
    finally:
        reconcile_context.reset(token)
    logger.debug("outside")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 3
    first = lines[0]
    assert first["msg"] == "probe done"
    assert first["level"] == "info"
    assert first["logger"] == "flokoa.test"
    assert first["ts"].endswith("Z")
    assert first["controller"] == "modelprovider"
    assert first["namespace"] == "team-a"
    assert first["name"] == "openai"
    assert first["reconcileID"] == "rid-1"
    assert first["outcome"] == "Ready"
    assert list(first)[:8] == [
        "ts",
        "level",
        "logger",
        "msg",
        "controller",
        "namespace",
        "name",
        "reconcileID",
    ]
    assert "RuntimeError: boom" in lines[1]["exception"]
    assert lines[1]["level"] == "error"
    assert "reconcileID" not in lines[2]


@pytest.mark.usefixtures("restore_root")
def test_text_format_and_level_filtering() -> None:
    out = io.StringIO()
    configure_logging("text", "warning", stream=out)
    logger = logging.getLogger("flokoa.test")
    logger.info("hidden")
    logger.warning("shown", extra={"controller": "model", "reason": "two words"})
    text = out.getvalue()
    assert "hidden" not in text
    assert "WARNING" in text
    assert "shown controller=model reason='two words'" in text


@pytest.mark.usefixtures("restore_root")
def test_reconfiguring_replaces_our_handler_only() -> None:
    configure_logging("json", "info", stream=io.StringIO())
    configure_logging("json", "info", stream=io.StringIO())
    ours = [h for h in logging.getLogger().handlers if h.get_name() == "flokoa"]
    assert len(ours) == 1


def test_auto_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert resolve_format("auto", TTY()) == "text"
    assert resolve_format("auto", io.StringIO()) == "json"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert resolve_format("auto", TTY()) == "json"
    assert resolve_format("text", TTY()) == "text"
    with pytest.raises(ValueError, match="unknown log format"):
        resolve_format("xml", TTY())
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("json", "loud", stream=io.StringIO())
