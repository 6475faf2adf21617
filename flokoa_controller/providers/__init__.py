"""Provider probes: authenticated, free checks of an LLM provider and its models.

`probes_of(kind)` gives a provider kind's `probe_provider(target, http)` and
`probe_model(target, model, http)`, importing its module on first use: botocore (about
6 MiB of memory) is only loaded once a Bedrock provider exists, and the Vertex AI client
code once a Google provider does. `probe_provider`/`probe_model` here dispatch on
`target.kind`. Every probe goes through one `ProbeHTTP` (TLS, proxies, default headers,
timeouts, per-host bounds, identity broker) and returns a `ProbeResult`.
"""

from __future__ import annotations

import functools
import importlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from flokoa_controller.providers.http import ProbeHTTP
from flokoa_controller.providers.result import ProbeResult, Reason, failure, raised_at
from flokoa_controller.providers.target import (
    AWSCredentials,
    BedrockSettings,
    Kind,
    ProbeTarget,
    TLSSettings,
    VertexSettings,
    detect_flavor,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProviderProbes:
    """The two probes of one provider kind."""

    probe_provider: Callable[[ProbeTarget, ProbeHTTP], Awaitable[ProbeResult]]
    probe_model: Callable[[ProbeTarget, str, ProbeHTTP], Awaitable[ProbeResult]]


PROBE_MODULES: Mapping[Kind, str] = MappingProxyType(
    {
        "openai": f"{__name__}.openai",
        "anthropic": f"{__name__}.anthropic",
        "google": f"{__name__}.google",
        "bedrock": f"{__name__}.bedrock",
    }
)
"""Provider kind → the module with its probes."""


@functools.cache
def probes_of(kind: Kind) -> ProviderProbes:
    """The probes of provider ``kind`` (its module imported on first use)."""
    module = importlib.import_module(PROBE_MODULES[kind])
    return ProviderProbes(module.probe_provider, module.probe_model)


async def probe_provider(target: ProbeTarget, http: ProbeHTTP) -> ProbeResult:
    """Check `target`'s credentials and network path with a free list call. Never raises
    (but for cancellation): an unexpected exception becomes a `ProbeError` result."""
    started = time.monotonic()
    try:
        return await probes_of(target.kind).probe_provider(target, http)
    except Exception as exc:
        return _probe_error(target, exc, started)


async def probe_model(target: ProbeTarget, model: str, http: ProbeHTTP) -> ProbeResult:
    """Check that `model` exists at `target` with a free get call. Never raises (but for
    cancellation): an unexpected exception becomes a `ProbeError` result."""
    started = time.monotonic()
    try:
        return await probes_of(target.kind).probe_model(target, model, http)
    except Exception as exc:
        return _probe_error(target, exc, started)


def _probe_error(target: ProbeTarget, exc: Exception, started: float) -> ProbeResult:
    # The exception text is not logged: it could carry a secret. Type and place are enough.
    logger.error(
        "%s probe failed unexpectedly: %s%s", target.kind, type(exc).__name__, raised_at(exc)
    )
    return failure(
        Reason.PROBE_ERROR,
        f"the {target.kind} probe failed unexpectedly ({type(exc).__name__})",
        url=target.base_url or "",
        duration=time.monotonic() - started,
        secrets=target.secret_values(),
    )


__all__ = [
    "PROBE_MODULES",
    "AWSCredentials",
    "BedrockSettings",
    "ProbeHTTP",
    "ProbeResult",
    "ProbeTarget",
    "ProviderProbes",
    "Reason",
    "TLSSettings",
    "VertexSettings",
    "detect_flavor",
    "probe_model",
    "probe_provider",
    "probes_of",
]
