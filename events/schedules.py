"""Schedules: django-celery-beat periodic tasks that emit an event on a cron or an interval."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django_celery_beat import validators as cron_validators
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from events.services import InvalidEvent, validate_event_type


def schedule_create(
    *,
    name: str,
    event_type: str,
    data: dict[str, Any] | None = None,
    cron: str = "",
    every_seconds: int | None = None,
    timezone: str = "",
) -> PeriodicTask:
    """A django-celery-beat PeriodicTask that emits ``event_type`` on a cron or an interval.

    ``cron`` is five fields, ``minute hour day-of-month month day-of-week`` (e.g. ``0 9 * * 1``),
    read in ``timezone`` (an IANA name such as ``Europe/Oslo``; default: TIME_ZONE). A field
    out of range (``61 * * * *``) is a ValueError naming it, and nothing is stored. The same
    row is editable in admin under Periodic tasks.
    """
    validate_event_type(event_type)
    if not isinstance(data or {}, dict):
        raise InvalidEvent("data", "a JSON object is required")
    if bool(cron) == (every_seconds is not None):
        raise ValueError("give exactly one of cron (e.g. '0 9 * * 1') or every_seconds")
    schedule = _cron_schedule(cron, timezone) if cron else _interval_schedule(every_seconds)
    return PeriodicTask.objects.create(
        name=name,
        task="events.emit_scheduled",
        kwargs=json.dumps({"type": event_type, "data": data or {}}),
        **schedule,
    )


#: The five cron fields, each with the django-celery-beat validator that beat's parser agrees
#: with (a value it would refuse at the first tick is refused when the schedule is made).
CRON_FIELDS = [
    ("minute", "minute (0-59)", cron_validators.minute_validator),
    ("hour", "hour (0-23)", cron_validators.hour_validator),
    ("day_of_month", "day of month (1-31)", cron_validators.day_of_month_validator),
    ("month_of_year", "month (1-12)", cron_validators.month_of_year_validator),
    ("day_of_week", "day of week (0-6, sun-sat)", cron_validators.day_of_week_validator),
]


def _cron_schedule(cron: str, timezone: str) -> dict[str, CrontabSchedule]:
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"cron {cron!r} must have 5 fields: minute hour day month weekday")
    for value, (_, label, validate) in zip(fields, CRON_FIELDS, strict=True):
        try:
            validate(value)
        except DjangoValidationError:
            raise ValueError(f"cron {cron!r}: {value!r} is not a valid {label}") from None
    zone = timezone or settings.TIME_ZONE
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone {zone!r} is unknown; use an IANA name: Europe/Oslo") from None
    crontab, _ = CrontabSchedule.objects.get_or_create(
        **{name: value for value, (name, _, _) in zip(fields, CRON_FIELDS, strict=True)},
        timezone=zone,
    )
    return {"crontab": crontab}


def _interval_schedule(every_seconds: int | None) -> dict[str, IntervalSchedule]:
    if every_seconds is None or every_seconds < 1:
        raise ValueError("every_seconds must be at least 1")
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=every_seconds, period=IntervalSchedule.SECONDS
    )
    return {"interval": interval}
