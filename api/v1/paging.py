"""Pages by offset and limit: the query parameters, and a page of what a route found.

OffsetQuery  `offset`, 0 to 10^9 (a route gives the default)
LimitQuery   `limit`, 1 to 500 (a route gives the default)
page         the page model filled with items offset..offset+limit of what was found
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query
from pydantic import BaseModel

OffsetQuery = Annotated[int, Query(ge=0, le=10**9)]
LimitQuery = Annotated[int, Query(ge=1, le=500)]

PageModel = TypeVar("PageModel", bound=BaseModel)
Found = TypeVar("Found")


def page(
    model: type[PageModel],
    found: Sequence[Found],
    out: Callable[[Found], Any],
    offset: int,
    limit: int,
) -> PageModel:
    """`model` (items, total, offset, limit) for one page of `found`, each item as `out` says."""
    return model(
        items=[out(item) for item in found[offset : offset + limit]],
        total=len(found),
        offset=offset,
        limit=limit,
    )
