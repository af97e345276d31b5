"""Steps that reach outside the run: emitting an event (through the event sink) and
starting a child run (then waiting for its outcome).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction

from automation.engine import clock, ports
from automation.engine.errors import StepFailed, Suspend
from automation.engine.journal import announce, refreshed, to_json, waiting_record
from automation.engine.runs import run_start
from automation.models import StepRecord, StepStatus

if TYPE_CHECKING:
    from automation.engine.context import Context


def emit_event(
    ctx: Context, *, step_id: str, seq: int, event_type: str, data: dict[str, Any], subject: str
) -> StepRecord:
    with transaction.atomic():
        event = ports.event_sink().record(
            type=event_type,
            data=to_json(data, f"the data of {step_id!r}"),
            source=f"run:{ctx.run_id}",
            subject=subject,
            correlation_id=ctx.correlation_id,
            causation_id=ctx.run_id,
            idempotency_key=ctx.idempotency_key(step_id),
            actor_id=ctx.run.started_by_id,  # runs the event starts keep this run's requester
        )
        record = StepRecord.objects.create(
            run=ctx.run,
            step_id=step_id,
            seq=seq,
            kind=StepRecord.Kind.EMIT,
            status=StepStatus.SUCCEEDED,
            input={"type": event_type, "data": event.data},
            output={"event_id": str(event.id), "type": event_type},
            finished_at=clock.now(),
        )
        return announce(record)


# --- child runs ------------------------------------------------------------------------


def start_child(
    ctx: Context, *, step_id: str, seq: int, workflow: str, input: dict[str, Any]
) -> StepRecord:
    with transaction.atomic():
        # The waiting record first: a child that ends at once (skipped by its concurrency
        # limit) reports to it while it is being started.
        record = waiting_record(
            ctx,
            step_id=step_id,
            seq=seq,
            kind=StepRecord.Kind.CHILD,
            input={"workflow": workflow, "input": input},
        )
        child = run_start(
            workflow=workflow,
            input=input,
            parent_run=ctx.run,
            parent_step_id=step_id,
            correlation_id=ctx.correlation_id,
        )
        record.input["child_run_id"] = str(child.id)
        StepRecord.objects.filter(pk=record.pk).update(input=record.input)
    return refreshed(record)


def child_result(ctx: Context, record: StepRecord) -> Any:
    if record.status == StepStatus.SUCCEEDED:
        return record.output
    if record.status == StepStatus.FAILED:
        raise StepFailed(record.step_id, record.error or {})
    raise Suspend(f"waiting in {record.step_id!r} for child run {record.input['child_run_id']}")
