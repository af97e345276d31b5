"""How each durable operation is recorded in the journal (StepRecord) and its side tables.

Every write that records a result is conditional on the state it expects (``status`` and
``attempt``), so when two workers race on one step, only one result is recorded; the loser
sees ``LeaseLost`` and abandons. Nothing here holds a transaction open while user code runs.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q

from automation import lifecycle
from automation.engine import clock, leases, ports
from automation.engine.errors import (
    Cancelled,
    LeaseLost,
    NonRetryableError,
    StepFailed,
    StepTimeout,
    Suspend,
    WorkflowError,
)
from automation.engine.retry import RetryPolicy
from automation.lib import jsonsafe, logcontext
from automation.lib.db import insert, insert_if
from automation.models import StepRecord, StepStatus, Timer, Wait

if TYPE_CHECKING:
    from automation.engine.context import Context

logger = logging.getLogger(__name__)

Interceptor = Callable[[str, Callable[..., Any]], Callable[..., Any]]
_interceptor: Interceptor | None = None


def set_interceptor(interceptor: Interceptor | None) -> Interceptor | None:
    """Route every step call through ``interceptor(step_id, fn) -> fn`` (the testing harness
    uses it to replace actions with fakes). Returns the previous interceptor."""
    global _interceptor
    previous, _interceptor = _interceptor, interceptor
    return previous


# --- JSON and errors ------------------------------------------------------------------------


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


def _input_json(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    from automation.engine.context import Context

    shown = [arg for arg in args if not isinstance(arg, Context)]
    value: Any = shown[0] if len(shown) == 1 and not kwargs else {"args": shown, **kwargs}
    try:
        return to_json(value, "input")
    except NotJSONError:
        return {"repr": repr(value)[:2000]}


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


# --- running code with a timeout ------------------------------------------------------------


def _call(fn: Callable[..., Any], args: tuple, kwargs: dict, timeout: float | None) -> Any:
    """Call ``fn``; past ``timeout`` seconds raise StepTimeout. In a main thread (Celery's
    prefork workers, tests) the call is interrupted; elsewhere it is judged when it returns."""
    if not timeout:
        return fn(*args, **kwargs)
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):

        def on_alarm(signum: int, frame: Any) -> None:
            raise StepTimeout(f"the step ran longer than its timeout of {timeout:g}s")

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return fn(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    started = time.monotonic()
    result = fn(*args, **kwargs)
    if time.monotonic() - started > timeout:
        raise StepTimeout(f"the step ran longer than its timeout of {timeout:g}s")
    return result


def intercepted(step_id: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` as the interceptor (the testing harness's fakes) wants it called."""
    return _interceptor(step_id, fn) if _interceptor is not None else fn


def _attempt(step_id: str, fn: Callable, args: tuple, kwargs: dict, timeout: float | None) -> Any:
    fn = intercepted(step_id, fn)
    return to_json(_call(fn, args, kwargs, timeout), f"the result of step {step_id!r}")


# --- plain steps ----------------------------------------------------------------------------


def _announce(record: StepRecord, *, retrying: bool = False) -> StepRecord:
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


def _update_from(record: StepRecord, expected: str, /, **changes: Any) -> None:
    """Change the record only if it is still ``expected`` at ``record.attempt``. This write
    decides which of two racing workers records the step; the loser gets LeaseLost."""
    if not StepRecord.objects.filter(pk=record.pk, status=expected, attempt=record.attempt).update(
        **changes
    ):
        raise LeaseLost(f"step {record.step_id!r} was recorded by another worker")


def _begin_attempt(
    ctx: Context, record: StepRecord | None, *, step_id: str, seq: int, kind: str, input: Any
) -> StepRecord:
    """Record that an attempt starts (so a crash during it is visible and counted)."""
    now = clock.now()
    if record is None:
        fields = {
            "run": ctx.run,
            "step_id": step_id,
            "seq": seq,
            "kind": kind,
            "status": StepStatus.RUNNING,
            "attempt": 1,
            "input": input,
            "started_at": now,
        }
        # Only without a lease: a first attempt under one is journaled by _first_attempt.
        try:
            record = insert(StepRecord, **fields)
        except IntegrityError:  # another worker journaled it first: the run is not ours
            raise LeaseLost(f"step {step_id!r} was journaled by another worker") from None
        return _announce(record)
    history = list(record.attempts)
    if record.status == StepStatus.RUNNING:  # the worker running it stopped answering
        history.append(_history(record, {"type": "WorkerLost", "message": "worker stopped"}))
    _update_from(
        record,
        record.status,
        status=StepStatus.RUNNING,
        attempt=record.attempt + 1,
        started_at=now,
        next_attempt_at=None,
        finished_at=None,
        attempts=history,
    )
    record.refresh_from_db()
    return _announce(record)


def _history(record: StepRecord, error: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "attempt": record.attempt,
        "started_at": record.started_at.isoformat(),
        "finished_at": (record.finished_at or clock.now()).isoformat(),
        "error": {k: v for k, v in (error or {}).items() if k != "traceback"},
    }


def execute(
    ctx: Context,
    record: StepRecord | None,
    *,
    step_id: str,
    seq: int,
    kind: str,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    policy: RetryPolicy,
    timeout: float | None,
    recorded_input: Any = None,
) -> tuple[StepRecord, Any]:
    """Run one attempt of a step and record its outcome. Returns (record, output); raises
    Suspend when a retry is scheduled and StepFailed when the step failed for good.
    ``recorded_input``: what the journal shows as the input instead of the arguments (an
    action's input with its credentials hidden)."""
    if ctx.run.cancel_requested and not ctx.cancelling:  # learnt when the last step was recorded
        raise Cancelled("cancel requested")
    if record is not None or leases.renewal_due(ctx, extra=timeout or 0):
        leases.renew(ctx, extra=timeout or 0)
    shown = (
        _input_json(args, kwargs) if recorded_input is None else _input_json((recorded_input,), {})
    )
    if record is None and getattr(ctx, "owner", None) is not None:
        return _first_attempt(ctx, step_id, seq, kind, shown, fn, args, kwargs, policy, timeout)
    record = _begin_attempt(ctx, record, step_id=step_id, seq=seq, kind=kind, input=shown)
    try:
        with leases.keep_run(ctx, extra=timeout or 0), logcontext.scope(step_id=step_id):
            output = _attempt(step_id, fn, args, kwargs, timeout)
    except Exception as exc:
        record_failure(record, exc, policy, timer_kind=Timer.Kind.WAKE)
        raise AssertionError("record_failure always raises") from exc
    _record_success(record, output)
    return record, output


#: A first attempt still running after this many seconds is journaled as running (by the lease
#: keeper's thread): shorter ones are journaled once, when they end, with their outcome.
RUNNING_VISIBLE_AFTER = 1.0


def _first_attempt(
    ctx: Context,
    step_id: str,
    seq: int,
    kind: str,
    shown: Any,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    policy: RetryPolicy,
    timeout: float | None,
) -> tuple[StepRecord, Any]:
    """Run a step's first attempt and journal it with one INSERT when it ends (as Temporal
    records an activity's start only with its outcome): a no-op step costs one statement, not
    an INSERT and an UPDATE. A step running longer than RUNNING_VISIBLE_AFTER is journaled as
    running meanwhile, so pages show it and a crash during it counts as an attempt; a crash
    during a shorter one is counted by the run's recoveries."""
    attempt = _Attempt(ctx, step_id=step_id, seq=seq, kind=kind, input=shown)
    try:
        with (
            leases.keep_run(ctx, extra=timeout or 0),
            leases.keeping(attempt.journal_running, every=RUNNING_VISIBLE_AFTER),
            logcontext.scope(step_id=step_id),
        ):
            output = _attempt(step_id, fn, args, kwargs, timeout)
    except Exception as exc:
        record = attempt.end() or attempt.insert(status=StepStatus.RUNNING)
        record_failure(record, exc, policy, timer_kind=Timer.Kind.WAKE)
        raise AssertionError("record_failure always raises") from exc
    record = attempt.end()
    if record is not None:  # journaled as running while it ran
        _record_success(record, output)
        return record, output
    record = attempt.insert(status=StepStatus.SUCCEEDED, output=output, finished_at=clock.now())
    return _announce(record), output


class _Attempt:
    """A first attempt not journaled yet. ``journal_running`` (the keeper's thread, once the
    attempt has run long enough) and ``end`` (the step's own thread) take turns under a lock,
    so the attempt is journaled as running at most once and never after it ended."""

    def __init__(self, ctx: Context, **fields: Any) -> None:
        self.ctx, self.fields = ctx, fields
        self.started_at = clock.now()
        self.lock = threading.Lock()
        self.record: StepRecord | None = None
        self.ended = False

    def insert(self, **outcome: Any) -> StepRecord:
        """INSERT the record while the run is ours; LeaseLost or Cancelled when it is not. A
        success is recorded even if a cancel was requested meanwhile (the step ran: its
        compensation must run too); the cancel is acted on before the next step."""
        fields = {
            "run": self.ctx.run,
            "attempt": 1,
            "started_at": self.started_at,
            **self.fields,
            **outcome,
        }
        try:
            record = insert_if(StepRecord, leases.still_mine(self.ctx), **fields)
            if record is None and outcome.get("status") == StepStatus.SUCCEEDED:
                record = insert_if(StepRecord, leases.held(self.ctx), **fields)
                self.ctx.run.cancel_requested = record is not None
        except IntegrityError:  # another worker journaled it first: the run is not ours
            raise LeaseLost(f"step {fields['step_id']!r} was journaled by another worker") from None
        if record is None:
            leases.refused(self.ctx)
        return record

    def journal_running(self) -> bool:
        with self.lock:
            if not self.ended and self.record is None:
                try:
                    self.record = self.insert(status=StepStatus.RUNNING)
                except (LeaseLost, Cancelled):
                    return False  # the attempt's own INSERT will find out and say so
                except DatabaseError as exc:  # the attempt goes on, journaled when it ends
                    logger.warning(
                        "could not journal step %r as running: %s", self.fields["step_id"], exc
                    )
                    return False
        if self.record is not None:
            _announce(self.record)
        return False  # once

    def end(self) -> StepRecord | None:
        """The attempt ended: no journaling as running from now on. The record, if it was."""
        with self.lock:
            self.ended = True
            return self.record


def _record_success(record: StepRecord, output: Any) -> None:
    now = clock.now()
    _update_from(
        record,
        StepStatus.RUNNING,
        status=StepStatus.SUCCEEDED,
        output=output,
        error=None,
        finished_at=now,
    )
    record.status, record.output, record.finished_at = StepStatus.SUCCEEDED, output, now
    _announce(record)


def record_failure(
    record: StepRecord, exc: Exception, policy: RetryPolicy, *, timer_kind: str
) -> NoReturn:
    """Schedule a retry (a Timer row, then Suspend) or fail the step for good (StepFailed)."""
    retryable = policy.is_retryable(exc)
    error = error_info(exc, retryable=retryable)
    now = clock.now()
    history = [*record.attempts, _history(record, error)]
    if retryable and record.attempt < policy.max_attempts:
        due = now + timedelta(seconds=policy.delay(record.attempt, exc))
        with transaction.atomic():
            _update_from(
                record,
                StepStatus.RUNNING,
                status=StepStatus.WAITING,
                error=error,
                next_attempt_at=due,
                finished_at=now,
                attempts=history,
            )
            Timer.objects.create(
                run_id=record.run_id, step_id=record.step_id, kind=timer_kind, due_at=due
            )
            record.status, record.error, record.finished_at = StepStatus.WAITING, error, now
            _announce(record, retrying=True)
        raise Suspend(f"retry {record.attempt + 1} of {record.step_id!r} at {due.isoformat()}")
    _update_from(
        record,
        StepStatus.RUNNING,
        status=StepStatus.FAILED,
        error=error,
        finished_at=now,
        attempts=history,
    )
    record.status, record.error, record.finished_at = StepStatus.FAILED, error, now
    _announce(record)
    raise StepFailed(record.step_id, {**error, "attempt": record.attempt})


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
    return _announce(record)


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


def step_deadline_move(run_id: Any, step_id: str, due: datetime) -> None:
    """Move a waiting step's deadline to ``due`` (an escalated approval gets a new one): the
    step is due then, and a timer wakes the run at that time."""
    StepRecord.objects.filter(run_id=run_id, step_id=step_id).update(next_attempt_at=due)
    Timer.objects.create(run_id=run_id, step_id=step_id, due_at=due)


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


def refreshed(record: StepRecord) -> StepRecord:
    record.refresh_from_db()
    return record


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
    from automation.engine import matching

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


LOOKBACK_LIMIT = 1000  # newest events of the type examined; exact matches are filtered in SQL


def _resolve_from_lookback(ctx: Context, wait: Wait, lookback: timedelta | None) -> None:
    """Give the wait the oldest matching event of the lookback window that no other wait of
    this run has taken (so two waits in a row get two events, in order)."""
    from django.utils import timezone

    from automation.engine.runs import wait_resolve

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
    for event in sorted(candidates, key=lambda e: e.received_at):
        if wait_resolve(wait=wait, event=event, wake=False):
            return


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


# --- emit -----------------------------------------------------------------------------------


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
        return _announce(record)


# --- child workflows ------------------------------------------------------------------------


def start_child(
    ctx: Context, *, step_id: str, seq: int, workflow: str, input: dict[str, Any]
) -> StepRecord:
    from automation.engine.runs import run_start

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
