"""The periodic sweep: fire due timers, recover runs from workers that died, re-send lost
dispatches, dead-letter runs that keep killing their workers. (Approval reminders are
approvals' own periodic task, approvals.remind.)

Each item is handled on its own: one broken run is logged and never stops the rest.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from automation import lifecycle
from automation.engine import clock, dispatch, flow, ports, transitions
from automation.engine.branches import fail_branch_dead_letter
from automation.engine.endings import run_end
from automation.engine.runs import run_wake
from automation.models import Run, RunStatus, StepRecord, StepStatus, Timer

logger = logging.getLogger(__name__)

BATCH = 500


def sweep() -> dict[str, int]:
    done = {
        "timers": timers_fire(),
        "recovered": runs_recover(),
        "redispatched": runs_redispatch(),
        "branches": branches_recover(),
        "flow_keys": flow.flow_keys_expire(),
    }
    for name, hook in ports.sweep_hooks().items():
        try:
            done[name] = hook()
        except Exception:  # an outer app's broken hook never stops the engine's sweep
            logger.exception("sweep: hook %s failed; continuing", name)
            done[name] = 0
    return done


def _each(items: Any, handle: Any, what: str) -> int:
    done = 0
    for item in items:
        try:
            done += bool(handle(item))
        except Exception:
            logger.exception("sweep: %s %s failed; continuing with the others", what, item)
    return done


def timers_fire() -> int:
    """Fire every timer that is due (claimed one by one, so two sweeps never fire one twice)."""
    due = (
        Timer.objects.filter(fired_at__isnull=True, due_at__lte=clock.now())
        .annotate(run_priority=F("run__priority"))
        .order_by("due_at")
    )

    def fire(timer: Timer) -> bool:
        with transaction.atomic():
            fired_at = clock.now()
            # Still due: a debounce may have pushed it back since it was listed.
            if not Timer.objects.filter(
                pk=timer.pk, fired_at__isnull=True, due_at__lte=fired_at
            ).update(fired_at=fired_at):
                return False  # another sweep got there first
            lifecycle.announce_timer(timer.run_id, timer.kind, timer.due_at, fired_at)
            if timer.kind == Timer.Kind.BRANCH:
                dispatch.branch(timer.run_id, timer.step_id)
            else:
                run_wake(run_id=timer.run_id, priority=timer.run_priority)
        return True

    return _each(list(due[:BATCH]), fire, "timer")


def runs_recover() -> int:
    """Runs whose worker stopped renewing its lease go back to pending (or to the dead letter
    after AUTOMATION_MAX_RECOVERIES)."""
    expired = Run.objects.filter(status=RunStatus.RUNNING, lease_expires_at__lt=clock.now())

    def recover(run: Run) -> bool:
        with transaction.atomic():
            if run.recoveries >= settings.AUTOMATION_MAX_RECOVERIES:
                return _dead_letter(run)
            if not transitions.transition(run.id, "recover", lease_owner=run.lease_owner):
                return False
        logger.warning("run %s recovered from %s (lease expired)", run.id, run.lease_owner)
        return True

    return _each(list(expired.only("id", "recoveries", "lease_owner")[:BATCH]), recover, "run")


def _dead_letter(run: Run) -> bool:
    message = (
        f"dead-lettered: the run was taken back from {run.recoveries} workers that stopped while "
        "running it (killed, out of memory?). Fix the cause, then retry it."
    )
    return bool(
        run_end(
            run,
            run.lease_owner,
            RunStatus.FAILED,
            error={"message": message, "type": "DeadLetter", "retryable": True},
        )
    )


def runs_redispatch() -> int:
    """Pending runs whose "advance" message was lost (broker down at the time) are re-sent."""
    cutoff = clock.now() - timedelta(seconds=settings.AUTOMATION_REDISPATCH_SECONDS)
    never_sent = Q(dispatched_at__isnull=True, created_at__lt=cutoff)
    stale = Run.objects.filter(Q(dispatched_at__lt=cutoff) | never_sent).filter(
        status=RunStatus.PENDING, queued=False
    )

    def resend(run_id: Any) -> bool:
        with transaction.atomic():
            return transitions.transition(run_id, "redispatch")

    return _each(list(stale.values_list("id", flat=True)[:BATCH]), resend, "run")


def branches_recover() -> int:
    """Parallel branches whose worker died are taken back and sent again (dead-lettered after
    AUTOMATION_MAX_RECOVERIES takeovers); branches whose dispatch was lost are sent again."""
    now = clock.now()
    resend_after = timedelta(seconds=settings.AUTOMATION_REDISPATCH_SECONDS)
    lost_dispatch = Q(status=StepStatus.WAITING) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=now - resend_after)
    )
    stuck = StepRecord.objects.filter(
        Q(status=StepStatus.RUNNING) | lost_dispatch,
        kind=StepRecord.Kind.BRANCH,
        lease_expires_at__lt=now,
    )
    return _each(list(stuck[:BATCH]), lambda record: _recover_branch(record, now), "branch")


def _recover_branch(record: StepRecord, now: Any) -> bool:
    later = now + timedelta(seconds=settings.AUTOMATION_REDISPATCH_SECONDS)
    changes: dict[str, Any] = {"lease_expires_at": later}
    if record.status == StepStatus.RUNNING:  # its worker stopped renewing the claim
        lost = sum(1 for a in record.attempts if a.get("error", {}).get("type") == "WorkerLost")
        if lost + 1 >= settings.AUTOMATION_MAX_RECOVERIES:
            return fail_branch_dead_letter(record)
        entry = {
            "attempt": record.attempt,
            "started_at": record.started_at.isoformat(),
            "finished_at": now.isoformat(),
            "error": {"type": "WorkerLost", "message": "worker stopped"},
        }
        changes |= {"status": StepStatus.WAITING, "attempts": [*record.attempts, entry]}
    with transaction.atomic():
        if not StepRecord.objects.filter(
            pk=record.pk,
            status=record.status,
            attempt=record.attempt,
            lease_expires_at=record.lease_expires_at,
        ).update(**changes):
            return False  # it moved on meanwhile
        dispatch.branch(record.run_id, record.step_id)
    return True
