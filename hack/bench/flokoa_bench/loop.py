"""Every benchmark process runs on the same event loop: uvloop when installed.

flokoa-controller's ``--event-loop=auto`` and kopf's CLI both take uvloop when it is
importable; the limit, the envtest server, the fake endpoint and the harness do the same, so
no contender is compared on a different loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on uvloop when installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def name() -> str:
    """The loop this process would run on: ``uvloop`` or ``asyncio``."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"
