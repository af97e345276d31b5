"""Keyset pages for the operator UI's lists: "older" links instead of page numbers.

Ids are UUIDv7 (time-ordered), so ``-id`` is newest first and ``id < before`` is the next page.
No COUNT(*) and no OFFSET: a page costs the same at row 50 and at row 5,000,000.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property

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


# --- admin changelists on large tables --------------------------------------------------------


class LargeTablePaginator(Paginator):
    """Django admin's paginator without an exact COUNT(*) over a large table.

    The changelist counts its rows on every page load; over a million events that COUNT is most
    of the page's time. Up to ``EXACT_UP_TO`` matching rows the count is exact (a count over a
    ``LIMIT``, so it never reads more rows than that); beyond, PostgreSQL's own estimate is used
    (the table's ``reltuples`` when unfiltered, the planner's row estimate when filtered) and
    other databases report ``EXACT_UP_TO + 1``. Page links past the estimate may then come up
    empty; the newest rows, which people look at, are always exact.
    """

    EXACT_UP_TO = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        capped = queryset.order_by()[: self.EXACT_UP_TO + 1].count()
        if capped <= self.EXACT_UP_TO:
            return capped
        return max(self.EXACT_UP_TO + 1, _estimated_count(queryset))


def _estimated_count(queryset: QuerySet) -> int:
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        if not queryset.query.where:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [connection.ops.quote_name(queryset.model._meta.db_table)],
            )
        else:
            sql, params = queryset.order_by().values("pk").query.sql_with_params()
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        row = cursor.fetchone()
    if row is None:
        return 0
    value = row[0]
    if isinstance(value, int):
        return value
    plan = json.loads(value) if isinstance(value, str) else value
    return int(plan[0]["Plan"]["Plan Rows"])
