"""Watch streams: newline-delimited JSON events from kube-apiserver.

Each line of a watch response is one `{"type": ..., "object": ...}` document. Lines are
split from the raw chunks here (no line-length limit of a stream reader applies; a single
event may be several MiB), tolerating lines cut across chunks.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from flokoa_controller.kube.errors import ConnectionFailed
from flokoa_controller.kube.transport import enable_tcp_keepalive, transport_error

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
    "stream_events",
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


async def stream_events(
    resp: aiohttp.ClientResponse,
    path: str,
    *,
    tcp_keepalive: float | None,
    inactivity_timeout: float | None,
) -> AsyncGenerator[WatchEvent, None]:
    """The events of an open watch response until the server ends the stream.

    A broken stream raises `ConnectionFailed(reason="InvalidWatchStream")`, silence longer
    than `inactivity_timeout` `ConnectionFailed(reason="InactivityTimeout")`. The
    connection is released when the stream ended and closed otherwise (error, `aclose()`).
    """
    finished = False
    try:
        if tcp_keepalive:
            enable_tcp_keepalive(resp, tcp_keepalive)
        async for line in iter_lines(resp.content.iter_any()):
            yield decode_event(line)
        finished = True
    except WatchStreamError as exc:
        raise ConnectionFailed("InvalidWatchStream", str(exc), verb="GET", path=path) from None
    except aiohttp.SocketTimeoutError:
        raise ConnectionFailed(
            "InactivityTimeout",
            f"no data from the watch for {inactivity_timeout}s",
            verb="GET",
            path=path,
        ) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise transport_error(exc, "GET", path) from None
    finally:
        if finished:
            resp.release()
        else:
            resp.close()
