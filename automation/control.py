"""Operator control of runs and workflows: pause, resume, and rerun a run from a step.

Every change of a run's status here goes through the run state machine
(automation.engine.transitions: ``pause``, ``request_pause``, ``withdraw_pause``, ``resume``,
``rerun``); every operator action is written to the admin's history of the run or workflow,
with who made it and when (``LogEntry``).

Pausing a workflow holds the runs its triggers (and anyone) start from then on: they are
created paused and start when it resumes. Its runs already in flight carry on unless the
operator asks for them too (``runs=True``): those are paused with it and resumed with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.db import models, transaction
from django.db.models import Q

from automation.engine import clock, ports, registry, transitions
from automation.engine.errors import UnknownWorkflow, WorkflowError
from automation.engine.runs import run_cancel
from automation.lib.errors import DomainError
from automation.models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    Run,
    RunStatus,
    StepRecord,
    StepStatus,
    Timer,
    Wait,
    Workflow,
)

logger = logging.getLogger(__name__)

__all__ = [
    "NotAllowedNow",
    "RerunPlan",
    "UnknownStep",
    "rerun_plan",
    "run_pause",
    "run_rerun",
    "run_resume",
    "workflow_pause",
    "workflow_resume",
]


class NotAllowedNow(DomainError):
    """The run or workflow is not in a state this move leaves from."""

    code = "not_allowed_now"
    status = 409


class UnknownStep(DomainError):
    code = "unknown_step"
    status = 400

    def __init__(self, message: str, choices: list[str]) -> None:
        super().__init__(message)
        self.choices = choices

    def details(self) -> dict[str, Any]:
        return {"field": "from_step", "choices": self.choices}


def _audit(obj: models.Model, user: Any, message: str) -> None:
    LogEntry.objects.log_actions(
        user_id=user.pk,
        queryset=[obj],
        action_flag=CHANGE,
        change_message=message,
        single_object=True,
    )


def _locked(run: Run) -> Run:
    return Run.objects.select_for_update().select_related("workflow", "version").get(id=run.id)


# --- pausing and resuming runs --------------------------------------------------------------


def run_pause(*, run: Run, user: Any) -> Run:
    """Pause a run. A pending or waiting run is paused at once (its timers keep their due
    time; what it waits for is recorded and takes effect when it resumes); a running one stops
    before its next step (the step it is in finishes and is recorded). NotAllowedNow when it
    has finished, is being cancelled, or is already paused."""
    with transaction.atomic():
        locked = _locked(run)
        if not _pause_one(locked, user, held_by_workflow=False):
            raise NotAllowedNow(_why_not_pause(locked))
        _audit(locked, user, "Paused the run.")
    logger.info("run %s paused by %s", run.id, user.get_username())
    run.refresh_from_db()
    return run


def _pause_one(run: Run, user: Any, *, held_by_workflow: bool) -> bool:
    name = run.workflow.name
    by = {"paused_by": user, "held_by_workflow": held_by_workflow}
    if run.status == RunStatus.RUNNING:
        return transitions.transition(run.id, "request_pause", workflow=name, **by)
    return transitions.transition(run.id, "pause", workflow=name, **by)


def _why_not_pause(run: Run) -> str:
    if run.status in FINISHED_STATUSES:
        return f"run {run.id} has finished ({run.status}); only active runs can be paused"
    if run.cancel_requested:
        return f"run {run.id} is being cancelled; it cannot be paused"
    if run.status == RunStatus.PAUSED or run.pause_requested:
        return f"run {run.id} is already paused; POST .../resume/ to resume it"
    return f"run {run.id} cannot be paused now ({run.status})"


def run_resume(*, run: Run, user: Any) -> Run:
    """Resume a paused run: it replays at once, and a timer that became due while it was
    paused takes effect now. A running run asked to pause but not stopped yet simply carries
    on. NotAllowedNow when it is not paused."""
    with transaction.atomic():
        locked = _locked(run)
        name = locked.workflow.name
        if not (
            transitions.transition(run.id, "resume", workflow=name, priority=locked.priority)
            or transitions.transition(run.id, "withdraw_pause", workflow=name)
        ):
            raise NotAllowedNow(
                f"run {run.id} is not paused ({locked.status}); POST .../pause/ to pause it"
            )
        _audit(locked, user, "Resumed the run.")
    logger.info("run %s resumed by %s", run.id, user.get_username())
    run.refresh_from_db()
    return run


# --- pausing and resuming workflows ---------------------------------------------------------


def workflow_pause(*, workflow: Workflow, user: Any, runs: bool = False) -> tuple[Workflow, int]:
    """Pause a workflow: runs started from now on (by its triggers, the API, a parent) are
    created paused and start when it resumes. With ``runs``, its active runs are paused too
    (and resumed with it). Returns (workflow, how many active runs were paused).
    NotAllowedNow when it is already paused."""
    with transaction.atomic():
        locked = Workflow.objects.select_for_update().get(pk=workflow.pk)
        if locked.paused_at is not None:
            raise NotAllowedNow(
                f"workflow {locked.name!r} is already paused; POST .../resume/ to resume it"
            )
        locked.paused_at, locked.paused_by = clock.now(), user
        locked.save(update_fields=["paused_at", "paused_by", "updated_at"])
        paused = _pause_active_runs(locked, user) if runs else 0
        extra = f" and {paused} of its active runs" if runs else ""
        _audit(locked, user, f"Paused the workflow{extra}.")
    logger.info("workflow %s paused by %s", locked.name, user.get_username())
    return locked, paused


def _pause_active_runs(workflow: Workflow, user: Any) -> int:
    active = Run.objects.select_related("workflow").filter(
        workflow=workflow,
        status__in=(RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING),
        cancel_requested=False,
        pause_requested=False,
    )
    return sum(_pause_one(run, user, held_by_workflow=True) for run in active)


def workflow_resume(*, workflow: Workflow, user: Any) -> tuple[Workflow, int]:
    """Resume a paused workflow: the runs it held (created while it was paused, or paused with
    it) start, oldest first. Runs an operator paused one by one stay paused. Returns
    (workflow, how many runs it resumed). NotAllowedNow when it is not paused."""
    with transaction.atomic():
        locked = Workflow.objects.select_for_update().get(pk=workflow.pk)
        if locked.paused_at is None:
            raise NotAllowedNow(
                f"workflow {locked.name!r} is not paused; POST .../pause/ to pause it"
            )
        locked.paused_at, locked.paused_by = None, None
        locked.save(update_fields=["paused_at", "paused_by", "updated_at"])
        resumed = _resume_held_runs(locked)
        _audit(locked, user, f"Resumed the workflow ({resumed} held runs started).")
    logger.info("workflow %s resumed by %s", locked.name, user.get_username())
    return locked, resumed


def _resume_held_runs(workflow: Workflow) -> int:
    held = Run.objects.filter(
        workflow=workflow,
        held_by_workflow=True,
        status__in=(RunStatus.PAUSED, RunStatus.RUNNING),
    ).order_by("created_at")
    resumed = 0
    for run_id, priority in held.values_list("id", "priority"):
        resumed += transitions.transition(
            run_id, "resume", workflow=workflow.name, priority=priority
        ) or transitions.transition(run_id, "withdraw_pause", workflow=workflow.name)
    return resumed


# --- rerunning a run from a step ------------------------------------------------------------

#: Journal records an operator may rerun from: the steps the workflow reached in order.
_NOT_A_START = (StepRecord.Kind.BRANCH, StepRecord.Kind.COMPENSATION, StepRecord.Kind.ON_FAILURE)


@dataclass(frozen=True)
class RerunPlan:
    """What a rerun from ``from_step`` does: ``kept``, the journal before it, replayed as
    recorded; ``repeated``, the records it supersedes, whose steps run again when the
    workflow reaches them (their side effects repeat), among them the earlier steps a
    compensation undid."""

    run: Run
    from_step: str
    kept: list[StepRecord]
    repeated: list[StepRecord]

    @property
    def superseded_ids(self) -> list[str]:
        return [record.step_id for record in self.repeated]


def rerun_plan(*, run: Run, from_step: str) -> RerunPlan:
    """Which records a rerun of ``run`` from ``from_step`` keeps and which it supersedes.
    UnknownStep (400) naming the steps one can rerun from; NotAllowedNow (409) for a run that
    is neither finished nor paused."""
    if run.status not in (*FINISHED_STATUSES, RunStatus.PAUSED):
        raise NotAllowedNow(
            f"run {run.id} is {run.status}; only a finished or paused run can be rerun (pause "
            "it first)"
        )
    journal = list(StepRecord.objects.filter(run=run).timeline())
    starts = [r for r in journal if r.seq is not None and r.kind not in _NOT_A_START]
    start = next((r for r in starts if r.step_id == from_step), None)
    if start is None:
        choices = [r.step_id for r in sorted(starts, key=lambda r: r.seq or 0)]
        raise UnknownStep(
            f"run {run.id} has no step {from_step!r} to rerun from; choose one of: "
            f"{', '.join(choices) or '(none: the run reached no step)'}",
            choices,
        )
    assert start.seq is not None
    repeated = {r.step_id for r in journal if r.seq is not None and r.seq >= start.seq}
    undone = {
        r.step_id.removeprefix("compensate:")
        for r in journal
        if r.kind == StepRecord.Kind.COMPENSATION and r.status == StepStatus.SUCCEEDED
    }
    parents = repeated | undone
    superseded = [
        r
        for r in journal
        if r.step_id in parents
        or r.kind in (StepRecord.Kind.COMPENSATION, StepRecord.Kind.ON_FAILURE)
        or (r.kind == StepRecord.Kind.BRANCH and r.step_id.split("[", 1)[0] in parents)
    ]
    kept = [r for r in journal if r not in superseded]
    return RerunPlan(run=run, from_step=from_step, kept=kept, repeated=superseded)


def run_rerun(*, run: Run, from_step: str, user: Any) -> Run:
    """Rerun ``run`` from ``from_step``: a new execution (``Run.execution`` + 1) that replays
    the journal before the step as recorded and runs the step and every later one again. The
    superseded records stay in the ledger (``StepRecord.ledger``) beside the new ones, marked
    with when and by which execution they were replaced; the run gets its whole timeout again.
    """
    with transaction.atomic():
        locked = _locked(run)
        plan = rerun_plan(run=locked, from_step=from_step)
        execution = locked.execution
        ids = plan.superseded_ids
        StepRecord.objects.filter(run=locked, step_id__in=ids).update(
            superseded_at=clock.now(), superseded_in=execution + 1
        )
        Wait.objects.filter(run=locked, step_id__in=ids).delete()
        Timer.objects.filter(run=locked, fired_at__isnull=True).filter(
            Q(step_id__in=ids) | Q(kind=Timer.Kind.RUN_TIMEOUT)
        ).delete()
        ports.run_rerun_hooks_call(locked.id, ids, execution)  # approvals: set the old aside
        _cancel_superseded_children(locked, ids)
        if not transitions.transition(
            locked.id, "rerun", workflow=locked.workflow.name, priority=locked.priority
        ):
            raise NotAllowedNow(f"run {run.id} is held by a worker right now; try again shortly")
        _rearm_deadline(locked)
        _audit(locked, user, f"Reran the run from step {from_step!r} (execution {execution + 1}).")
    logger.info("run %s rerun from %s by %s", run.id, from_step, user.get_username())
    run.refresh_from_db()
    return run


def _cancel_superseded_children(run: Run, step_ids: list[str]) -> None:
    """A paused run's child runs still active for a superseded step are cancelled: the rerun
    starts new ones, and nothing will wait for the old (their end tells the new step
    nothing: it waits for its own child)."""
    active = Run.objects.filter(
        parent_run_id=run.id,
        parent_step_id__in=step_ids,
        status__in=ACTIVE_STATUSES,
        cancel_requested=False,
    ).select_related("workflow")
    for child in active:
        try:
            run_cancel(run=child)
        except WorkflowError:  # it finished meanwhile
            continue


def _rearm_deadline(run: Run) -> None:
    """A rerun gets the workflow's whole timeout again."""
    try:
        spec = registry.get_workflow(run.workflow.name, run.version.number)
    except (UnknownWorkflow, WorkflowError):
        return
    if spec.timeout is not None:
        deadline = clock.now() + spec.timeout
        Run.objects.filter(id=run.id).update(deadline_at=deadline)
        Timer.objects.create(run=run, kind=Timer.Kind.RUN_TIMEOUT, due_at=deadline)
