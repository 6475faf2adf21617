"""Structured logging: one JSON object per line in a cluster, readable text on a terminal.

:func:`configure_logging` installs one handler on the root logger. Each line carries the
time (``ts``, RFC 3339 UTC with milliseconds), ``level``, ``logger``, ``msg``; the
``controller``, ``namespace``, ``name`` and ``reconcileID`` of the reconcile in progress
(from :data:`flokoa_controller.runtime.controller.reconcile_context`, so a reconciler's own
log lines carry them without passing anything); every field given with ``extra={...}``; and
``exception`` (the formatted traceback) when there is one.

The format is ``auto`` by default: JSON when running in a pod (``KUBERNETES_SERVICE_HOST``
is set) or when the stream is not a terminal, text otherwise. Log messages never include
object payloads; the runtime logs keys and reasons only.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson

from flokoa_controller.runtime.controller import reconcile_context

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "JSONFormatter",
    "LogFormat",
    "TextFormatter",
    "configure_logging",
    "record_fields",
    "resolve_format",
]

LogFormat = Literal["auto", "json", "text"]
LOG_FORMATS: tuple[str, ...] = ("auto", "json", "text")
"""Accepted values of ``--log-format``."""
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error")
"""Accepted values of ``--log-level``."""

# Attributes every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}

_CONTEXT_ORDER = ("controller", "namespace", "name", "reconcileID")


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of ``record`` beyond ts/level/logger/msg, in a stable order."""
    fields: dict[str, Any] = {}
    ctx = reconcile_context.get()
    if ctx is not None:
        fields.update(ctx.log_fields())
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRS and not key.startswith("_"):
            fields[key] = value
    ordered = {key: fields.pop(key) for key in _CONTEXT_ORDER if key in fields}
    ordered.update(fields)
    return ordered


def _plain(value: Any) -> Any:
    """Make ``value`` JSON-serialisable (orjson's fallback)."""
    return str(value)


class JSONFormatter(logging.Formatter):
    """Formats a record as one JSON object (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON line (without the trailing newline)."""
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record_fields(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=_plain).decode()


class TextFormatter(logging.Formatter):
    """Formats a record as ``ts LEVEL logger msg key=value ...`` for people."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the text line (a traceback follows on the next lines, if any)."""
        parts = [_timestamp(record), f"{record.levelname:<7}", record.name, record.getMessage()]
        for key, value in record_fields(record).items():
            text = str(value)
            parts.append(f"{key}={text!r}" if (" " in text or not text) else f"{key}={text}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        return line


def resolve_format(fmt: str, stream: TextIO) -> Literal["json", "text"]:
    """Resolve ``auto``: JSON in a pod or when ``stream`` is not a terminal, else text."""
    if fmt == "json":
        return "json"
    if fmt == "text":
        return "text"
    if fmt != "auto":
        raise ValueError(f"unknown log format {fmt!r} (expected one of {', '.join(LOG_FORMATS)})")
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "json"
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def configure_logging(
    fmt: str = "auto", level: str = "info", stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) in the chosen format; return the handler.

    Replaces handlers previously installed by this function (not others'); quietens the
    chatty third-party loggers (aiohttp access logs, asyncio) to warnings.
    """
    out = stream if stream is not None else sys.stderr
    resolved = resolve_format(fmt, out)
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r} (expected one of {', '.join(LOG_LEVELS)})")
    handler = logging.StreamHandler(out)
    handler.setFormatter(JSONFormatter() if resolved == "json" else TextFormatter())
    handler.set_name("flokoa")
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "flokoa":
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for noisy in ("aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    return handler
