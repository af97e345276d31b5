"""What every API view answers with: one error shape, one kind of pagination."""

from __future__ import annotations

from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import generics
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response


def error(status: int, code: str, message: str, **extra: Any) -> Response:
    """``{"error": {"code", "message", ...}}``: a code a program can test and a message a
    person can act on."""
    return Response({"error": {"code": code, "message": message, **extra}}, status=status)


class Pagination(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"

    def decode_cursor(self, request: Any) -> Any:
        # DRF answers a cursor it cannot read with 404; it is bad input, so 400 naming it.
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError(
                {self.cursor_query_param: ["Invalid cursor; use the next or previous link."]}
            ) from None


def newest_first(*ordering: str, max_page_size: int = 500) -> type[CursorPagination]:
    """Cursor pagination (stable under inserts, no COUNT) ordered by ``ordering``."""
    return type(
        "NewestFirstPagination",
        (Pagination,),
        {
            "ordering": ordering,
            "max_page_size": max_page_size,
        },
    )


class ListView(generics.ListAPIView):
    """A list endpoint: django-filter ``filterset_class`` filters, ``?ordering=`` among
    ``ordering_fields`` (``-name`` for descending; ``ordering`` is the default) and cursor
    pagination in that order (``?page_size=``, ``next``/``previous`` links)."""

    filter_backends = [DjangoFilterBackend, OrderingFilter]
    pagination_class = newest_first("-created_at", "-id")
