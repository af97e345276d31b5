"""The one place a run ends: succeeded, failed, cancelled or dead-lettered.

Ending a run and closing everything it still had open (step records, waits, approvals,
timers) happen in one transaction, so no page, API or sweep ever sees a finished run with a
step "waiting", an approval pending or a timer that will wake it. Whatever ends a run calls
:func:`run_end`; nothing else writes a finished status.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any

from django.db import transaction

from automation import lifecycle
from automation.engine import clock, ports, transitions
from automation.engine.runs import run_finished, run_finished_writes, runs_cancel_children
from automation.models import (
    OPEN_STEP_STATUSES,
    Run,
    RunStatus,
    StepRecord,
    StepStatus,
    Timer,
    Wait,
)

logger = logging.getLogger(__name__)

#: The transition (engine/transitions.py) that ends a run with each finished status.
_ENDINGS = {
    RunStatus.SUCCEEDED: "succeed",
    RunStatus.FAILED: "fail",
    RunStatus.CANCELLED: "cancel",
}

#: What run_end answers when a run about to succeed was asked to cancel meanwhile.
CANCEL_ASKED = "cancel asked"

__all__ = ["CANCEL_ASKED", "open_work_close", "run_end"]


def run_end(
    run: Run,
    owner: str,
    status: str,
    *,
    output: Any = None,
    error: dict[str, Any] | None = None,
    cleanup: bool = True,
) -> str:
    """End the run held by ``owner`` with ``status``. Returns the status, or "lease lost"
    when another worker holds the run, or CANCEL_ASKED when it was to succeed but a cancel
    was asked for (then nothing changed). ``cleanup=False`` is for a run
    that never opened anything (a plain sequence of steps that succeeded): it skips the
    queries that would find nothing to close."""
    now = clock.now()
    # A plain sequence of steps ending writes nothing but its run: no BEGIN and COMMIT then.
    alone = not cleanup and not run_finished_writes(run)
    with nullcontext() if alone else transaction.atomic():
        _lock_parent(run)
        if not transitions.transition(
            run.id,
            _ENDINGS[status],
            workflow=run.workflow.name,
            now=now,
            # The steps, waits and children it closes are announced before the run's end.
            before_announcing=(lambda: open_work_close(run.id, now)) if cleanup else None,
            lease_owner=owner,
            output=output,
            error=error,
        ):
            if status == RunStatus.SUCCEEDED and _cancel_asked(run.id, owner):
                return CANCEL_ASKED
            return "lease lost"
        run.status, run.output, run.error = status, output, error
        run_finished(run=run)
    if status == RunStatus.FAILED:
        logger.warning(
            "run %s of %s failed: %s", run.id, run.workflow.name, (error or {}).get("message")
        )
    return status


def _cancel_asked(run_id: Any, owner: str) -> bool:
    return Run.objects.filter(id=run_id, lease_owner=owner, cancel_requested=True).exists()


def _lock_parent(run: Run) -> None:
    """Rows of a parent and its child are locked parent first, everywhere: a parent that ends
    or is cancelled updates itself, then its child; a child that ends updates its parent's
    step and wakes it. Without this lock the child would hold its own row while waiting for
    its parent's, and the two would deadlock on PostgreSQL when both end at once."""
    if run.parent_run_id:
        parent = Run.objects.select_for_update().filter(id=run.parent_run_id).order_by()
        list(parent.values_list("id"))


def open_work_close(run_id: Any, now: Any) -> None:
    """Close what a run that just ended still had open: its step records say "cancelled"
    (with the time), its waits are cancelled, its pending approvals cancelled (through their
    transition table), its timers deleted, its child runs still active cancelled: nothing
    will wake it or decide for it again."""
    Timer.objects.filter(run_id=run_id, fired_at__isnull=True).delete()
    open_steps = StepRecord.objects.filter(run_id=run_id, status__in=OPEN_STEP_STATUSES)
    closed = list(open_steps.values_list("step_id", "kind"))
    if closed:
        open_steps.update(
            status=StepStatus.CANCELLED,
            finished_at=now,
            next_attempt_at=None,
            lease_expires_at=None,
        )
        for step_id, kind in closed:
            lifecycle.announce_step(
                run_id, step_id, kind=kind, status=StepStatus.CANCELLED, finished_at=now
            )
    Wait.objects.filter(run_id=run_id, status=Wait.Status.OPEN).update(
        status=Wait.Status.CANCELLED, resolved_at=now
    )
    ports.run_close_hooks_call(run_id)  # approvals: its pending approvals
    runs_cancel_children(run_id=run_id)
