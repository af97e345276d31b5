"""Celery tasks of the approvals domain; each is safe to deliver any number of times."""

from __future__ import annotations

from celery import shared_task

from approvals.services import approvals_remind_due

#: Approvals reminded per run of the task; the rest wait for the next run.
BATCH = 500


@shared_task(name="approvals.remind")
def remind() -> int:
    """Remind the assignees of approvals whose reminder is due (scheduled by beat, every
    SWEEP_INTERVAL: in embedded mode too, where beat runs inside the server process)."""
    return approvals_remind_due(limit=BATCH)
