"""Paginated lists, as client-go's `tools/pager`: one list object from pages.

When a continue token has expired (410 Gone) the list is fetched again in one piece.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, Protocol

from flokoa_controller.kube.errors import Gone

__all__ = ["ListPage", "list_all_pages"]

log = logging.getLogger(__name__)


class ListPage(Protocol):
    """Fetches one page of a list: `limit`/`continue_token`/`resource_version` as the API
    server's `limit`, `continue` and `resourceVersion` (None: not sent)."""

    def __call__(
        self,
        *,
        limit: int | None,
        continue_token: str | None,
        resource_version: str | None,
    ) -> Awaitable[dict[str, Any]]:
        """One page: a list object whose `metadata.continue` names the next page."""
        ...


async def list_all_pages(
    list_page: ListPage,
    *,
    page_size: int,
    resource_version: str | None,
    what: object,
) -> dict[str, Any]:
    """The whole list, fetched in pages of `page_size` and returned as one list object
    (`items` of every page; `metadata.resourceVersion` of the snapshot).

    When a continue token has expired (410) the list is fetched again in one piece, as
    client-go's pager does. `resource_version` applies to the first request only (the API
    server refuses it together with a continue token). `what` names the list in logs.
    """
    items: list[Any] = []
    token: str | None = None
    while True:
        try:
            page = await list_page(
                limit=page_size,
                continue_token=token,
                resource_version=None if token else resource_version,
            )
        except Gone:
            if token is None:
                raise
            log.info("continue token of %s expired: listing it in full", what)
            return await list_page(limit=None, continue_token=None, resource_version=None)
        items.extend(page.get("items") or ())
        metadata = page.setdefault("metadata", {})
        token = metadata.pop("continue", None) or None
        if token is None:
            metadata.pop("remainingItemCount", None)
            page["items"] = items
            return page
