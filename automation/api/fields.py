"""Filter fields shared by the API's lists."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

from automation.lib.ids import BadIdPrefix, id_lookup


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, converted to UTC: PostgreSQL refuses zone offsets past ±15:59 that
    Python accepts (``+22:38``), and a time must never reach the database as a 500."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValidationError("This time is out of range.", code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class IdPrefixField(forms.CharField):
    """A whole id, or the short id the operator UI shows (the start of the id's random last
    group): ``b242fe9c``. Anything else is refused, naming what to give."""

    def to_python(self, value: Any) -> Q | None:
        text = super().to_python(value)
        if not text:
            return None
        try:
            return id_lookup("id", text)
        except BadIdPrefix as exc:
            # As a parameter: the refused text may hold "%", which a message would format.
            raise ValidationError(
                "%(problem)s", code="invalid", params={"problem": str(exc)}
            ) from None


ID_PREFIX_HELP = (
    "A whole id, or the short id shown in the UI (4 to 12 hex characters from the start of the "
    "id's last group, e.g. b242fe9c)."
)


# Described here: it is no model field, which the schema generator would look for.
@extend_schema_field({"type": "string", "description": ID_PREFIX_HELP})
class IdPrefixFilter(django_filters.Filter):
    field_class = IdPrefixField

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", ID_PREFIX_HELP)
        super().__init__(**kwargs)

    def filter(self, qs: QuerySet, value: Q | None) -> QuerySet:
        return qs if value is None else qs.filter(value)
