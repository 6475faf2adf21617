"""Nothing internal is echoed: status, events and logs quote only a provider's own error
shape, bounded and scrubbed; any other body is described by its type and size."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
import pytest
from aiohttp import web
from flokoa_envtest.dev import DEV_ALLOWED_DESTINATIONS
from flokoa_envtest.testing import serve_local

from flokoa_controller.controllers.setup import ControllerSettings
from flokoa_controller.providers import ProbeHTTP, ProbeTarget, probe_provider
from flokoa_controller.providers.destinations import DestinationPolicy
from flokoa_controller.providers.result import error_detail, from_response

from .conftest import MakeOperator

INTERNAL = (
    "AKIAIOSFODNN7EXAMPLE",
    "db_password=hunter2-internal",
    "root:x:0:0",
    "kube-system",
)
"""Fragments an internal service (or a metadata endpoint) might answer with."""

HTML = (
    "<html><head><title>Admin console</title></head><body>"
    + " ".join(INTERNAL)
    + " <pre>"
    + "x" * 1500
    + "</pre></body></html>"
).encode()


class BodyServer:
    """Answers every request with one status, content type and body (127.0.0.1)."""

    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        self.status, self.content_type, self.body = status, content_type, body
        self.requests = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(
            status=self.status, body=self.body, headers={"Content-Type": self.content_type}
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> BodyServer:
        self._runner, self.port = await serve_local(self._handle, shutdown_timeout=0.1)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def html_500() -> AsyncIterator[BodyServer]:
    async with BodyServer(500, "text/html; charset=utf-8", HTML) as server:
        yield server


def assert_nothing_internal(text: str) -> None:
    for fragment in INTERNAL:
        assert fragment not in text, text
    assert "Admin console" not in text, text


# -- the mapping ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html", HTML),
        ("text/plain", " ".join(INTERNAL).encode()),
        ("application/json", orjson.dumps({"detail": " ".join(INTERNAL)})),
        ("application/json", orjson.dumps({"message": " ".join(INTERNAL)})),
        ("application/json", orjson.dumps(" ".join(INTERNAL))),
        ("application/xml", b"<Message>" + " ".join(INTERNAL).encode() + b"</Message>"),
    ],
)
def test_bodies_outside_the_provider_shape_are_described_not_quoted(
    content_type: str, body: bytes
) -> None:
    result = from_response(
        "provider",
        method="GET",
        url="https://h/v1/models",
        status=500,
        body=body,
        duration=0,
        shape="openai",
        headers={"Content-Type": content_type},
    )
    assert result.reason == "ProviderUnavailable"
    assert_nothing_internal(result.message)
    assert f"({content_type}, {len(body)} bytes)" in result.message, result.message


@pytest.mark.parametrize(
    ("shape", "body", "headers", "expected"),
    [
        ("openai", {"error": {"message": "Incorrect API key"}}, {}, "Incorrect API key"),
        (
            "anthropic",
            {"type": "error", "error": {"type": "authentication_error", "message": "bad key"}},
            {},
            "authentication_error: bad key",
        ),
        (
            "google",
            {"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "no access"}},
            {},
            "PERMISSION_DENIED: no access",
        ),
        (
            "aws",
            {"message": "not authorized"},
            {"x-amzn-ErrorType": "AccessDeniedException:http://internal.amazon.com/"},
            "AccessDeniedException: not authorized",
        ),
    ],
)
def test_provider_error_shapes_are_quoted(
    shape: Any, body: Any, headers: Mapping[str, str], expected: str
) -> None:
    assert error_detail(orjson.dumps(body), shape=shape, headers=headers) == expected


def test_quoted_text_is_bounded_scrubbed_and_free_of_control_characters() -> None:
    secret = "sk-proj-abcdefghijklmnopqrstuvwxyz0123"
    body = {"error": {"message": f"key {secret}\x1b[31m\u202e" + "y" * 500}}
    text = error_detail(orjson.dumps(body), [secret], shape="openai")
    assert secret not in text
    assert "\x1b" not in text
    assert "\u202e" not in text
    assert len(text) <= 200


# -- end to end: status, events, logs ---------------------------------------------------------


async def test_secret_looking_500_never_reaches_status_events_or_logs(
    operator: MakeOperator, html_500: BodyServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = ControllerSettings(allow_destinations=DEV_ALLOWED_DESTINATIONS)
    async with operator(settings) as op:
        await op.put_secret("key", {"api-key": "sk-test-0123456789abcdef"})
        await op.put_provider(
            "leaky",
            {"apiKeySecretRef": {"name": "key"}, "openai": {"baseURL": html_500.url}},
        )
        ready = await op.wait_ready_reason("leaky", "ProviderUnavailable")
        events = await op.events("leaky")
        obj = op.controllers.providers.store.get_by("leaky", op.namespace)
    assert html_500.requests >= 1
    assert f"(text/html, {len(HTML)} bytes)" in str(ready["message"])
    assert events
    assert_nothing_internal(orjson.dumps((obj or {}).get("status")).decode())
    assert_nothing_internal(orjson.dumps(events).decode())
    assert_nothing_internal(caplog.text)


async def test_destination_not_allowed_end_to_end(
    operator: MakeOperator, html_500: BodyServer
) -> None:
    """The default settings (loopback denied): Ready=False DestinationNotAllowed,
    EndpointReachable=False, an event saying so, and not one request at the server."""
    async with operator(ControllerSettings()) as op:
        await op.put_secret("key", {"api-key": "sk-test-0123456789abcdef"})
        await op.put_provider(
            "loopback",
            {"apiKeySecretRef": {"name": "key"}, "openai": {"baseURL": html_500.url}},
        )
        ready = await op.wait_ready_reason("loopback", "DestinationNotAllowed")
        endpoint = op.condition("loopback", "EndpointReachable")
        events = await op.events("loopback")
    assert ready["status"] == "False"
    assert "destination 127.0.0.1 is not allowed" in ready["message"]
    assert "--allow-destinations" in ready["message"]
    assert endpoint is not None
    assert (endpoint["status"], endpoint["reason"]) == ("False", "DestinationNotAllowed")
    assert any("DestinationNotAllowed" in e["reason"] + e["message"] for e in events)
    assert html_500.requests == 0


async def test_probe_http_quotes_nothing_of_an_html_error(html_500: BodyServer) -> None:
    policy = DestinationPolicy.build(allow=DEV_ALLOWED_DESTINATIONS)
    async with ProbeHTTP(policy=policy) as http:
        result = await probe_provider(
            ProbeTarget(kind="anthropic", base_url=html_500.url, api_key="k-123456789"), http
        )
    assert result.reason == "ProviderUnavailable"
    assert_nothing_internal(result.message)
