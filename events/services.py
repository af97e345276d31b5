"""Writes of the events domain: store an event, then route it after commit.

``event_record`` is the one way an event enters the system (webhooks, the API, signals,
schedules and workflows all call it). Routing is dispatched with ``transaction.on_commit`` and
``events.sweep_unrouted`` routes whatever a crash between commit and dispatch left behind.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from automation.engine import dispatch
from events.models import Event

logger = logging.getLogger(__name__)

EVENT_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*$")
# Events stored less than this long ago are left to their on_commit dispatch by the sweep.
ROUTING_GRACE = timedelta(seconds=5)


class InvalidEvent(ValueError):
    """The event cannot be stored; the message says which field and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def validate_event_type(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidEvent("type", "a non-empty string is required")
    if len(value) > 200 or not EVENT_TYPE_RE.match(value):
        raise InvalidEvent(
            "type", "use dotted names of letters, digits, '-' and '_', e.g. order.created"
        )
    return value


def event_record(
    *,
    type: str,
    data: dict[str, Any],
    source: str,
    subject: str = "",
    correlation_id: str = "",
    causation_id: str = "",
    idempotency_key: str | None = None,
    headers: dict[str, str] | None = None,
    occurred_at: datetime | None = None,
) -> tuple[Event, bool]:
    """Store an event, or return the one already stored under ``(source, idempotency_key)``.

    Returns ``(event, created)``. The event is routed after the surrounding transaction commits;
    if that transaction rolls back, the event never existed.
    """
    validate_event_type(type)
    if not isinstance(data, dict):
        raise InvalidEvent("data", "a JSON object is required")
    if idempotency_key:
        existing = Event.objects.filter(source=source, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    fields = {
        "type": type,
        "data": data,
        "source": source,
        "subject": subject or "",
        "correlation_id": correlation_id or "",
        "causation_id": causation_id or "",
        "idempotency_key": idempotency_key or None,
        "headers": headers or {},
        "occurred_at": occurred_at or timezone.now(),
    }
    try:
        # A savepoint, so a duplicate's IntegrityError leaves the caller's transaction usable.
        with transaction.atomic():
            event = Event.objects.create(**fields)
    except IntegrityError:
        if not idempotency_key:
            raise
        # A concurrent delivery of the same event committed first.
        return Event.objects.get(source=source, idempotency_key=idempotency_key), False
    dispatch.route(event.id)
    return event, True


def emit(type: str, data: dict[str, Any] | None = None, **meta: Any) -> Event:
    """Emit an event from application code.

    Inside a transaction the event exists (and starts runs) only if that transaction commits.
    ``meta``: ``source`` (default ``app``), ``subject``, ``correlation_id``, ``causation_id``,
    ``idempotency_key``, ``occurred_at``.
    """
    meta.setdefault("source", "app")
    event, _ = event_record(type=type, data=data if data is not None else {}, **meta)
    return event


def event_route(*, event_id: Any) -> int:
    """Start the runs this event triggers and resume the runs waiting for it, exactly once.

    Claiming (setting ``routed_at``) and routing share one transaction: a crash in between
    leaves the event unrouted for the sweep, and a concurrent second routing finds it claimed.
    Returns the number of runs started.
    """
    return len(_route(event_id, send_first=True))


def event_route_and_advance(*, event_id: Any) -> int:
    """Route the event, then advance the first run it started right here (what the routing
    task does: the first step runs without another trip through the broker)."""
    from automation.engine.executor import run_advance

    runs = _route(event_id, send_first=False)
    if runs:
        run_advance(runs[0].id)
    return len(runs)


def _route(event_id: Any, *, send_first: bool) -> list:
    from automation.services import runs_start_for_event, waits_resolve_for_event

    with transaction.atomic():
        claimed = Event.objects.filter(id=event_id, routed_at__isnull=True).update(
            routed_at=timezone.now()
        )
        if not claimed:
            return []  # routed already, or being routed by another worker
        event = Event.objects.get(id=event_id)
        runs = runs_start_for_event(event, send_first=send_first)
        waits_resolve_for_event(event)
    return runs


def events_route_unrouted(*, limit: int = 500) -> int:
    """Route events that were stored but never routed (the dispatch was lost). Returns count."""
    cutoff = timezone.now() - ROUTING_GRACE
    pending = list(
        Event.objects.filter(routed_at__isnull=True, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("id", flat=True)[:limit]
    )
    routed = 0
    for event_id in pending:
        try:
            event_route(event_id=event_id)
            routed += 1
        except Exception:  # one broken event never blocks the others
            logger.exception("routing event %s failed; it stays unrouted", event_id)
    return routed
