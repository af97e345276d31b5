"""Celery tasks of the events domain. Each only calls a service, and each is safe to redeliver."""

from __future__ import annotations

from celery import shared_task

from events import services


@shared_task(name="events.route_event")
def route_event(event_id: str) -> int:
    return services.event_route_and_advance(event_id=event_id)


@shared_task(name="events.sweep_unrouted")
def sweep_unrouted() -> int:
    return services.events_route_unrouted()
