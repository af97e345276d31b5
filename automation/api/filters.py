"""Query-string filters of the runs API (django-filter: invalid values answer 400 naming them)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError

from automation.api.fields import IdPrefixFilter, UtcIsoDateTimeFilter
from automation.engine import search
from automation.models import Run, RunStatus
from automation.selectors import run_search


class RunFilter(django_filters.FilterSet):
    workflow = django_filters.CharFilter(
        field_name="workflow__name", help_text="The workflow's name."
    )
    status = django_filters.ChoiceFilter(choices=RunStatus.choices)
    q = django_filters.CharFilter(
        method="filter_q",
        max_length=200,
        help_text="A run id, a short id (e.g. b242fe9c) or a correlation id: the search box of "
        "the runs page.",
    )
    correlation_id = django_filters.CharFilter()
    id_prefix = IdPrefixFilter()
    created_after = UtcIsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="ISO 8601, e.g. 2026-01-31T12:00Z"
    )
    created_before = UtcIsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="ISO 8601, e.g. 2026-01-31T12:00Z"
    )

    def filter_queryset(self, queryset: QuerySet[Run]) -> Any:
        """The declared filters, then every ``search.<key>=<value>`` (exact, on text)."""
        try:
            pairs = search.parse_filters(self.data)
        except search.SearchAttributeError as exc:
            raise ValidationError({"search": [str(exc)]}) from None
        return search.filter_runs(super().filter_queryset(queryset), pairs)

    class Meta:
        model = Run
        fields = [
            "q", "workflow", "status", "correlation_id", "id_prefix", "created_after",
            "created_before",
        ]  # fmt: skip

    def filter_q(self, queryset: QuerySet[Run], name: str, value: str) -> QuerySet[Run]:
        return queryset.filter(run_search(value))
