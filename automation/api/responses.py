"""What every API view answers with: one error shape, one kind of pagination."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Field, QuerySet
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
    _position_field: Field | None = None

    def paginate_queryset(self, queryset: QuerySet, request: Any, view: Any = None) -> Any:
        ordering = self.get_ordering(request, queryset, view)
        self._position_field = queryset.model._meta.get_field(ordering[0].lstrip("-"))
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Any) -> Any:
        # DRF answers a cursor it cannot read with 404; it is bad input, so 400 naming it.
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise self._invalid() from None
        if cursor is not None and cursor.position is not None:
            self._check_position(cursor.position)
        return cursor

    def _check_position(self, position: str) -> None:
        """A cursor decodes to any text (``p=garbage``); the position must be a value of the
        ordering field, or filtering by it fails deep in the ORM (a 500 before)."""
        field = self._position_field
        if field is None:
            return
        try:
            field.get_prep_value(field.to_python(position))
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            raise self._invalid() from None

    def _invalid(self) -> ValidationError:
        return ValidationError(
            {self.cursor_query_param: ["Invalid cursor; use the next or previous link."]}
        )


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
