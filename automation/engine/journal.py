"""The journal (StepRecord): how a step's outcome is recorded, as JSON that reads back the
same, and how a step that waits on something outside the run is opened and decided.

Every write that records a result is conditional on the state it expects, so when two
workers race on one step only one result is recorded.
"""

from __future__ import annotations

import json
import traceback
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q

from automation import lifecycle
from automation.engine import clock
from automation.engine.errors import NonRetryableError
from automation.lib import jsonsafe
from automation.models import StepRecord, StepStatus, Timer

if TYPE_CHECKING:
    from automation.engine.context import Context


class NotJSONError(NonRetryableError):
    pass


def to_json(value: Any, what: str) -> Any:
    """``value`` as it will read back from the journal (round-tripped through JSON), so the
    first execution and every replay see the same thing.

    One C pass refuses what neither database reads (``allow_nan=False``; a lone surrogate
    fails the UTF-8 encoding), so the Python walk of ``check_storable``, which costs several
    times the round trip on a large value (an event's data becoming a run's input), runs only
    for a value it refuses: to name the path, or to explain why it is not JSON."""
    try:
        text = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except (TypeError, ValueError):  # UnicodeEncodeError is a ValueError
        return _to_json_walked(value, what)
    return json.loads(text)


def _to_json_walked(value: Any, what: str) -> Any:
    try:
        value = json.loads(json.dumps(value, cls=DjangoJSONEncoder))
        jsonsafe.check_storable(value)  # NaN, Infinity, a lone surrogate: neither DB reads them
        return value
    except jsonsafe.UnstorableJSON as exc:
        raise NotJSONError(f"{what} cannot be stored: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise NotJSONError(
            f"{what} is not JSON-serialisable ({exc}); return dicts, lists, strings, numbers, "
            "booleans or None"
        ) from None


def error_info(exc: BaseException, *, retryable: bool, step: str | None = None) -> dict[str, Any]:
    """What a person needs to act on a failure. Never local variables (they may hold secrets)."""
    info = {
        "type": type(exc).__name__,
        "message": str(exc)[:4000],
        "traceback": "".join(traceback.format_exception(exc))[-20000:],
        "retryable": retryable,
    }
    if step is not None:
        info["step"] = step
    return info


def announce(record: StepRecord, *, retrying: bool = False) -> StepRecord:
    lifecycle.announce_step(
        record.run_id,
        record.step_id,
        kind=record.kind,
        status=record.status,
        attempt=record.attempt,
        started_at=record.started_at,
        finished_at=record.finished_at,
        retrying=retrying,
    )
    return record


def record_value(ctx: Context, *, step_id: str, seq: int, value: Any) -> StepRecord:
    return StepRecord.objects.create(
        run=ctx.run,
        step_id=step_id,
        seq=seq,
        kind=StepRecord.Kind.VALUE,
        status=StepStatus.SUCCEEDED,
        output=to_json(value, step_id),
        finished_at=clock.now(),
    )


def record_skipped(ctx: Context, *, step_id: str, seq: int, reason: str) -> StepRecord:
    now = clock.now()
    return StepRecord.objects.create(
        run=ctx.run,
        step_id=step_id,
        seq=seq,
        kind=StepRecord.Kind.STEP,
        status=StepStatus.SKIPPED,
        input={"skipped": reason},
        started_at=now,
        finished_at=now,
    )


def complete_waiting(run_id: Any, step_id: str, output: Any, *, child_run_id: str = "") -> bool:
    """Record the outcome of a step that waited on something outside the run (an event, a
    decision, a child: ``child_run_id`` then names it). Returns False when it was already
    recorded, or when the step now waits for another child."""
    now = clock.now()
    done = _still_waiting(run_id, step_id, child_run_id).update(
        status=StepStatus.SUCCEEDED, output=output, finished_at=now, next_attempt_at=None
    )
    if done:
        lifecycle.announce_step(
            run_id, step_id, kind="", status=StepStatus.SUCCEEDED, finished_at=now
        )
    return bool(done)


def fail_waiting(
    run_id: Any, step_id: str, error: dict[str, Any], *, child_run_id: str = ""
) -> bool:
    now = clock.now()
    failed = _still_waiting(run_id, step_id, child_run_id).update(
        status=StepStatus.FAILED, error=error, finished_at=now, next_attempt_at=None
    )
    if failed:
        lifecycle.announce_step(run_id, step_id, kind="", status=StepStatus.FAILED, finished_at=now)
    return bool(failed)


def _still_waiting(run_id: Any, step_id: str, child_run_id: str) -> Any:
    """The step's record if it still waits (for the child ``child_run_id``, if given). A retried
    parent starts a new child under the same step, and the old one may end later: only the
    child the record names may decide it. A record naming no child yet is the one starting
    this child, in this same transaction (a child that ends at once reports while started)."""
    records = StepRecord.objects.filter(run_id=run_id, step_id=step_id, status=StepStatus.WAITING)
    if child_run_id:
        records = records.filter(
            Q(input__child_run_id=child_run_id) | ~Q(input__has_key="child_run_id")
        )
    return records


def waiting_record(ctx: Context, *, step_id: str, seq: int, kind: str, input: Any, **extra: Any):
    record = StepRecord.objects.create(
        run=ctx.run,
        step_id=step_id,
        seq=seq,
        kind=kind,
        status=StepStatus.WAITING,
        input=to_json(input, f"the input of {step_id!r}"),
        started_at=clock.now(),
        **extra,
    )
    return announce(record)


def waiting_record_due(
    ctx: Context, *, step_id: str, seq: int, kind: str, input: Any, due: datetime | None
) -> StepRecord:
    """Journal a step that waits until ``due`` at the latest (None: no deadline), with the
    timer that wakes the run then. Call it inside the transaction that opens the step."""
    record = waiting_record(
        ctx, step_id=step_id, seq=seq, kind=kind, input=input, next_attempt_at=due
    )
    if due:
        Timer.objects.create(run=ctx.run, step_id=step_id, due_at=due)
    return record


def refreshed(record: StepRecord) -> StepRecord:
    record.refresh_from_db()
    return record
