"""Hostile response bodies cannot stall the controller.

Every probe's error body goes through `from_response` on the event loop, up to `ProbeHTTP`'s
`max_body` (8 MiB, and gzip lets a few kilobytes on the wire become that). A parse whose
cost grows with the square of the body stalls every reconcile, watch and Lease renewal of
the process for hours. Each case runs in a child process with a deadline far above the
linear cost (milliseconds) and far below the quadratic one (minutes to hours): the child is
killed when it overruns, so a failure cannot hang the suite.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import pytest

from flokoa_controller.providers import ProbeHTTP, ProbeTarget, probe_provider
from flokoa_controller.providers.destinations import DestinationPolicy

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
"""Characters no status message may hold (terminal escapes, C1 controls, bidi overrides)."""

DEADLINE = 30.0
"""Seconds the child may take: the linear parse of these bodies takes milliseconds; the
quadratic one of the 1 MiB bodies takes several minutes even on a fast machine."""

CHILD = """
import sys
import orjson
from flokoa_controller.providers.result import from_response

case = sys.argv[1]
n = 1 << 20
if case == "aws-xml-unclosed-error":
    body, shape, ctype = b"<" + b"<Error>" * (n // 7), "aws", "application/xml"
elif case == "aws-xml-unclosed-code":
    body, shape, ctype = b"<Error>" + b"<Code>" * (n // 6) + b"</Error>", "aws", "application/xml"
elif case == "jwt-like-message":
    body = orjson.dumps({"error": {"message": "eyJ-" * (n // 4)}})
    shape, ctype = "openai", "application/json"
else:
    raise SystemExit(f"unknown case {case}")
result = from_response(
    "provider", method="GET", url="https://h/v1/models", status=500, body=body,
    duration=0, shape=shape, headers={"Content-Type": ctype},
)
assert result.reason == "ProviderUnavailable", result
assert len(result.message) < 1000, len(result.message)
print("ok")
"""


@pytest.mark.parametrize(
    "case", ["aws-xml-unclosed-error", "aws-xml-unclosed-code", "jwt-like-message"]
)
def test_error_body_parse_is_not_quadratic(case: str) -> None:
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, case],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"parsing a 1 MiB {case} body did not finish in {DEADLINE:.0f} s")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# -- a redirect's Location is the server's text too ---------------------------------------

LOCATION = "http://10.0.0.7/admin/\x1b[31m\u202e\u2066".encode() + b"\xc2\x9b" + b"a" * 6000
"""A Location with a terminal escape, bidi controls, a C1 CSI (UTF-8) and 6000 more bytes."""


async def test_redirect_location_is_bounded_and_free_of_control_characters() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 302 Found\r\nLocation: " + LOCATION + b"\r\nContent-Length: 0\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    policy = DestinationPolicy.build(allow="127.0.0.0/8")
    try:
        async with ProbeHTTP(policy=policy) as http:
            target = ProbeTarget(
                kind="openai", base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-x-01234567"
            )
            result = await probe_provider(target, http)
    finally:
        server.close()
        await server.wait_closed()
    assert result.reason == "UnexpectedResponse", result
    assert "redirect to http://10.0.0.7/admin/" in result.message, result.message
    assert not CONTROL.search(result.message), repr(result.message)
    assert len(result.message) < 1000, len(result.message)
