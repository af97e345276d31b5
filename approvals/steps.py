"""The approval step: ``ctx.approval()`` asks people and waits for their decision.

The engine does not know what an approval is: this step kind registers itself with it
(automation.engine.ports) from ApprovalsConfig.ready, and so does the closer that cancels a
run's pending approvals when the run ends or is being cancelled.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction

from approvals.forms import validate_field_specs
from approvals.services import approval_create, approval_expire, approvals_cancel_for_run
from automation.engine import clock, journal, ports, waits
from automation.engine.errors import Suspend, WorkflowError
from automation.models import StepRecord, StepStatus

if TYPE_CHECKING:
    from automation.engine.context import Context


def register() -> None:
    """Give the engine the approval step and the closer of a run's approvals."""
    ports.step_kind_register(
        "approval",
        ports.StepKind(start=start_approval, result=approval_result, check=check_options),
    )
    ports.run_close_hook_add(approvals_close_for_run)


def check_options(step_id: str, options: dict[str, Any]) -> list[str]:
    """The problems of a declarative approval's form ``fields`` (approvals.forms)."""
    try:
        validate_field_specs(options.get("fields"), step_id=step_id)
    except WorkflowError as exc:
        return [str(exc)]
    return []


def approvals_close_for_run(run_id: Any) -> None:
    """The run ends or is being cancelled: its pending approvals are cancelled."""
    approvals_cancel_for_run(run_id=run_id)


def start_approval(
    ctx: Context,
    *,
    step_id: str,
    seq: int,
    title: str,
    assignees: list[str],
    description: str,
    context: dict[str, Any],
    timeout: timedelta | None,
    on_timeout: str,
    **options: Any,
) -> StepRecord:
    due = clock.now() + timeout if timeout else None
    with transaction.atomic():
        record = journal.waiting_record_due(
            ctx,
            step_id=step_id,
            seq=seq,
            kind=StepRecord.Kind.APPROVAL,
            input={"title": title, "assignees": assignees, "due": due.isoformat() if due else None},
            due=due,
        )
        approval_create(
            run=ctx.run,
            step_id=step_id,
            title=title,
            description=description,
            context=journal.to_json(context, "approval context"),
            assignees=assignees,
            due_at=due,
            on_timeout=on_timeout,
            **options,
        )
    return record


def approval_result(ctx: Context, record: StepRecord) -> dict[str, Any]:
    if record.status == StepStatus.SUCCEEDED:
        return record.output
    if waits.is_due(ctx, record):
        approval_expire(run_id=ctx.run.id, step_id=record.step_id)
        record = journal.refreshed(record)
        if record.status == StepStatus.SUCCEEDED:
            return record.output
    raise Suspend(f"waiting in {record.step_id!r} for an approval")
