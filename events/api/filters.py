"""Query-string filters of the events API (django-filter: invalid values answer 400)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from automation.api.fields import IdPrefixFilter, UtcIsoDateTimeFilter
from events.models import Event, WebhookEndpoint


class EventFilter(django_filters.FilterSet):
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
            "type", "source", "correlation_id", "id_prefix", "subject", "received_after",
            "received_before",
        ]  # fmt: skip

    def filter_type(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        if value.endswith(".*"):
            return queryset.filter(type__startswith=value[:-1])
        return queryset.filter(type=value)


class WebhookEndpointFilter(django_filters.FilterSet):
    class Meta:
        model = WebhookEndpoint
        fields = ["scheme", "active"]
