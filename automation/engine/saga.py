"""A child run inside its parent's saga: undoing a child that succeeded, as one compensation
step of the parent.

The child is finished, so no worker advances it; the parent's compensation holds the child's
lease while it writes to the child's journal, so two workers compensating the same parent (one
taken over from a worker that only seemed dead) never run the child's compensations twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from automation.engine import leases, specs
from automation.engine.errors import (
    Cancelled,
    DeterminismError,
    NonRetryableError,
    RunTimedOut,
    Suspend,
)
from automation.engine.retry import RetryPolicy
from automation.models import Run, StepRecord, StepStatus

if TYPE_CHECKING:
    from automation.engine.context import Context

__all__ = ["ChildBusy", "ChildNotCompensated", "child_compensate"]

#: How the engine replays a run: ``Context(run, journal, spec, owner)`` (passed in by the
#: Context itself, which imports this module).
NewContext = Callable[[Run, list[StepRecord], Any, str], "Context"]


class ChildNotCompensated(Exception):
    """Some compensations of a child run failed; the parent's compensation step retries them."""


class ChildBusy(Exception):
    """Another worker holds the child (compensating it): the parent's step retries later."""


def child_compensate(recorded: dict[str, Any], *, new_context: NewContext) -> dict[str, Any]:
    """Undo a child run that succeeded: replay it (all its steps are recorded, so nothing runs
    again) to learn its compensations, then run them in reverse order, journaled in the
    child's own journal. On a retry of the parent's step, those that succeeded are read back
    and those that failed run again."""
    child = Run.objects.select_related("workflow", "version", "trigger_event").get(
        id=recorded["child_run_id"]
    )
    owner = leases.new_owner()
    if not leases.take_finished(child.id, owner):
        raise ChildBusy(f"child run {child.id} is being compensated by another worker")
    try:
        return _undo(child, owner, new_context)
    finally:
        leases.release(child.id, owner)


def _undo(child: Run, owner: str, new_context: NewContext) -> dict[str, Any]:
    # Ours alone now: the compensations that failed last time are run again.
    StepRecord.objects.filter(
        run=child, kind=StepRecord.Kind.COMPENSATION, status=StepStatus.FAILED
    ).update(status=StepStatus.WAITING, next_attempt_at=None)
    spec = specs.spec_of(child)
    # Every write checks our lease on the child.
    ctx = new_context(child, list(StepRecord.objects.filter(run=child)), spec, owner)
    ctx.cancelling = True  # a finished run: no cancel or deadline applies to its replay
    try:
        spec.fn(ctx, specs.trigger_of(child))
    except (DeterminismError, Suspend, Cancelled, RunTimedOut) as exc:
        # The child's code no longer replays as it ran: retrying cannot help. Anything else
        # (a database restart) is raised as it is, and the parent's step retries it.
        raise NonRetryableError(
            f"child run {child.id} could not be replayed to compensate it ({exc}); undo its "
            "effects by hand"
        ) from None
    problems = ctx.run_compensations(RetryPolicy(max_attempts=1))
    if problems:
        failed = ", ".join(problem["step"] for problem in problems)
        raise ChildNotCompensated(f"child run {child.id}: {failed} failed")
    return {"child_run_id": str(child.id), "compensated": [c[0] for c in ctx.compensations]}
