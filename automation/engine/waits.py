"""Steps that wait for time or for an event: sleeps, waits for events (with their lookback on
events stored before the wait began), and when a waiting step is due.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from automation.engine import clock, journal, matching, ports, waitgroups
from automation.engine.errors import Suspend, WorkflowError
from automation.engine.journal import complete_waiting, refreshed, to_json, waiting_record
from automation.engine.runs import wait_accepts, wait_resolve
from automation.models import StepRecord, StepStatus, Timer, Wait

if TYPE_CHECKING:
    from automation.engine.context import Context


def is_due(ctx: Context, record: StepRecord) -> bool:
    """Whether the time a waiting record waits for has come: by this worker's clock, or
    because the sweep fired its timer (the sweeper's clock may run ahead of ours)."""
    due = record.next_attempt_at
    if due is None:
        return False
    if due <= clock.now():
        return True
    # The record's own timer carries the same due time; earlier timers of the step (retries,
    # a deadline moved by an escalation) do not count.
    return Timer.objects.filter(
        run_id=ctx.run.id, step_id=record.step_id, fired_at__isnull=False, due_at=due
    ).exists()


def step_deadline_move(run_id: Any, step_id: str, due: datetime) -> None:
    """Move a waiting step's deadline to ``due`` (an escalated approval gets a new one): the
    step is due then, and a timer wakes the run at that time."""
    StepRecord.objects.filter(run_id=run_id, step_id=step_id).update(next_attempt_at=due)
    Timer.objects.create(run_id=run_id, step_id=step_id, due_at=due)


# --- sleep ----------------------------------------------------------------------------------


def start_sleep(ctx: Context, *, step_id: str, seq: int, due: datetime) -> StepRecord:
    with transaction.atomic():
        record = waiting_record(
            ctx,
            step_id=step_id,
            seq=seq,
            kind=StepRecord.Kind.SLEEP,
            input={"until": due.isoformat()},
            next_attempt_at=due,
        )
        Timer.objects.create(run=ctx.run, step_id=step_id, due_at=due)
    return record


def finish_sleep_if_due(ctx: Context, record: StepRecord) -> None:
    if record.status == StepStatus.SUCCEEDED:
        return
    if is_due(ctx, record):
        complete_waiting(ctx.run.id, record.step_id, {"slept_until": record.input["until"]})
        record.status = StepStatus.SUCCEEDED
        return
    raise Suspend(f"sleeping in {record.step_id!r} until {record.input['until']}")


# --- wait for an event ----------------------------------------------------------------------


def start_wait(
    ctx: Context,
    *,
    step_id: str,
    seq: int,
    event_type: str,
    match: dict[str, Any] | str | None,
    timeout: timedelta | None,
    lookback: timedelta | None,
    condition: str | None = None,
    source: str = "",
) -> StepRecord:
    exact, expression = _match_fields(step_id, match, condition)
    deadline = clock.now() + timeout if timeout else None
    with transaction.atomic():
        record = waiting_record(
            ctx,
            step_id=step_id,
            seq=seq,
            kind=StepRecord.Kind.WAIT_EVENT,
            input={
                "event_type": event_type,
                "match": match,
                **({"condition": condition} if condition else {}),
                **({"source": source} if source else {}),
                "deadline": deadline.isoformat() if deadline else None,
            },
            next_attempt_at=deadline,
        )
        wait = Wait.objects.create(
            run=ctx.run,
            step_id=step_id,
            event_type=event_type,
            match=to_json(exact, "match"),
            expression=expression,
            source=source,
            deadline=deadline,
        )
        if deadline:
            Timer.objects.create(run=ctx.run, step_id=step_id, due_at=deadline)
    # Look back only once the wait is committed: an event stored after this query is routed to
    # the wait, one stored before it is found here, so none falls between the two.
    _resolve_from_lookback(ctx, wait, lookback)
    return refreshed(record)


def _match_fields(
    step_id: str, match: dict[str, Any] | str | None, condition: str | None
) -> tuple[dict[str, Any], str]:
    """(exact values by path, CEL expression) of a wait's ``match`` and ``condition``."""
    exact = match if isinstance(match, dict) else {}
    expression = match if isinstance(match, str) else ""
    if condition:
        if expression:
            raise WorkflowError(f"wait {step_id!r}: give the CEL condition once")
        expression = condition
    if match is not None and not isinstance(match, dict | str):
        raise WorkflowError(f"wait {step_id!r}: match must be a dict or a CEL string")
    if expression:
        matching.compile_expression(expression)  # a bad expression fails now, not on each event
    return exact, expression


def _group_entries(step_id: str, mode: str, entries: Any) -> list[dict[str, Any]]:
    """The events of a wait for any or all, checked: each ``{"event", "match"?,
    "condition"?, "source"?}``."""
    if not isinstance(entries, list | tuple) or not entries:
        raise WorkflowError(f"wait {step_id!r}: {mode}= needs a non-empty list of events")
    if len(entries) > waitgroups.MAX_EVENTS:
        raise WorkflowError(
            f"wait {step_id!r}: at most {waitgroups.MAX_EVENTS} events, not {len(entries)}"
        )
    checked = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("event"), str):
            raise WorkflowError(
                f"wait {step_id!r}: {mode}[{i}] must be a dict with an 'event' type, like "
                '{"event": "payment.received", "match": {"order": 42}}'
            )
        unknown = set(entry) - {"event", "match", "condition", "source"}
        if unknown:
            raise WorkflowError(f"wait {step_id!r}: {mode}[{i}] has unknown keys {sorted(unknown)}")
        exact, expression = _match_fields(
            f"{step_id}[{i}]", entry.get("match"), entry.get("condition")
        )
        checked.append(
            {
                "event": entry["event"],
                "match": entry.get("match"),
                "exact": exact,
                "expression": expression,
                "source": entry.get("source") or "",
            }
        )
    return checked


def start_group_wait(
    ctx: Context,
    *,
    step_id: str,
    seq: int,
    mode: str,
    entries: Any,
    timeout: timedelta | None,
    lookback: timedelta | None,
) -> StepRecord:
    """Open a step waiting for any or all of ``entries`` (see waitgroups)."""
    if mode not in waitgroups.MODES:
        raise WorkflowError(f"wait {step_id!r}: give any= or all=, not both")
    checked = _group_entries(step_id, mode, entries)
    deadline = clock.now() + timeout if timeout else None
    with transaction.atomic():
        record = journal.waiting_record_due(
            ctx,
            step_id=step_id,
            seq=seq,
            kind=StepRecord.Kind.WAIT_EVENT,
            input={
                "mode": mode,
                "events": [
                    {k: e[k] for k in ("event", "match", "source") if e[k] is not None}
                    for e in checked
                ],
                "deadline": deadline.isoformat() if deadline else None,
            },
            due=deadline,
        )
        parts = [
            Wait.objects.create(
                run=ctx.run,
                step_id=step_id,
                part=i,
                mode=mode,
                event_type=entry["event"],
                match=to_json(entry["exact"], "match"),
                expression=entry["expression"],
                source=entry["source"],
                deadline=deadline,
            )
            for i, entry in enumerate(checked)
        ]
    # As for a single wait: look back once the parts are committed. All: part by part (each
    # takes an event no other wait of the run has taken). Any: the oldest event of them all.
    if mode == "all":
        for part in parts:
            _resolve_from_lookback(ctx, part, lookback)
    else:
        _resolve_first_from_lookback(ctx, parts, lookback)
    return refreshed(record)


def group_wait_result(ctx: Context, record: StepRecord) -> waitgroups.EventsOutcome:
    """The outcome of a wait for any or all once decided; suspends the run until then."""
    if record.status != StepStatus.SUCCEEDED and is_due(ctx, record):
        with transaction.atomic():
            waitgroups.time_out(ctx.run.id, record.step_id, record.input["mode"])
        record = refreshed(record)
    if record.status == StepStatus.SUCCEEDED:
        return waitgroups.EventsOutcome(record.output)
    wanted = ", ".join(entry["event"] for entry in record.input["events"])
    raise Suspend(f"waiting in {record.step_id!r} for {record.input['mode']} of: {wanted}")


LOOKBACK_LIMIT = 1000  # newest events of the type examined; exact matches are filtered in SQL


def _resolve_from_lookback(ctx: Context, wait: Wait, lookback: timedelta | None) -> None:
    """Give the wait the oldest matching event of the lookback window that no other wait of
    this run has taken (so two waits in a row get two events, in order)."""
    for event in _lookback_candidates(ctx, wait, lookback):
        if wait_resolve(wait=wait, event=event, wake=False):
            return


def _resolve_first_from_lookback(
    ctx: Context, parts: list[Wait], lookback: timedelta | None
) -> None:
    """A wait for any of several events: the oldest event of the window that one of its parts
    accepts decides it, whichever part that is."""
    found = []
    for part in parts:
        event = next((e for e in _lookback_candidates(ctx, part, lookback)
                      if wait_accepts(part, e)), None)  # fmt: skip
        if event is not None:
            found.append((event.received_at, part.part, part, event))
    for _, _, part, event in sorted(found, key=lambda entry: entry[:2]):
        if wait_resolve(wait=part, event=event, wake=False):
            return


def _lookback_candidates(ctx: Context, wait: Wait, lookback: timedelta | None) -> list[Any]:
    """The events of the window for the wait's type and exact values that no wait of this
    run has taken, oldest first (its CEL condition and source are checked by the caller)."""
    window = lookback if lookback is not None else settings.AUTOMATION_WAIT_LOOKBACK
    taken = Wait.objects.filter(run_id=ctx.run.id, event__isnull=False).values("event_id")
    candidates = ports.event_sink().lookback(
        event_type=wait.event_type,
        since=timezone.now() - window,
        data_equals=_exact_filters(wait.match or {}),
        exclude_id=ctx.run.trigger_event_id,
        exclude_ids=taken,
        limit=LOOKBACK_LIMIT,
    )
    return sorted(candidates, key=lambda e: e.received_at)


def _exact_filters(match: dict[str, Any]) -> dict[str, Any]:
    """The scalar values of an exact match, by dotted path, for the event log to filter on
    (the rest is checked in Python)."""
    return {
        path: value
        for path, value in match.items()
        if isinstance(value, str | int | float | bool)
        and all(p.isidentifier() for p in path.split("."))
    }


def wait_result(ctx: Context, record: StepRecord) -> dict[str, Any]:
    if record.status == StepStatus.SUCCEEDED:
        return record.output
    if is_due(ctx, record):
        now = clock.now()
        with transaction.atomic():
            timed_out = Wait.objects.filter(
                run=ctx.run, step_id=record.step_id, status=Wait.Status.OPEN
            ).update(status=Wait.Status.TIMED_OUT, resolved_at=now)
            if timed_out:
                complete_waiting(ctx.run.id, record.step_id, {"timed_out": True})
        record = refreshed(record)
        if record.status == StepStatus.SUCCEEDED:
            return record.output
    raise Suspend(f"waiting in {record.step_id!r} for event {record.input['event_type']}")
