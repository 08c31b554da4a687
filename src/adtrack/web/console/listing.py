"""Search, state filter, sort and paging for the console's lists.

The catalogue service pages in id order. Other sort orders are applied here: the list is read
whole (up to the service's page limit, 1000 rows, plenty for one advertiser's trackers or one
publisher's placements) and sorted in memory. Beyond that size only the id order is offered.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from adtrack.domain.errors import ValidationError
from adtrack.domain.parsing import parse_int
from adtrack.services.catalogue import MAX_PAGE_SIZE, Page

__all__ = ["ListFetch", "Listing", "PER_PAGE_CHOICES", "list_rows"]

E = TypeVar("E")


class ListFetch(Protocol[E]):
    """A catalogue's ``list`` (``KindCatalogue.list``): one page of live objects."""

    def __call__(
        self,
        *,
        q: str | None = None,
        state: str | None = None,
        offset: int = 0,
        limit: int = 50,
        **filters: object,
    ) -> Page[E]: ...


PER_PAGE_CHOICES = (10, 25, 50, 100)
DEFAULT_PER_PAGE = 25


@dataclass
class Listing(Generic[E]):
    items: list[E]
    total: int
    offset: int
    limit: int
    sort: str
    direction: str  # "asc" | "desc"
    query: dict[str, object]  # the list's current query parameters (for links)
    sorted_in_memory: bool = True
    note: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def number(self) -> int:
        return self.offset // self.limit + 1

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.limit))


def _int(value: object, default: int, low: int, high: int) -> int:
    """A page number or size from the URL: ``default`` when absent or not a whole number
    (links are ours; a mangled one still shows a page), else clamped to ``low..high``."""
    try:
        number = parse_int(value, "page", low=-(2**63), high=2**63 - 1)
    except ValidationError:
        return default
    return min(max(number, low), high)


def _sort_value(value: object) -> tuple[int, object]:
    """None last; text case-insensitively."""
    if value is None or value == "":
        return (1, "")
    if isinstance(value, str):
        return (0, value.casefold())
    if hasattr(value, "value"):
        return (0, str(value.value))
    return (0, value)


def list_rows(
    fetch: ListFetch[E],
    params: Mapping[str, object],
    sort_keys: Mapping[str, Callable[[E], object]],
    *,
    filters: Mapping[str, object] | None = None,
    default_sort: str = "id",
    default_direction: str = "desc",
) -> Listing[E]:
    """One page of ``fetch`` (a ``CatalogueService.list_*`` method) for the query ``params``
    (``q``, ``state``, ``sort``, ``dir``, ``page``, ``per_page``); ``filters`` are passed on."""
    q = str(params.get("q") or "").strip() or None
    given_state = params.get("state")
    state = given_state if given_state in ("active", "inactive") else None
    sort = str(params.get("sort") or default_sort)
    if sort not in sort_keys:
        sort = default_sort
    direction = str(params["dir"]) if params.get("dir") in ("asc", "desc") else default_direction
    per_page = _int(params.get("per_page"), DEFAULT_PER_PAGE, 1, 100)
    page = _int(params.get("page"), 1, 1, 1_000_000)
    query: dict[str, object] = {
        "q": q,
        "state": state,
        "sort": sort,
        "dir": direction,
        "per_page": per_page if per_page != DEFAULT_PER_PAGE else None,
        **{k: v for k, v in (filters or {}).items() if v is not None},
    }
    extra = dict(filters or {})
    whole = fetch(q=q, state=state, offset=0, limit=MAX_PAGE_SIZE, **extra)
    if whole.total <= MAX_PAGE_SIZE:
        key = sort_keys[sort]
        items = sorted(whole.items, key=lambda e: _sort_value(key(e)), reverse=direction == "desc")
        pages = max(1, math.ceil(len(items) / per_page))
        page = min(page, pages)
        offset = (page - 1) * per_page
        return Listing(
            items[offset : offset + per_page],
            whole.total,
            offset,
            per_page,
            sort,
            direction,
            query,
        )
    # Too many to sort here: the service's id order, paged by the service.
    offset = (page - 1) * per_page
    chunk = fetch(q=q, state=state, offset=offset, limit=per_page, **extra)
    query["sort"], query["dir"] = "id", "asc"
    return Listing(
        chunk.items,
        chunk.total,
        offset,
        per_page,
        "id",
        "asc",
        query,
        sorted_in_memory=False,
        note=f"More than {MAX_PAGE_SIZE} rows: sorted by id. Search to narrow the list.",
    )
