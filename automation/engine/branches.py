"""Parallel branches: each branch of ``ctx.parallel`` is a journal row (kind ``branch``) that
any worker executes as a task of its own. The run waits; the last branch to succeed, or the
first to fail for good, wakes it."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction

from automation.engine import clock, dispatch, leases
from automation.engine.attempts import attempt_call, record_failure, record_success
from automation.engine.errors import LeaseLost, StepFailed, Suspend, WorkflowError
from automation.engine.journal import complete_waiting, fail_waiting, to_json, waiting_record
from automation.engine.retry import RetryPolicy
from automation.engine.runs import run_wake
from automation.lib import requestuser
from automation.models import Run, StepRecord, StepStatus, Timer

if TYPE_CHECKING:
    from automation.engine.context import Context


def _branch_ref(branch: Any, step_id: str, index: int) -> dict[str, Any]:
    fn, *args = branch if isinstance(branch, tuple) else (branch,)
    qualname = getattr(fn, "__qualname__", "")
    if not callable(fn) or "<" in qualname:
        raise WorkflowError(
            f"parallel {step_id!r} branch {index}: use a module-level function (or a tuple "
            f"(function, arg, …)); {fn!r} cannot be found again by another worker"
        )
    return {"fn": f"{fn.__module__}:{qualname}", "args": to_json(args, f"{step_id}[{index}] args")}


def fail_branch_dead_letter(record: StepRecord) -> bool:
    """A branch that keeps losing its worker fails (which fails its parallel step fast)."""
    error = {
        "type": "DeadLetter",
        "message": f"branch {record.step_id!r} was taken back from "
        f"{settings.AUTOMATION_MAX_RECOVERIES} workers that stopped while running it",
        "retryable": True,
    }
    with transaction.atomic():
        if not StepRecord.objects.filter(pk=record.pk, status=record.status).update(
            status=StepStatus.FAILED, error=error, finished_at=clock.now(), lease_expires_at=None
        ):
            return False
        run_wake(run_id=record.run_id)
    return True


def branch_id(step_id: str, index: int) -> str:
    return f"{step_id}[{index}]"


def start_parallel(
    ctx: Context, *, step_id: str, seq: int, branches: list[Any], policy: RetryPolicy
) -> StepRecord:
    if not branches:
        raise WorkflowError(f"parallel {step_id!r} needs at least one branch")
    refs = [_branch_ref(branch, step_id, i) for i, branch in enumerate(branches)]
    redispatch = clock.now() + timedelta(seconds=settings.AUTOMATION_REDISPATCH_SECONDS)
    with transaction.atomic():
        record = waiting_record(
            ctx,
            step_id=step_id,
            seq=seq,
            kind=StepRecord.Kind.PARALLEL,
            input={"branches": len(refs)},
        )
        for index, ref in enumerate(refs):
            StepRecord.objects.create(
                run=ctx.run,
                step_id=branch_id(step_id, index),
                seq=None,
                kind=StepRecord.Kind.BRANCH,
                status=StepStatus.WAITING,
                attempt=0,
                input={**ref, "retry": policy.as_dict()},
                lease_expires_at=redispatch,
            )
            dispatch.branch(ctx.run.id, branch_id(step_id, index))
    return record


def _branches(run_id: Any, step_id: str, count: int) -> list[StepRecord]:
    ids = [branch_id(step_id, i) for i in range(count)]
    by_id = {r.step_id: r for r in StepRecord.objects.filter(run_id=run_id, step_id__in=ids)}
    return [by_id[i] for i in ids]


def parallel_result(ctx: Context, record: StepRecord) -> list[Any]:
    if record.status == StepStatus.SUCCEEDED:
        return record.output
    if record.status == StepStatus.FAILED:
        raise StepFailed(record.step_id, record.error or {})
    branches = _branches(ctx.run.id, record.step_id, record.input["branches"])
    failed = next((b for b in branches if b.status == StepStatus.FAILED), None)
    if failed is not None:
        error = {**(failed.error or {}), "branch": failed.step_id}
        fail_waiting(ctx.run.id, record.step_id, error)
        raise StepFailed(record.step_id, error)
    if all(b.status == StepStatus.SUCCEEDED for b in branches):
        output = [b.output for b in branches]
        complete_waiting(ctx.run.id, record.step_id, output)
        return output
    done = sum(b.status == StepStatus.SUCCEEDED for b in branches)
    raise Suspend(f"waiting in {record.step_id!r} for branches ({done}/{len(branches)} done)")


def _resolve_function(ref: str) -> Callable[..., Any]:
    module, _, qualname = ref.partition(":")
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def execute_branch(run_id: Any, step_id: str) -> str:
    """Run one parallel branch (a task of its own, on any worker). Safe to redeliver."""
    try:
        with requestuser.detached():  # the branch's work is the run's, not a request user's
            return _execute_branch(run_id, step_id)
    except LeaseLost:
        return "abandoned: the run ended or another worker recorded the branch"


def _execute_branch(run_id: Any, step_id: str) -> str:

    now = clock.now()
    record = StepRecord.objects.filter(run_id=run_id, step_id=step_id).first()
    run = Run.objects.filter(id=run_id).only("status", "cancel_requested").first()
    if record is None or run is None or run.finished or record.status in ("succeeded", "failed"):
        return "nothing to do"
    if run.cancel_requested:  # like a step, a branch does not start once a cancel is asked
        return "nothing to do: the run is being cancelled"
    if (
        record.status == StepStatus.WAITING
        and record.next_attempt_at
        and record.next_attempt_at > now
    ):
        return "retry not due"
    if (
        record.status == StepStatus.RUNNING
        and record.lease_expires_at
        and record.lease_expires_at > now
    ):
        return "running elsewhere"
    lease = now + timedelta(seconds=settings.AUTOMATION_LEASE_SECONDS)
    claimed = StepRecord.objects.filter(
        pk=record.pk, status=record.status, attempt=record.attempt
    ).update(
        status=StepStatus.RUNNING,
        attempt=record.attempt + 1,
        started_at=now,
        next_attempt_at=None,
        lease_expires_at=lease,
    )
    if not claimed:
        return "claimed by another worker"
    record.refresh_from_db()
    policy = RetryPolicy.from_value(record.input.get("retry"))

    def renew_once() -> bool:
        later = clock.now() + timedelta(seconds=settings.AUTOMATION_LEASE_SECONDS)
        return bool(
            StepRecord.objects.filter(
                pk=record.pk, status=StepStatus.RUNNING, attempt=record.attempt
            ).update(lease_expires_at=later)
        )

    try:
        fn = _resolve_function(record.input["fn"])
        with leases.keeping(renew_once):
            output = attempt_call(step_id, fn, tuple(record.input.get("args", [])), {}, None)
    except Exception as exc:
        try:
            record_failure(record, exc, policy, timer_kind=Timer.Kind.BRANCH)
        except Suspend:
            return "retry scheduled"
        except StepFailed:
            run_wake(run_id=run_id)  # fail fast: the run learns at once
            return "failed"
    record_success(record, output)
    parent = step_id.rsplit("[", 1)[0]
    parent_record = StepRecord.objects.get(run_id=run_id, step_id=parent)
    if all(
        b.status == StepStatus.SUCCEEDED
        for b in _branches(run_id, parent, parent_record.input["branches"])
    ):
        run_wake(run_id=run_id)
    return "succeeded"
