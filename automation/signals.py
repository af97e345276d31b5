"""Celery signal handlers: wiring between the worker's life cycle and our services."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_ready


@worker_ready.connect
def _announce_worker(**_: Any) -> None:
    # A heartbeat as soon as a worker is up, so /healthz reports a working background path
    # without waiting for the first scheduled beat.
    from automation.tasks import heartbeat

    heartbeat.delay()
