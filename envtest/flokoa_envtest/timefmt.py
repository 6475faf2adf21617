"""Kubernetes time formats: ``metav1.Time`` (RFC 3339, seconds) and ``MicroTime``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""Returns the current time (timezone-aware, UTC)."""


def utcnow() -> datetime:
    """The real current time in UTC."""
    return datetime.now(UTC)


def format_time(dt: datetime) -> str:
    """``metav1.Time`` serialization: ``2006-01-02T15:04:05Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro(dt: datetime) -> str:
    """``metav1.MicroTime`` serialization: ``2006-01-02T15:04:05.000000Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or offset, optional fraction); ValueError if invalid."""
    if not isinstance(text, str) or "T" not in text:
        raise ValueError(f'parsing time "{text}" as "2006-01-02T15:04:05Z07:00"')
    value = text
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f'parsing time "{text}" as "2006-01-02T15:04:05Z07:00"') from exc
    if dt.tzinfo is None:
        raise ValueError(f'parsing time "{text}" as "2006-01-02T15:04:05Z07:00": missing zone')
    return dt.astimezone(UTC)
