"""Hostile provider endpoints for the adversarial scenario (issue 12), on 127.0.0.1.

- **Black hole**: accepts the connection, reads whatever comes, never answers.
- **Trickler**: answers ``200 OK`` one byte per second, forever (a body it never finishes).

One listening port per hostile provider, so the operator's per-destination bound
(``--probe-concurrency-per-host``) does not throttle the attack: only the probe caps do.
:attr:`HostileServers.held` counts the connections held open right now.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

TRICKLE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
    + b'{"data": ['
    + b" " * 999_000
)
"""What a trickler sends, one byte a second (it never gets far)."""


@dataclass
class HostileServers:
    """``black_holes`` + ``tricklers`` listening sockets; use ``async with``."""

    black_holes: int
    tricklers: int
    hole_urls: list[str] = field(default_factory=list)
    trickler_urls: list[str] = field(default_factory=list)
    held: int = 0
    """Connections held open right now (all servers)."""
    accepted: int = 0
    """Connections accepted so far."""
    _servers: list[asyncio.Server] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> HostileServers:
        for _ in range(self.black_holes):
            self.hole_urls.append(await self._listen(self._black_hole))
        for _ in range(self.tricklers):
            self.trickler_urls.append(await self._listen(self._trickle))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)

    async def _listen(self, handler: object) -> str:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            self.held += 1
            self.accepted += 1
            try:
                await handler(reader, writer)  # type: ignore[operator]
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass  # the client gave up, or the servers are closing
            finally:
                self.held -= 1
                self._tasks.discard(task)
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self._servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    @staticmethod
    async def _black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass

    @staticmethod
    async def _trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        for i in range(len(TRICKLE)):
            writer.write(TRICKLE[i : i + 1])
            await writer.drain()
            await asyncio.sleep(1.0)
