"""Celery signal handlers: wiring between the worker's life cycle and our services."""

from __future__ import annotations

from typing import Any

from celery.signals import task_postrun, task_prerun, worker_ready
from django.db import close_old_connections


@worker_ready.connect
def _announce_worker(**_: Any) -> None:
    # A heartbeat as soon as a worker is up, so /healthz reports a working background path
    # without waiting for the first scheduled beat.
    from automation.tasks import heartbeat

    heartbeat.delay()


@task_prerun.connect
@task_postrun.connect
def _recycle_connections(task: Any = None, **_: Any) -> None:
    # Celery's Django fixup closes every database connection before and after every task
    # unless CELERY_DB_REUSE_MAX is set (celery#9824), so each task opened a new PostgreSQL
    # connection: half a worker's time in bench/engine.py. The settings turn that off
    # (CELERY_DB_REUSE_MAX) and this does what Django does around a request instead: close
    # connections that are broken or older than DATABASE_CONN_MAX_AGE, keep the others.
    # Not for a task applied in-process (eagerly, e.g. inside the caller's transaction): the
    # connection belongs to the caller, as Celery's own fixup leaves it alone then too.
    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()
