"""Celery tasks of the events domain. Each only calls a service, and each is safe to redeliver."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from events import projections, routing, services

logger = logging.getLogger(__name__)


@shared_task(name="events.route_event")
def route_event(event_id: str) -> int:
    return routing.event_route_and_advance(event_id=event_id)


@shared_task(name="events.route_events")
def route_events(event_ids: list[str]) -> int:
    """Route the events that piled up in one process (events.publisher), one after the other.

    One failing event does not stop the others; it stays unrouted for the sweep, as it would
    after a failed ``route_event``. Returns the number of runs started."""
    started = 0
    for event_id in event_ids:
        try:
            started += routing.event_route_and_advance(event_id=event_id)
        except Exception:
            logger.exception("routing event %s failed; the sweep will retry it", event_id)
    return started


@shared_task(name="events.sweep_unrouted")
def sweep_unrouted() -> int:
    return routing.events_route_unrouted()


@shared_task(name="events.project")
def project() -> int:
    """Fold new events into every projection (a redelivery applies nothing twice: the
    checkpoint moves in the transaction that applies the events)."""
    return projections.projections_advance()


@shared_task(name="events.emit_scheduled", bind=True)
def emit_scheduled(
    self: Task,
    type: str,
    data: dict[str, Any] | None = None,
    subject: str = "",
    correlation_id: str = "",
    actor_id: int | None = None,
) -> str:
    """Emit an event on a schedule: a django-celery-beat PeriodicTask with these kwargs.

    The task id is the idempotency key, so a redelivered message emits nothing twice.
    ``actor_id``: the user who saved the schedule in the admin, or ran it from there (written
    by the admin, never by the form); the runs it starts are theirs. None for schedules made in
    code, and when that user was deleted since.
    """
    # Beat sends the PeriodicTask's name as a message header; workers expose custom headers as
    # request attributes, eager calls keep them under `headers`.
    headers = getattr(self.request, "headers", None) or {}
    name = (
        getattr(self.request, "periodic_task_name", None)
        or headers.get("periodic_task_name")
        or "schedule"
    )
    event, _ = services.event_record(
        type=type,
        data=data if data is not None else {},
        source=f"schedule:{name}",
        subject=subject,
        correlation_id=correlation_id,
        idempotency_key=self.request.id,
        actor_id=_existing_user(actor_id),
    )
    return str(event.id)


def _existing_user(user_id: int | None) -> int | None:
    from django.contrib.auth import get_user_model

    if user_id is None or not get_user_model().objects.filter(pk=user_id).exists():
        return None
    return user_id
