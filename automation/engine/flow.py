"""Flow control on a workflow's trigger: what an event that matched does, given the trigger's
``rate_limit``, ``debounce``, ``throttle`` and ``priority`` (:mod:`automation.engine.flowspec`).

- rate_limit: an event beyond ``limit`` starts in ``period`` (per key) starts nothing;
- debounce: the events of a key fold into one run, held back until ``period`` has passed
  without another (at most ``timeout`` after the first); it runs with the last event;
- throttle: a start beyond ``limit`` in ``period`` is delayed until the period allows it;
- batch: the events of a key fold into one run, started when ``max_size`` have come or
  ``timeout`` after the first; its trigger's ``events`` is the list;
- priority: the run's messages go to workers before those of lower priority.

The state of each key is a FlowKey row, which the routing worker updates before it reads it:
two workers routing events of one key take turns on that row, so a limit is never passed and
a debounce never opens two runs. Delayed runs wait on Timer rows the sweep fires. What was
done with each event is a TriggerOutcome row, for the event's page and API.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from automation.engine import clock, matching
from automation.engine.flowspec import PRIORITY_RANGE, FlowControl, Limit
from automation.engine.runs import (
    run_batch_hold,
    run_batch_release,
    run_start,
    run_start_again_later,
)
from automation.lib.db import update_returning
from automation.models import FlowKey, Run, TriggerOutcome, Workflow, WorkflowVersion

logger = logging.getLogger(__name__)
Outcome = TriggerOutcome.Outcome
EXPIRY_MARGIN = timedelta(minutes=5)


class _Refused(Exception):
    """A key or the priority could not be evaluated on this event."""


def start(
    *,
    version: WorkflowVersion,
    event: Any,
    control: FlowControl,
    lease_to: str = "",
    problems: list[str] | None = None,
) -> Run | None:
    """Start (or delay, or fold into a waiting run) the workflow's run for ``event`` as its
    trigger's flow control says; None when no new run was made (skipped by a rate limit, or
    folded into a debounced run). Records the outcome. Its writes are one savepoint: if the
    run cannot be started, nothing was counted against the limits."""
    workflow = version.workflow
    context = {"trigger": event.as_trigger()}
    with transaction.atomic():
        try:
            priority = _priority(control.priority, context, version, problems)
            key = ""
            if control.rate_limit is not None:
                key = _key("rate_limit", control.rate_limit.key, context)
                next_free = _rate_limit_admit(workflow, key, control.rate_limit)
                if next_free is not None:
                    limit = control.rate_limit
                    _record(
                        event,
                        workflow,
                        None,
                        Outcome.SKIPPED,
                        key,
                        f"rate limit: {limit.limit} start(s) per {_human(limit.period)} "
                        f"{_for_key(key)}reached; the next may start after "
                        f"{next_free:%Y-%m-%d %H:%M:%S} UTC",
                    )
                    return None
            if control.debounce is not None:
                return _debounce(version, event, control, priority)
            if control.batch is not None:
                return _batch(version, event, control, priority)
            delay_until, reason = None, ""
            if control.throttle is not None:
                key = _key("throttle", control.throttle.key, context)
                slot = _throttle_slot(workflow, key, control.throttle)
                if slot > clock.now():
                    delay_until = slot
                    reason = (
                        f"throttle: {control.throttle.limit} start(s) per "
                        f"{_human(control.throttle.period)} {_for_key(key)}reached; "
                        f"delayed until {slot:%Y-%m-%d %H:%M:%S} UTC"
                    )
            run = run_start(
                workflow=workflow,
                version=version,
                event=event,
                lease_to="" if delay_until else lease_to,
                priority=priority,
                delay_until=delay_until,
                waiting_for=reason and "its turn (throttle)",
            )
            outcome = Outcome.DELAYED if delay_until else Outcome.STARTED
            _record(event, workflow, run, outcome, key, reason)
            return run
        except _Refused as exc:
            message = f"workflow {workflow.name} v{version.number} not started: {exc}"
            logger.warning("event %s: %s", event.id, message)
            if problems is not None:
                problems.append(message)
            _record(event, workflow, None, Outcome.SKIPPED, "", str(exc))
            return None


def _debounce(
    version: WorkflowVersion, event: Any, control: FlowControl, priority: int
) -> Run | None:
    debounce = control.debounce
    assert debounce is not None
    workflow = version.workflow
    key = _key("debounce", debounce.key, {"trigger": event.as_trigger()})
    now = clock.now()
    row = _lock(workflow, FlowKey.Kind.DEBOUNCE, key, now)
    due = now + debounce.period
    reason = (
        f"debounce: the run starts {_human(debounce.period)} after the last event "
        f"{_for_key(key)}"
        + (f"(at most {_human(debounce.timeout)} after the first) " if debounce.timeout else "")
        + "with that last event"
    )
    if row.run_id is not None and row.first_at is not None:
        if debounce.timeout is not None:
            due = min(due, row.first_at + debounce.timeout)
        # The run still waits (its timer has not fired): it takes this event instead.
        if run_start_again_later(run_id=row.run_id, event=event, due_at=due):
            FlowKey.objects.filter(pk=row.pk).update(expires_at=_latest(due))
            _record(event, workflow, row.run_id, Outcome.DEBOUNCED, key, reason)
            return None
    if debounce.timeout is not None:
        due = min(due, now + debounce.timeout)
    run = run_start(
        workflow=workflow,
        version=version,
        event=event,
        priority=priority,
        delay_until=due,
        waiting_for="a quiet period (debounce)",
    )
    FlowKey.objects.filter(pk=row.pk).update(run=run, first_at=now, expires_at=_latest(due))
    _record(event, workflow, run, Outcome.DEBOUNCED, key, reason)
    return run


def _batch(version: WorkflowVersion, event: Any, control: FlowControl, priority: int) -> Run | None:
    batch = control.batch
    assert batch is not None
    workflow = version.workflow
    key = _key("batch", batch.key, {"trigger": event.as_trigger()})
    now = clock.now()
    row = _lock(workflow, FlowKey.Kind.BATCH, key, now)
    reason = (
        f"batch: one run per {batch.max_size} event(s) {_for_key(key)}or per "
        f"{_human(batch.timeout)} after the first"
    )
    if row.run_id is not None and run_batch_hold(run_id=row.run_id):
        _record(event, workflow, row.run_id, Outcome.BATCHED, key, reason)
        joined = TriggerOutcome.objects.filter(run_id=row.run_id, outcome=Outcome.BATCHED)
        if joined.count() >= batch.max_size:
            run_batch_release(run_id=row.run_id, priority=priority)
            FlowKey.objects.filter(pk=row.pk).update(run=None, first_at=None)
        return None
    due = now + batch.timeout
    run = run_start(
        workflow=workflow,
        version=version,
        event=event,
        priority=priority,
        delay_until=due,
        waiting_for="its batch to fill (batch)",
    )
    _record(event, workflow, run, Outcome.BATCHED, key, reason)
    if batch.max_size == 1:
        run_batch_release(run_id=run.id, priority=priority)
        return run
    FlowKey.objects.filter(pk=row.pk).update(run=run, first_at=now, expires_at=_latest(due))
    return run


def _rate_limit_admit(workflow: Workflow, key: str, limit: Limit) -> datetime | None:
    """Count a start against the limit; None if admitted, else when the next may start."""
    now = clock.now()
    row = _lock(workflow, FlowKey.Kind.RATE_LIMIT, key, now)
    starts = [t for t in _times(row.starts) if t > now - limit.period]
    if len(starts) >= limit.limit:
        return starts[-limit.limit] + limit.period
    _save_starts(row, [*starts, now][-limit.limit :], limit.period)
    return None


def _throttle_slot(workflow: Workflow, key: str, limit: Limit) -> datetime:
    """When the next start of this key may be: now, or when the period since the start
    ``limit`` places earlier has passed. The slot is taken."""
    now = clock.now()
    row = _lock(workflow, FlowKey.Kind.THROTTLE, key, now)
    starts = _times(row.starts)
    slot = now
    if len(starts) >= limit.limit:
        slot = max(now, starts[-limit.limit] + limit.period)
    _save_starts(row, [*starts, slot][-limit.limit :], limit.period)
    return slot


def _lock(workflow: Workflow, kind: str, key: str, now: datetime) -> FlowKey:
    """The key's row, updated first so that it is locked until this transaction ends."""
    rows = FlowKey.objects.filter(workflow=workflow, kind=kind, key=key)
    row = update_returning(rows, updated_at=now)
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return FlowKey.objects.create(workflow=workflow, kind=kind, key=key, updated_at=now)
    except IntegrityError:  # another worker created it first; it has committed by now
        row = update_returning(rows, updated_at=now)
        assert row is not None
        return row


def _times(values: list[str]) -> list[datetime]:
    return [datetime.fromisoformat(value) for value in values]


def _save_starts(row: FlowKey, starts: list[datetime], period: timedelta) -> None:
    FlowKey.objects.filter(pk=row.pk).update(
        starts=[t.isoformat() for t in starts], expires_at=_latest(starts[-1] + period)
    )


def _latest(moment: datetime) -> datetime:
    """A row's expiry: a sweep interval's margin after the moment it stops mattering, so a
    delayed timer still finds its debounce row."""
    return moment + EXPIRY_MARGIN


def flow_keys_expire(*, limit: int = 1000) -> int:
    """Delete key rows that hold nothing any more (what the sweep calls). A routing worker
    that locked one meanwhile set a later expiry in the same transaction: the conditional
    DELETE then leaves it."""
    now = clock.now()
    ids = list(FlowKey.objects.filter(expires_at__lt=now).values_list("id", flat=True)[:limit])
    if not ids:
        return 0
    deleted, _ = FlowKey.objects.filter(id__in=ids, expires_at__lt=now).delete()
    return deleted


def _key(option: str, expression: str, context: dict[str, Any]) -> str:
    if not expression:
        return ""
    try:
        value = matching.evaluate(expression, context)
    except matching.ExpressionError as exc:
        raise _Refused(f"trigger.{option}.key: {exc}") from None
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:200]


def _priority(
    expression: str,
    context: dict[str, Any],
    version: WorkflowVersion,
    problems: list[str] | None,
) -> int:
    """The run's priority; 0 (and a routing error on the event's page) when the expression
    fails on this event: a run is not refused for want of an order."""
    if not expression:
        return 0
    try:
        value = matching.evaluate(expression, context)
        if isinstance(value, bool) or not isinstance(value, int):
            raise matching.ExpressionError(
                f"{expression!r} gave {type(value).__name__} {value!r}; a priority is a whole "
                "number (higher runs first)"
            )
    except matching.ExpressionError as exc:
        if problems is not None:
            problems.append(
                f"workflow {version.workflow.name} v{version.number} started with priority 0: "
                f"trigger.priority: {exc}"
            )
        return 0
    low, high = PRIORITY_RANGE
    return max(low, min(high, int(value)))


def _record(event: Any, workflow: Workflow, run: Any, outcome: str, key: str, reason: str) -> None:
    TriggerOutcome.objects.create(
        event_id=event.id,
        workflow=workflow,
        run_id=getattr(run, "pk", run),
        outcome=outcome,
        key=key,
        reason=reason[:300],
        created_at=clock.now(),
    )


def _for_key(key: str) -> str:
    return f"for key {key!r} " if key else ""


def _human(period: timedelta) -> str:
    seconds = period.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
