"""Celery signal handlers: wiring between the worker's life cycle and our services."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import task_postrun, task_prerun, worker_init, worker_ready
from django.db import DatabaseError, close_old_connections, connections

logger = logging.getLogger(__name__)


@worker_init.connect
def _warm_up(**_: Any) -> None:
    # Before the pool forks: mirror the code workflows into their tables here, once, instead of
    # in every pool process on its first event (10-15 ms of queries and inspect.getsource, paid
    # by the first events after a start, all pool processes at once). The children inherit the
    # "synced" mark; each opens its own connection (Celery's fixup drops the inherited one).
    from automation.engine import registry

    if any(conn.in_atomic_block for conn in connections.all(initialized_only=True)):
        return  # a worker built inside a transaction (a test's): closing would break it
    try:
        registry.sync_code_workflows()
    except DatabaseError:
        logger.warning("could not sync the code workflows at start; the first event will")
    finally:
        connections.close_all()


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
