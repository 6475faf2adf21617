"""The event loop the operator runs on: uvloop when it is installed, else asyncio's own.

uvloop (libuv under the asyncio API) spends less CPU per socket operation than the
selector loop; the operator's work is mostly many small HTTP exchanges with the API server
and the providers, so it serves more objects per core on uvloop. ``--event-loop`` picks
one: ``auto`` (uvloop if importable), ``uvloop`` (required: a usage error without it) or
``asyncio``. Behaviour is the same on both; only the CPU cost differs.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["EVENT_LOOPS", "loop_factory", "run"]

T = TypeVar("T")

EVENT_LOOPS = ("auto", "uvloop", "asyncio")
"""Values of ``--event-loop``."""


def loop_factory(choice: str = "auto") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the chosen loop (``None``: asyncio's default).

    Raises ``ValueError`` for ``uvloop`` when it is not installed, or an unknown choice.
    """
    if choice not in EVENT_LOOPS:
        raise ValueError(f"--event-loop must be one of {', '.join(EVENT_LOOPS)}: {choice!r}")
    if choice == "asyncio":
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        if choice == "uvloop":
            raise ValueError("--event-loop=uvloop: uvloop is not installed") from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], choice: str = "auto") -> T:
    """``asyncio.run(main)`` on the chosen event loop."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)
