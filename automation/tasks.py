"""Celery tasks of the automation domain. Tasks only parse their arguments and call a service."""

from __future__ import annotations

from celery import shared_task

from automation import services


@shared_task(name="automation.heartbeat")
def heartbeat() -> None:
    """Record that background work runs (scheduled by beat; also sent when a worker starts)."""
    services.heartbeat_record()
