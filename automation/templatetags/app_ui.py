"""Small formatting helpers for the operator UI's templates."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django import template
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from automation.lib import ids

register = template.Library()

TONES = {
    "pending": "neutral",
    "queued": "neutral",
    "running": "info",
    "waiting": "warn",
    "succeeded": "ok",
    "approved": "ok",
    "failed": "bad",
    "rejected": "bad",
    "expired": "bad",
    "cancelled": "muted",
    "skipped": "muted",
}


@register.filter
def tone(status: str) -> str:
    """The colour family of a status pill."""
    return TONES.get(str(status), "neutral")


@register.filter
def short_id(value: Any) -> str:
    """The part of a UUIDv7 id that tells ids apart (not its time prefix), e.g. ``b242fe9c``."""
    return ids.short_id(value)


@register.inclusion_tag("app/copy_id.html")
def copy_id(value: Any, what: str = "id") -> dict[str, Any]:
    """A button that copies the whole id (the page shows it short, or hard to select on a phone)."""
    return {"value": str(value), "what": what}


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, cls=DjangoJSONEncoder, ensure_ascii=False)


@register.filter
def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _human(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 1:
        return f"{max(seconds * 1000, 0):.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    # Hours too: "2 days" for a 3-day deadline set a minute ago reads as a day lost.
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h" if hours else f"{days} days"


@register.simple_tag
def took(start: datetime | None, end: datetime | None) -> str:
    """How long something took (or has taken so far)."""
    if start is None:
        return ""
    return _human((end or timezone.now()) - start)


@register.filter
def due_in(when: datetime | None) -> str:
    if when is None:
        return ""
    delta = when - timezone.now()
    if delta.total_seconds() < 0:
        return f"overdue by {_human(-delta)}"
    return f"due in {_human(delta)}"


@register.filter
def percent(value: int, peak: int) -> int:
    return round(100 * value / peak) if peak else 0


@register.filter
def get(mapping: dict, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None
