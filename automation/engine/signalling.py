"""Signals: messages sent to a running run, and the steps that wait for them.

A signal is stored first (``Signal``), then delivered: to the run's step waiting for a signal
of its name, if one waits; otherwise it is kept until such a step starts, which takes the
oldest one kept (as a wait for an event looks back at events stored before it). Each signal
is consumed once: consuming it and completing the step are two conditional updates in one
transaction, so a signal and a timeout, or two deliveries, cannot both decide the step.

Delivery runs after the signal is committed, and a starting wait looks for kept signals after
its record is committed, so a signal sent while a wait starts is found by one of the two.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import DataError, transaction

from automation.engine import clock, journal, runs, waits
from automation.engine.errors import Suspend, WorkflowError
from automation.lib import jsonsafe
from automation.lib.db import refused_value
from automation.lib.errors import DomainError
from automation.models import FINISHED_STATUSES, Run, Signal, StepRecord, StepStatus

if TYPE_CHECKING:
    from automation.engine.context import Context

logger = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,199}$")
NAME_RULE = "1 to 200 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
MAX_DATA_BYTES = 64 * 1024
MAX_DATA_DEPTH = 64  # levels of objects/arrays; far deeper overflowed the stack when stored


class SignalRefused(DomainError):
    """A signal that cannot be sent: bad name or data (400), unknown run (404), ended (409)."""

    def __init__(self, message: str, *, code: str = "invalid", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SignalRefused(f"name: give the signal's name, {NAME_RULE} (got {name!r})")
    return name


def _check_data(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SignalRefused('data: a JSON object, e.g. {"approved": true} (or leave it out)')
    if jsonsafe.deeper_than(data, MAX_DATA_DEPTH):
        raise SignalRefused(f"data: nests objects/arrays over {MAX_DATA_DEPTH} levels; flatten it")
    try:
        stored = journal.to_json(data, "data")
    except journal.NotJSONError as exc:
        raise SignalRefused(str(exc)) from None
    size = len(json.dumps(stored, ensure_ascii=False).encode())
    if size > MAX_DATA_BYTES:
        raise SignalRefused(f"data: {size} bytes; a signal carries at most {MAX_DATA_BYTES}")
    return stored


# --- sending --------------------------------------------------------------------------------


def signal_send(*, run_id: Any, name: Any, data: Any, user: Any = None) -> Signal:
    """Store a signal for the run and deliver it to the step waiting for it, if one waits.
    Refused, storing nothing, for a bad name or data, an unknown run or one that has ended."""
    name, data = check_name(name), _check_data({} if data is None else data)
    with transaction.atomic():
        status = Run.objects.filter(id=run_id).values_list("status", flat=True).first()
        if status is None:
            raise SignalRefused(f"no run {run_id}", code="not_found", status=404)
        if status in FINISHED_STATUSES:
            raise SignalRefused(
                f"run {run_id} has already finished ({status}); a signal reaches active runs only",
                code="not_allowed_now",
                status=409,
            )
        try:
            with transaction.atomic():
                signal = Signal.objects.create(run_id=run_id, name=name, data=data, sent_by=user)
        except DataError as exc:  # text PostgreSQL cannot store (a NUL character)
            raise SignalRefused(f"data: {refused_value(exc)}") from None
    deliver(run_id=run_id, name=name)
    signal.refresh_from_db()
    return signal


def deliver(*, run_id: Any, name: str) -> bool:
    """Give the run's oldest kept signal ``name`` to its step waiting for one, and wake the
    run. False when no step waits for it (the signal is kept)."""
    waiting = StepRecord.objects.filter(
        run_id=run_id,
        kind=StepRecord.Kind.WAIT_SIGNAL,
        status=StepStatus.WAITING,
        input__signal=name,
    ).order_by("seq", "started_at")
    for step_id in waiting.values_list("step_id", flat=True):
        if take_kept(run_id=run_id, step_id=step_id, name=name, wake=True):
            return True
    return False


def take_kept(*, run_id: Any, step_id: str, name: str, wake: bool) -> bool:
    """Complete the waiting step ``step_id`` with the oldest kept signal ``name``."""
    kept = Signal.objects.filter(run_id=run_id, name=name, consumed_at__isnull=True)
    for signal in kept.order_by("sent_at", "id")[:5]:
        with transaction.atomic():
            now = clock.now()
            if not Signal.objects.filter(pk=signal.pk, consumed_at__isnull=True).update(
                consumed_at=now, step_id=step_id
            ):
                continue  # another step took it first: try the next one
            if not journal.complete_waiting(run_id, step_id, _output(signal)):
                transaction.set_rollback(True)  # the step was decided: the signal stays kept
                return False
            if wake:
                runs.run_wake(run_id=run_id)
        return True
    return False


def _output(signal: Signal) -> dict[str, Any]:
    return {
        "timed_out": False,
        "signal": signal.name,
        "id": str(signal.id),
        "data": signal.data,
        "sent_by": signal.sent_by.get_username() if signal.sent_by else None,
        "sent_at": signal.sent_at.isoformat(),
    }


# --- waiting --------------------------------------------------------------------------------


def start_signal_wait(
    ctx: Context, *, step_id: str, seq: int, name: str, timeout: timedelta | None
) -> StepRecord:
    try:
        check_name(name)
    except SignalRefused as exc:
        raise WorkflowError(f"wait_for_signal {step_id!r}: {exc}") from None
    deadline = clock.now() + timeout if timeout else None
    with transaction.atomic():
        record = journal.waiting_record_due(
            ctx,
            step_id=step_id,
            seq=seq,
            kind=StepRecord.Kind.WAIT_SIGNAL,
            input={"signal": name, "deadline": deadline.isoformat() if deadline else None},
            due=deadline,
        )
    take_kept(run_id=ctx.run.id, step_id=step_id, name=name, wake=False)
    return journal.refreshed(record)


def signal_result(ctx: Context, record: StepRecord) -> dict[str, Any]:
    """The signal the step received, or ``{"timed_out": True}``; suspends until then."""
    if record.status == StepStatus.SUCCEEDED:
        return record.output
    name = record.input["signal"]
    # A signal whose delivery was cut short (the sender's process died after storing it) is
    # taken on the run's next replay.
    if take_kept(run_id=ctx.run.id, step_id=record.step_id, name=name, wake=False):
        return journal.refreshed(record).output
    if waits.is_due(ctx, record):
        journal.complete_waiting(ctx.run.id, record.step_id, {"timed_out": True})
        record = journal.refreshed(record)
        if record.status == StepStatus.SUCCEEDED:
            return record.output
    raise Suspend(f"waiting in {record.step_id!r} for signal {name!r}")


def run_signals(run: Run) -> Any:
    """The run's signals, kept and consumed, oldest first (the run page)."""
    return Signal.objects.filter(run=run).select_related("sent_by").order_by("sent_at", "id")
