"""`FakeDNS`: a tiny authoritative DNS server over UDP on 127.0.0.1 (tests only).

`async with FakeDNS(records={"api.provider.test": "127.0.0.1"}, black_hole=".blackhole.test")
as dns:` answers A queries for the names in `records` (AAAA and other types: no data),
never answers a query for a name under `black_hole` (an authoritative server that does not
respond), and answers NXDOMAIN for everything else. `dns.nameserver` is its `IP:PORT` for a
resolver's server list; `dns.queries` counts the queries received per (name, type), and
`dns.unanswered` the black-holed ones.
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from collections import Counter
from types import TracebackType
from typing import cast

QTYPE_A = 1
QTYPE_AAAA = 28


def _parse_question(packet: bytes) -> tuple[int, int, str, int, bytes] | None:
    """(id, flags, name, qtype, raw question) of a one-question query, or None."""
    if len(packet) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount != 1 or flags & 0x8000:
        return None
    labels: list[str] = []
    pos = 12
    while True:
        if pos >= len(packet):
            return None
        length = packet[pos]
        pos += 1
        if length == 0:
            break
        if length & 0xC0 or pos + length > len(packet):
            return None  # compression is not used in questions
        labels.append(packet[pos : pos + length].decode("ascii", "replace").lower())
        pos += length
    if pos + 4 > len(packet):
        return None
    qtype = struct.unpack("!H", packet[pos : pos + 2])[0]
    return ident, flags, ".".join(labels), qtype, packet[12 : pos + 4]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: FakeDNS) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        reply = self.server.answer(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class FakeDNS:
    """An authoritative DNS server for `records` (name → IPv4 address) that never answers
    names under `black_hole` (a suffix such as `.blackhole.test`; None: none)."""

    def __init__(
        self, records: dict[str, str] | None = None, *, black_hole: str | None = None
    ) -> None:
        self.records = {
            name.rstrip(".").lower(): str(ipaddress.IPv4Address(address))
            for name, address in (records or {}).items()
        }
        self.black_hole = black_hole.strip(".").lower() if black_hole else None
        self.queries: Counter[tuple[str, int]] = Counter()
        self.unanswered = 0
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def nameserver(self) -> str:
        """`127.0.0.1:PORT`, for a resolver's list of servers."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Bind a UDP socket on 127.0.0.1, port 0."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=("127.0.0.1", 0)
        )
        self._transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])

    async def close(self) -> None:
        """Stop serving."""
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    async def __aenter__(self) -> FakeDNS:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def blackholed(self, name: str) -> bool:
        """Whether queries for `name` go unanswered."""
        suffix = self.black_hole
        return suffix is not None and (name == suffix or name.endswith("." + suffix))

    def answer(self, packet: bytes) -> bytes | None:
        """The reply to one query packet (None: no reply)."""
        question = _parse_question(packet)
        if question is None:
            return None
        ident, flags, name, qtype, raw = question
        self.queries[(name, qtype)] += 1
        if self.blackholed(name):
            self.unanswered += 1
            return None
        address = self.records.get(name)
        rcode = 0 if address is not None else 3  # NOERROR / NXDOMAIN
        answers = b""
        if address is not None and qtype == QTYPE_A:
            answers = (
                b"\xc0\x0c"  # the question's name
                + struct.pack("!HHIH", QTYPE_A, 1, 30, 4)
                + ipaddress.IPv4Address(address).packed
            )
        reply_flags = 0x8000 | 0x0400 | (flags & 0x0100) | rcode  # QR, AA, RD copied
        header = struct.pack("!HHHHHH", ident, reply_flags, 1, 1 if answers else 0, 0, 0)
        return header + raw + answers


__all__ = ["FakeDNS"]
