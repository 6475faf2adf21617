"""`list_all_pages`: pages merged into one list; an expired continue token lists in full."""

from __future__ import annotations

from typing import Any

import pytest

from flokoa_controller.kube.errors import Gone
from flokoa_controller.kube.pager import list_all_pages


class Pages:
    """A fake list endpoint: two pages, optionally expiring the continue token."""

    def __init__(self, *, expire: bool = False) -> None:
        self.calls: list[tuple[int | None, str | None, str | None]] = []
        self.expire = expire

    async def __call__(
        self, *, limit: int | None, continue_token: str | None, resource_version: str | None
    ) -> dict[str, Any]:
        self.calls.append((limit, continue_token, resource_version))
        if continue_token is None and limit is None:
            return {"metadata": {"resourceVersion": "9"}, "items": [1, 2, 3]}
        if continue_token is None:
            return {
                "metadata": {"resourceVersion": "7", "continue": "c1", "remainingItemCount": 1},
                "items": [1, 2],
            }
        if self.expire:
            raise Gone(410, "Expired", "continue token expired")
        return {"metadata": {"resourceVersion": "7"}, "items": [3]}


async def test_pages_are_merged_and_resource_version_only_goes_first() -> None:
    pages = Pages()
    result = await list_all_pages(pages, page_size=2, resource_version="5", what="things")
    assert result == {"metadata": {"resourceVersion": "7"}, "items": [1, 2, 3]}
    assert pages.calls == [(2, None, "5"), (2, "c1", None)]


async def test_an_expired_continue_token_lists_in_full() -> None:
    pages = Pages(expire=True)
    result = await list_all_pages(pages, page_size=2, resource_version=None, what="things")
    assert result == {"metadata": {"resourceVersion": "9"}, "items": [1, 2, 3]}
    assert pages.calls[-1] == (None, None, None)


async def test_gone_on_the_first_page_is_raised() -> None:
    async def gone(
        *, limit: int | None, continue_token: str | None, resource_version: str | None
    ) -> dict[str, Any]:
        raise Gone(410, "Expired", "too old")

    with pytest.raises(Gone):
        await list_all_pages(gone, page_size=2, resource_version="1", what="things")
