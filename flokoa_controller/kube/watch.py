"""Watch streams: newline-delimited JSON events from kube-apiserver.

Each line of a watch response is one `{"type": ..., "object": ...}` document. Lines are
split from the raw chunks here (no line-length limit of a stream reader applies; a single
event may be several MiB), tolerating lines cut across chunks.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "ADDED",
    "BOOKMARK",
    "DELETED",
    "ERROR",
    "MAX_EVENT_BYTES",
    "MODIFIED",
    "WatchEvent",
    "WatchStreamError",
    "decode_event",
    "iter_lines",
]

ADDED = "ADDED"
"""An object was created (or first seen)."""
MODIFIED = "MODIFIED"
"""An object was changed."""
DELETED = "DELETED"
"""An object was deleted; `object` is its last state."""
BOOKMARK = "BOOKMARK"
"""Progress marker: only `object.metadata.resourceVersion` (and annotations) matter."""
ERROR = "ERROR"
"""The watch failed; `object` is a `Status` (e.g. code 410 when the version is too old)."""

MAX_EVENT_BYTES = 64 * 1024 * 1024
"""Longest accepted event line; a longer one means a broken stream."""


class WatchStreamError(ValueError):
    """The stream is not a valid watch stream (bad JSON, missing fields, oversized line)."""


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One watch event. `type` is ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."""

    type: str
    """Event type."""
    object: dict[str, Any]
    """The object (for ERROR: a Status)."""


async def iter_lines(
    chunks: AsyncIterable[bytes], *, max_line: int = MAX_EVENT_BYTES
) -> AsyncIterator[bytes]:
    """Non-empty lines (without the newline) of a chunked byte stream.

    A trailing line without a newline at the end of the stream is dropped: the server cut
    the event short, so it cannot be trusted.
    """
    pending = bytearray()
    async for chunk in chunks:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            if pending:
                pending += chunk[start:end]
                line = bytes(pending)
                pending.clear()
            else:
                line = chunk[start:end]
            start = end + 1
            if line.strip():
                yield line
        if start < len(chunk):
            pending += chunk[start:]
            if len(pending) > max_line:
                raise WatchStreamError(f"watch event longer than {max_line} bytes")


def decode_event(line: bytes) -> WatchEvent:
    """Parse one watch line."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise WatchStreamError(f"invalid JSON in watch stream at {exc.pos}") from None
    if not isinstance(doc, dict):
        raise WatchStreamError("watch event is not a JSON object")
    kind = doc.get("type")
    obj = doc.get("object")
    if not isinstance(kind, str) or not isinstance(obj, dict):
        raise WatchStreamError("watch event without a type or an object")
    return WatchEvent(kind, obj)
