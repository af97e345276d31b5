"""Query-string filters of the events API (django-filter: invalid values answer 400)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError

from automation.api.fields import IdPrefixFilter, UtcIsoDateTimeFilter
from events.models import Event, WebhookEndpoint
from events.selectors import (
    SEARCH_MAX_LENGTH,
    SEARCH_MAX_WORDS,
    SEARCH_MIN_LENGTH,
    BadFilter,
    data_search,
)


class EventFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="filter_q",
        min_length=SEARCH_MIN_LENGTH,
        max_length=SEARCH_MAX_LENGTH,
        help_text=f"Words in the event data (its string and number values, at any depth), "
        f"{SEARCH_MIN_LENGTH} to {SEARCH_MAX_LENGTH} characters, at most {SEARCH_MAX_WORDS} "
        "words; every word must match. PostgreSQL matches the start of words, SQLite any part "
        "of a value.",
    )
    type = django_filters.CharFilter(
        method="filter_type", help_text="An exact type, or a prefix pattern such as order.*"
    )
    source = django_filters.CharFilter()
    correlation_id = django_filters.CharFilter()
    id_prefix = IdPrefixFilter()
    subject = django_filters.CharFilter()
    received_after = UtcIsoDateTimeFilter(
        field_name="received_at", lookup_expr="gte", help_text="ISO 8601, e.g. 2026-01-31T12:00Z"
    )
    received_before = UtcIsoDateTimeFilter(
        field_name="received_at", lookup_expr="lt", help_text="ISO 8601, e.g. 2026-01-31T12:00Z"
    )

    class Meta:
        model = Event
        fields = [
            "q", "type", "source", "correlation_id", "id_prefix", "subject", "received_after",
            "received_before",
        ]  # fmt: skip

    def filter_q(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        try:
            return data_search(queryset, value)
        except BadFilter as exc:  # too many words: answered as the other invalid fields are
            raise ValidationError({"q": [str(exc)]}) from None

    def filter_type(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        if value.endswith(".*"):
            return queryset.filter(type__startswith=value[:-1])
        return queryset.filter(type=value)


class WebhookEndpointFilter(django_filters.FilterSet):
    class Meta:
        model = WebhookEndpoint
        fields = ["scheme", "active"]
