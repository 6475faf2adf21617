"""Which failed API requests are retried, how often and how long to wait (tenacity).

Only transient failures are retried, and only when repeating the request cannot do harm:

| failure                                             | GET, PUT, DELETE | POST, PATCH |
|-----------------------------------------------------|------------------|-------------|
| no connection made (refused, DNS, connect timeout)  | retry            | retry       |
| connection lost after sending (reset, disconnected, |                  |             |
| read timeout)                                       | retry            | no          |
| 429 TooManyRequests (waits `Retry-After` if given)  | retry            | retry       |
| 5xx (waits `Retry-After` if given)                  | retry            | no          |
| TLS certificate verification failure, other 4xx    | no               | no          |

GET, PUT and DELETE are idempotent (RFC 9110): a repeated PUT either stores the same object
again or, when it carries the `resourceVersion` it was based on, fails with 409 Conflict,
which the caller handles like any conflict; a repeated DELETE finds the object gone (404).
A POST (create) or PATCH may have been applied by the server before it failed, so it is not
repeated when the outcome is unknown; a 429 is always safe, as the server refused the
request without processing it. Watches are never retried here: the reflector restarts them.
401 is handled separately by the client (the token is re-read once).

Waits: the server's `Retry-After` (header or `details.retryAfterSeconds`) when given, capped
at `max_retry_after`; otherwise exponential backoff with full jitter from `initial_backoff`
to `max_backoff`. At most `max_attempts` attempts, and no wait that would end past
`max_elapsed` seconds after the first attempt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_random_exponential,
)

from flokoa_controller.kube.errors import (
    ApiError,
    ConnectionFailed,
    ServerError,
    TooManyRequests,
)

__all__ = ["IDEMPOTENT_METHODS", "RetryPolicy", "call_with_retries", "is_retryable"]

log = logging.getLogger(__name__)

T = TypeVar("T")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
"""HTTP methods that are safe to repeat when their outcome is unknown."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds and waits of the client's retries."""

    max_attempts: int = 5
    """Attempts in total, the first included (1 disables retries)."""
    max_elapsed: float = 60.0
    """Seconds after the first attempt past which no retry is started."""
    initial_backoff: float = 0.2
    """Upper bound of the first jittered backoff, in seconds (doubles per attempt)."""
    max_backoff: float = 10.0
    """Cap of the jittered exponential backoff, in seconds."""
    max_retry_after: float = 60.0
    """Cap on a wait the server asks for with Retry-After, in seconds."""
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    """How to wait (injectable for tests)."""


def is_retryable(exc: BaseException, method: str) -> bool:
    """Whether a request with HTTP `method` that failed with `exc` may be retried."""
    if isinstance(exc, ConnectionFailed):
        if exc.permanent:
            return False
        return not exc.request_sent or method.upper() in IDEMPOTENT_METHODS
    if isinstance(exc, TooManyRequests):
        return True
    if isinstance(exc, ServerError) or (isinstance(exc, ApiError) and exc.code >= 500):
        return method.upper() in IDEMPOTENT_METHODS
    return False


def _stop(policy: RetryPolicy) -> Callable[[RetryCallState], bool]:
    def stop(state: RetryCallState) -> bool:
        if state.attempt_number >= policy.max_attempts:
            return True
        # Time spent so far: measured, or the sum of the waits when `sleep` is not real.
        elapsed = max(state.seconds_since_start or 0.0, state.idle_for)
        return elapsed + state.upcoming_sleep > policy.max_elapsed

    return stop


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_random_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, ApiError) and exc.retry_after is not None:
            return min(exc.retry_after, policy.max_retry_after)
        return float(backoff(state))

    return wait


async def call_with_retries(
    fn: Callable[[], Awaitable[T]], method: str, policy: RetryPolicy, *, what: str = ""
) -> T:
    """Await `fn()`, again after transient failures as `policy` and `is_retryable` allow.

    `fn` must be a coroutine function (tenacity calls anything else synchronously). The
    last failure is raised as is when retries are exhausted or not allowed.
    """

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.info(
            "retrying %s in %.3fs (attempt %d failed: %s)",
            what or method,
            wait,
            state.attempt_number,
            exc,
        )

    # Fast path: most requests succeed at once, without the cost of a tenacity loop.
    try:
        return await fn()
    except Exception as exc:
        if policy.max_attempts <= 1 or not is_retryable(exc, method):
            raise
        first_failure: Exception | None = exc

    async def attempt() -> T:
        # Attempt 1 of the loop replays the failure already seen (no request is sent), so
        # that waits, attempt counts and the time budget include it.
        nonlocal first_failure
        if first_failure is not None:
            failure, first_failure = first_failure, None
            raise failure
        return await fn()

    retrying = AsyncRetrying(
        stop=_stop(policy),
        wait=_wait(policy),
        retry=retry_if_exception(lambda exc: is_retryable(exc, method)),
        sleep=policy.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return await retrying(attempt)
