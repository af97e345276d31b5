"""Running a step's attempt and recording its outcome: the call (with its timeout and the
testing harness's interceptor), the journal's "running" record, success, and failure (a
retry scheduled, or the step failed for good).

Every write that records a result is conditional on the state it expects (``status`` and
``attempt``), so when two workers race on one step, only one result is recorded; the loser
sees ``LeaseLost`` and abandons. Nothing here holds a transaction open while user code runs.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from django.db import DatabaseError, IntegrityError, transaction

from automation.engine import circuits, clock, leases
from automation.engine.errors import (
    Cancelled,
    LeaseLost,
    Paused,
    StepFailed,
    StepTimeout,
    Suspend,
)
from automation.engine.journal import NotJSONError, announce, error_info, to_json
from automation.engine.retry import RetryPolicy
from automation.lib import logcontext
from automation.lib.db import insert, insert_if
from automation.models import StepRecord, StepStatus, Timer

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


def attempt_call(
    step_id: str,
    fn: Callable,
    args: tuple,
    kwargs: dict,
    timeout: float | None,
    gate: circuits.Gate | None = None,
    policy: RetryPolicy | None = None,
) -> Any:
    """Call a step's function as the harness wants it, within ``timeout``; its result as JSON.
    Through a circuit's ``gate``: a failure ``policy`` would retry counts towards opening it
    (one it would not, a bad input, says nothing about the service)."""
    fn = intercepted(step_id, fn)
    if gate is None:
        return to_json(_call(fn, args, kwargs, timeout), f"the result of step {step_id!r}")
    try:
        result = _call(fn, args, kwargs, timeout)
    except Exception as exc:
        if policy is None or policy.is_retryable(exc):
            _count(gate.failed, step_id)
        raise
    _count(gate.succeeded, step_id)
    return to_json(result, f"the result of step {step_id!r}")


def _count(outcome: Callable[[], None], step_id: str) -> None:
    """Tell the circuit how the call went. A database error here must not change the step's
    own outcome (the call was made): it is logged, and the circuit misses one count."""
    try:
        outcome()
    except DatabaseError as exc:
        logger.warning("step %r: could not update its circuit: %s", step_id, exc)


# --- recording attempts ---------------------------------------------------------------------


def _input_json(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    from automation.engine.context import Context

    shown = [arg for arg in args if not isinstance(arg, Context)]
    value: Any = shown[0] if len(shown) == 1 and not kwargs else {"args": shown, **kwargs}
    try:
        return to_json(value, "input")
    except NotJSONError:
        return {"repr": repr(value)[:2000]}


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
        return announce(record)
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
    return announce(record)


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
    circuit: circuits.Breaker | None = None,
) -> tuple[StepRecord, Any]:
    """Run one attempt of a step and record its outcome. Returns (record, output); raises
    Suspend when a retry is scheduled, or the step's ``circuit`` is open, and StepFailed when
    the step failed for good. ``recorded_input``: what the journal shows as the input instead
    of the arguments (an action's input with its credentials hidden)."""
    if ctx.run.cancel_requested and not ctx.cancelling:  # learnt when the last step was recorded
        raise Cancelled("cancel requested")
    if ctx.run.pause_requested and not ctx.cancelling:
        raise Paused("pause requested")
    if record is not None or leases.renewal_due(ctx, extra=timeout or 0):
        leases.renew(ctx, extra=timeout or 0)
    shown = (
        _input_json(args, kwargs) if recorded_input is None else _input_json((recorded_input,), {})
    )
    gate = circuits.enter(circuit, timeout) if circuit is not None else None
    if gate is not None and gate.blocked_until is not None:
        _wait_for_circuit(ctx, record, step_id=step_id, seq=seq, kind=kind, input=shown, gate=gate)
    if record is None and ctx.owner is not None:
        return _first_attempt(
            ctx, step_id, seq, kind, shown, fn, args, kwargs, policy, timeout, gate
        )
    record = _begin_attempt(ctx, record, step_id=step_id, seq=seq, kind=kind, input=shown)
    try:
        with leases.keep_run(ctx, extra=timeout or 0), logcontext.scope(step_id=step_id):
            output = attempt_call(step_id, fn, args, kwargs, timeout, gate, policy)
    except Exception as exc:
        record_failure(record, exc, policy, timer_kind=Timer.Kind.WAKE)
        raise AssertionError("record_failure always raises") from exc
    record_success(record, output)
    return record, output


def _wait_for_circuit(
    ctx: Context,
    record: StepRecord | None,
    *,
    step_id: str,
    seq: int,
    kind: str,
    input: Any,
    gate: circuits.Gate,
) -> NoReturn:
    """Journal the step as waiting for its open circuit, with the timer that wakes the run
    when the circuit may be probed, and suspend. The attempt counter stays as it was: a call
    that was never made is neither an attempt nor a failure."""
    due = gate.blocked_until
    assert due is not None
    reason = circuits.waiting_reason(gate.breaker.key, due)
    note = circuits.waiting_note(gate.breaker.key, due)
    with transaction.atomic():
        if record is None:
            fields = {
                "run": ctx.run,
                "step_id": step_id,
                "seq": seq,
                "kind": kind,
                "status": StepStatus.WAITING,
                "attempt": 0,
                "input": input,
                "started_at": clock.now(),
                "next_attempt_at": due,
                "error": note,
            }
            try:
                if ctx.owner is not None:
                    record = insert_if(StepRecord, leases.still_mine(ctx), **fields)
                    if record is None:
                        leases.refused(ctx)
                else:
                    record = insert(StepRecord, **fields)
            except IntegrityError:  # another worker journaled it first: the run is not ours
                raise LeaseLost(f"step {step_id!r} was journaled by another worker") from None
        else:
            history = list(record.attempts)
            if record.status == StepStatus.RUNNING:  # the worker running it stopped answering
                lost = {"type": "WorkerLost", "message": "worker stopped"}
                history.append(_history(record, lost))
            _update_from(
                record,
                record.status,
                status=StepStatus.WAITING,
                next_attempt_at=due,
                error=note,
                attempts=history,
            )
            record.status, record.next_attempt_at, record.error = StepStatus.WAITING, due, note
        Timer.objects.create(run_id=record.run_id, step_id=step_id, due_at=due)
    announce(record)
    raise Suspend(reason)


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
    gate: circuits.Gate | None = None,
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
            output = attempt_call(step_id, fn, args, kwargs, timeout, gate, policy)
    except Exception as exc:
        record = attempt.end() or attempt.insert(status=StepStatus.RUNNING)
        record_failure(record, exc, policy, timer_kind=Timer.Kind.WAKE)
        raise AssertionError("record_failure always raises") from exc
    record = attempt.end()
    if record is not None:  # journaled as running while it ran
        record_success(record, output)
        return record, output
    record = attempt.insert(status=StepStatus.SUCCEEDED, output=output, finished_at=clock.now())
    return announce(record), output


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
                if record is not None:  # a cancel or a pause: acted on before the next step
                    leases.learn_requests(self.ctx)
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
                except (LeaseLost, Cancelled, Paused):
                    return False  # the attempt's own INSERT will find out and say so
                except DatabaseError as exc:  # the attempt goes on, journaled when it ends
                    logger.warning(
                        "could not journal step %r as running: %s", self.fields["step_id"], exc
                    )
                    return False
        if self.record is not None:
            announce(self.record)
        return False  # once

    def end(self) -> StepRecord | None:
        """The attempt ended: no journaling as running from now on. The record, if it was."""
        with self.lock:
            self.ended = True
            return self.record


def record_success(record: StepRecord, output: Any) -> None:
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
    announce(record)


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
            announce(record, retrying=True)
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
    announce(record)
    raise StepFailed(record.step_id, {**error, "attempt": record.attempt})
