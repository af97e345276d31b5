"""Keyset pages for the operator UI's lists: "older" links instead of page numbers.

Ids are UUIDv7 (time-ordered), so ``-id`` is newest first and ``id < before`` is the next page.
No COUNT(*) and no OFFSET: a page costs the same at row 50 and at row 5,000,000.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest

PAGE_SIZE = 50


@dataclass
class Page:
    items: list[Any]
    older: str | None  # the ``before`` value of the next (older) page, None on the last page
    first: bool  # the newest page (no ``before``)


def keyset_page(queryset: QuerySet, request: HttpRequest, size: int = PAGE_SIZE) -> Page:
    before = request.GET.get("before", "")
    try:
        cursor = uuid.UUID(before) if before else None
    except ValueError:
        cursor = None  # a mangled link shows the newest page rather than an error page
    if cursor is not None:
        queryset = queryset.filter(id__lt=cursor)
    rows = list(queryset.order_by("-id")[: size + 1])
    older = str(rows[size - 1].id) if len(rows) > size else None
    return Page(items=rows[:size], older=older, first=cursor is None)


def query_without(request: HttpRequest, *names: str) -> str:
    """The current query string minus ``names`` (for links that keep the filters)."""
    params = request.GET.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()
