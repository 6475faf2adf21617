"""The request log tests read: one entry per API request, with kube's verb and the outcome."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

DEFAULT_AUDIT_LIMIT = 100_000
"""Entries an :class:`AuditLog` keeps by default (oldest dropped first)."""

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
"""Verbs that change state."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One request as the server saw and answered it."""

    time: datetime
    """When the request arrived (UTC)."""
    method: str
    """HTTP method."""
    path: str
    """URL path."""
    query: dict[str, str] = field(default_factory=dict)
    """Query parameters (first value of each)."""
    verb: str = ""
    """kube verb (get, list, watch, create, update, patch, delete, deletecollection) or the
    lower-case HTTP method for non-resource paths."""
    user_agent: str = ""
    code: int = 0
    """HTTP status answered (for watches: the status the stream started with)."""
    group: str = ""
    version: str = ""
    resource: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    content_type: str = ""
    """Request body media type (writes)."""

    @property
    def is_write(self) -> bool:
        """Whether the verb changes state."""
        return self.verb in WRITE_VERBS


class AuditLog:
    """A bounded, list-like log of :class:`AuditEntry` (oldest dropped first).

    ``max_entries``: how many entries are kept (0: none, the log stays empty).
    """

    def __init__(self, max_entries: int = DEFAULT_AUDIT_LIMIT) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must not be negative")
        self._entries: deque[AuditEntry] = deque(maxlen=max_entries)

    def append(self, entry: AuditEntry) -> None:
        """Record one request."""
        self._entries.append(entry)

    def __iter__(self) -> Iterator[AuditEntry]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index: int) -> AuditEntry:
        return self._entries[index]

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()

    def filter(
        self,
        *,
        verb: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
        user_agent: str | None = None,
        code: int | None = None,
    ) -> list[AuditEntry]:
        """Entries matching every given criterion (``user_agent`` matches a prefix)."""
        out = []
        for e in self._entries:
            if verb is not None and e.verb != verb:
                continue
            if resource is not None and e.resource != resource:
                continue
            if namespace is not None and e.namespace != namespace:
                continue
            if name is not None and e.name != name:
                continue
            if subresource is not None and e.subresource != subresource:
                continue
            if user_agent is not None and not e.user_agent.startswith(user_agent):
                continue
            if code is not None and e.code != code:
                continue
            out.append(e)
        return out

    def writes(
        self, *, resource: str | None = None, user_agent: str | None = None
    ) -> list[AuditEntry]:
        """Requests that changed state (create, update, patch, delete, deletecollection)."""
        return [e for e in self.filter(resource=resource, user_agent=user_agent) if e.is_write]
