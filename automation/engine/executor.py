"""Advancing a run: take its lease, replay the workflow against the journal, and record how it
ended (succeeded, failed after compensating, cancelled) or why it waits.

``run_advance`` is what the ``automation.advance_run`` task calls. It is safe to deliver any
number of times: a run that is not pending is left alone.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from automation.engine import leases, registry, transitions
from automation.engine.context import Context
from automation.engine.endings import CANCEL_ASKED, run_end
from automation.engine.errors import (
    Cancelled,
    DeterminismError,
    LeaseLost,
    Paused,
    RunTimedOut,
    StepFailed,
    Suspend,
    UnknownWorkflow,
)
from automation.engine.journal import error_info, to_json
from automation.engine.retry import RetryPolicy
from automation.engine.specs import spec_of, trigger_of
from automation.lib import logcontext, requestuser
from automation.models import Run, RunStatus, StepRecord, Workflow

logger = logging.getLogger(__name__)

MAX_REPLAYS = 50  # per delivery; a run woken this often while running is picked up again later
COMPENSATION_RETRY = RetryPolicy(max_attempts=5, initial=1.0, backoff=2.0, max_interval=300.0)


def run_advance(run_id: Any, *, owner: str = "", fresh: Run | None = None) -> str:
    """Advance the run as far as it goes. Returns what happened, for logs and tests.

    ``owner``: the lease the caller already took (``leases.claim``) for this run. ``fresh``:
    the run as its creator just committed it (its workflow, version and trigger event loaded,
    its journal empty by construction), so the first replay reads nothing back."""
    # Every log line of this work names the run; the work is the run's, not a request user's.
    with logcontext.scope(run_id=run_id), requestuser.detached():
        if not owner:
            owner = leases.new_owner()
            if not leases.claim(run_id, owner):
                return "not pending"
        for _ in range(MAX_REPLAYS):
            outcome = _replay(run_id, owner, fresh)
            if outcome != "again":
                return outcome
            fresh = None
        _release(run_id, owner)
        return "released"


def _release(run_id: Any, owner: str) -> None:
    with transaction.atomic():
        transitions.transition(run_id, "release", lease_owner=owner)


def _replay(run_id: Any, owner: str, fresh: Run | None = None) -> str:
    if fresh is not None:
        run, journal = fresh, []
    else:
        run = Run.objects.select_related("workflow", "version", "trigger_event").get(id=run_id)
    logcontext.bind(correlation_id=run.correlation_id, event_id=run.trigger_event_id)
    if run.lease_owner != owner:
        return "lease lost"
    wakeups = run.wakeups
    if fresh is None:
        journal = list(StepRecord.objects.filter(run=run))
    try:
        spec = spec_of(run)
    except UnknownWorkflow as exc:
        if _newer_than_this_code(run):
            return _defer(run, owner)
        return run_end(run, owner, RunStatus.FAILED, error=error_info(exc, retryable=False))
    ctx = Context(run, journal, spec, owner)
    try:
        result = spec.fn(ctx, trigger_of(run))
        output = to_json(result, "the workflow's return value")
    except Suspend as suspended:
        return _suspend(run, owner, wakeups, suspended.reason)
    except LeaseLost:
        return "lease lost"
    except Paused:
        return _stop_paused(run, owner)
    except Cancelled:
        return _unwind(ctx, run, owner, wakeups, error=None)
    except RunTimedOut as exc:
        return _unwind(ctx, run, owner, wakeups, error=error_info(exc, retryable=False))
    except StepFailed as exc:
        return _unwind(ctx, run, owner, wakeups, error={**exc.error, "step": exc.step_id})
    except DeterminismError as exc:
        return _unwind(ctx, run, owner, wakeups, error=error_info(exc, retryable=False))
    except Exception as exc:  # the workflow body itself raised
        error = error_info(exc, retryable=False, step="(workflow)")
        return _unwind(ctx, run, owner, wakeups, error=error)
    ended = run_end(run, owner, RunStatus.SUCCEEDED, output=output, cleanup=ctx.used_side_tables())
    if ended == CANCEL_ASKED:  # asked after its last step: undo what it did, as a cancel does
        return _unwind(ctx, run, owner, wakeups, error=None)
    return ended


def _newer_than_this_code(run: Run) -> bool:
    known = registry.known_versions(run.workflow.name)
    return (
        run.workflow.kind == Workflow.Kind.CODE and bool(known) and run.version.number > known[-1]
    )


def _defer(run: Run, owner: str) -> str:
    """Hand a run of a version newer than this process's code back (a rolling deploy): the
    redispatch sweep sends it again, and a worker running the new code takes it."""
    logger.warning(
        "run %s is of %s v%d, newer than this worker's code; leaving it for an up-to-date worker",
        run.id,
        run.workflow.name,
        run.version.number,
    )
    transitions.transition(
        run.id,
        "defer",
        workflow=run.workflow.name,
        lease_owner=owner,
        waiting_for=f"a worker that has version {run.version.number} of the code",
    )
    return "deferred"


def _unwind(
    ctx: Context, run: Run, owner: str, wakeups: int, *, error: dict[str, Any] | None
) -> str:
    """Compensate completed steps in reverse order, then run on_failure; end the run."""
    problems: list[dict[str, Any]] = []
    try:
        problems += ctx.run_compensations(COMPENSATION_RETRY)
        if error is not None and ctx._spec is not None and ctx._spec.on_failure is not None:
            try:
                ctx._step("on_failure", "on_failure", ctx._spec.on_failure, (ctx, error), {})
            except StepFailed as exc:
                problems.append({**exc.error, "step": exc.step_id})
    except Suspend as suspended:  # a compensation waits for its retry
        return _suspend(run, owner, wakeups, suspended.reason)
    except LeaseLost:
        return "lease lost"
    except (DeterminismError, Exception) as exc:  # the failure path itself broke: end anyway
        problems.append(error_info(exc, retryable=False, step="(compensation)"))
    if error is None:
        return run_end(
            run, owner, RunStatus.CANCELLED, error={"message": "cancelled"} | _extra(problems)
        )
    return run_end(run, owner, RunStatus.FAILED, error=error | _extra(problems))


def _extra(problems: list[dict[str, Any]]) -> dict[str, Any]:
    return {"compensation_errors": problems} if problems else {}


def _stop_paused(run: Run, owner: str) -> str:
    """An operator paused the run: let go of it before its next step."""
    with transaction.atomic():
        if transitions.transition(
            run.id, "stop_paused", workflow=run.workflow.name, lease_owner=owner
        ):
            return "paused"
    return "lease lost"


def _suspend(run: Run, owner: str, wakeups: int, reason: str) -> str:
    """Release the run to wait. If something woke it while we worked, replay instead."""
    if transitions.transition(
        run.id,
        "suspend",
        workflow=run.workflow.name,
        lease_owner=owner,
        wakeups=wakeups,
        waiting_for=reason[:300],
    ):
        return "waiting"
    if Run.objects.filter(id=run.id, lease_owner=owner).exists():
        return "again"
    return "lease lost"
