"""`CredentialCache`: credential objects (botocore, google-auth) reused between probes.

Keyed by `ProbeTarget.fingerprint()` (prefixed by the provider), so a changed Secret or spec is
a new entry and repeated probes of an unchanged provider do not re-run STS calls or token
grants until the credential object itself decides it must refresh. Entries are bounded (least
recently used out) and expire after an idle period; each entry carries a lock that callers
hold while refreshing, so concurrent probes never refresh the same credential twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

T = TypeVar("T")


@dataclass
class CachedCredential(Generic[T]):
    """One cache entry: the credential object and the lock guarding its refresh."""

    value: T
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used: float = 0.0


class CredentialCache:
    """A bounded, idle-expiring map of fingerprint → credential object.

    - `max_entries`: entries kept (least recently used evicted first).
    - `idle_seconds`: an entry unused this long is dropped on the next access.
    - `clock`: monotonic time source (tests inject one).
    """

    def __init__(
        self,
        *,
        max_entries: int = 256,
        idle_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: OrderedDict[str, CachedCredential[object]] = OrderedDict()
        self._creating: dict[str, asyncio.Lock] = {}
        self._max_entries = max_entries
        self._idle_seconds = idle_seconds
        self._clock = clock
        self.created = 0
        """How many entries were created (a cache miss each): tests and metrics read it."""

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self, now: float) -> None:
        stale = [k for k, e in self._entries.items() if now - e.last_used > self._idle_seconds]
        for key in stale:
            del self._entries[key]

    async def get(self, key: str, create: Callable[[], Awaitable[T]]) -> CachedCredential[T]:
        """The entry for `key`, calling `create()` once (even under concurrency) on a miss.

        An exception from `create()` is propagated and nothing is cached.
        """
        now = self._clock()
        self._expire(now)
        entry = self._entries.get(key)
        if entry is None:
            lock = self._creating.setdefault(key, asyncio.Lock())
            async with lock:
                entry = self._entries.get(key)
                if entry is None:
                    try:
                        value = await create()
                    finally:
                        self._creating.pop(key, None)
                    entry = CachedCredential(value=cast(object, value))
                    self._entries[key] = entry
                    self.created += 1
                    while len(self._entries) > self._max_entries:
                        self._entries.popitem(last=False)
        if key in self._entries:
            self._entries.move_to_end(key)
        entry.last_used = now
        return cast(CachedCredential[T], entry)

    def invalidate(self, key: str) -> None:
        """Forget `key` (after the provider rejected its credentials, say)."""
        self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()
