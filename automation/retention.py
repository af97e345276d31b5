"""Retention: deleting finished runs and old events past RUNS/EVENTS_RETENTION_DAYS."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from automation.lib.db import delete_in_batches
from automation.models import FINISHED_STATUSES, Run
from events.retention import events_purge


def runs_purge(
    *, older_than: timedelta, batch_size: int = 1000, max_batches: int | None = None
) -> int:
    """Delete finished runs (with their journal, timers, waits and approvals) that finished
    more than ``older_than`` ago, ``batch_size`` runs per transaction. Returns how many."""
    expired = runs_expired(older_than=older_than)
    return delete_in_batches(expired, batch_size=batch_size, max_batches=max_batches)


def runs_expired(*, older_than: timedelta) -> Any:
    """Finished runs that finished more than ``older_than`` ago."""
    cutoff = timezone.now() - older_than
    return Run.objects.filter(status__in=FINISHED_STATUSES, finished_at__lt=cutoff)


def retention_apply(*, max_batches: int = 100) -> dict[str, int]:
    """Apply EVENTS_RETENTION_DAYS and RUNS_RETENTION_DAYS (0: keep forever); what the
    periodic ``automation.purge`` task does. At most ``max_batches`` batches of each per call,
    so a large first purge is spread over several runs of the task."""
    purged = {"runs": 0, "events": 0}
    batch = settings.RETENTION_BATCH_SIZE
    if settings.RUNS_RETENTION_DAYS:
        purged["runs"] = runs_purge(
            older_than=timedelta(days=settings.RUNS_RETENTION_DAYS),
            batch_size=batch,
            max_batches=max_batches,
        )
    if settings.EVENTS_RETENTION_DAYS:
        purged["events"] = events_purge(
            older_than=timedelta(days=settings.EVENTS_RETENTION_DAYS),
            batch_size=batch,
            max_batches=max_batches,
        )
    return purged
