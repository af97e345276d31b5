"""The context a workflow function receives: every durable operation goes through it.

A run is executed by replaying its function from the start. Each operation has an id; when the
journal already holds its result, the operation returns it (or re-raises its error) without
doing anything; the first operation without a result does its work, records it, and carries on,
or suspends the run (``Suspend``) when it has to wait. The order of operations is checked
against the journal, so code that changed under a running run fails loudly (DeterminismError).
"""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from automation.engine import (
    attempts,
    circuits,
    clock,
    journal,
    outward,
    patches,
    ports,
    saga,
    search,
    signalling,
    waits,
)
from automation.engine import branches as branch_ops
from automation.engine.durations import parse_duration
from automation.engine.errors import (
    TIMED_OUT,
    Cancelled,
    DeterminismError,
    RunTimedOut,
    StepFailed,
    Suspend,
    TimedOut,
    WorkflowError,
)
from automation.engine.registry import get_action
from automation.engine.retry import RetryPolicy
from automation.engine.specs import EventView
from automation.engine.waitgroups import EventsOutcome
from automation.models import Run, StepRecord

__all__ = ["Context", "EventView"]

if TYPE_CHECKING:
    from automation.engine.registry import WorkflowSpec

MAX_STEP_ID = 200
_SIDE_TABLE_KINDS = {
    "sleep",
    "wait_event",
    "wait_signal",
    "approval",
    "parallel",
    "branch",
    "child",
}
_UNORDERED_KINDS = {"compensation", "on_failure"}


class Context:
    """What ``fn(ctx, event)`` uses to do durable work. One instance per replay."""

    def __init__(
        self,
        run: Run,
        journal: list[StepRecord],
        spec: WorkflowSpec | None,
        owner: str | None = None,
    ) -> None:
        self.run = run
        # The lease this replay holds (leases.claim): every write checks it. None: no lease.
        self.owner = owner
        self.run_id = str(run.id)
        self.input: dict[str, Any] = run.input or {}
        self.correlation_id = run.correlation_id
        self.requester_id = run.started_by_id  # events the run emits are theirs (four-eyes)
        self._spec = spec
        self._default_retry = spec.retry if spec else RetryPolicy()
        self._journal = {record.step_id: record for record in journal}
        self._by_seq = {record.seq: record for record in journal if record.seq is not None}
        self._seq = 0
        # The last position the journal reached: below it, a replay walks recorded history.
        self._last_seq = max(self._by_seq, default=-1)
        self._seen: set[str] = set()
        # ctx.patched() answers, once per change id and replay (patches.py).
        self.patches: dict[str, bool] = {}
        self._counters: dict[str, int] = {}
        self.compensations: list[tuple[str, Callable[[Any], Any], Any]] = []
        self.cancelling = False
        # The step being executed: actions build idempotency keys from it.
        self.current_step_id = ""

    # --- ids and replay bookkeeping -----------------------------------------------------------

    def idempotency_key(self, step_id: str) -> str:
        """A stable key for the step's external effect: the same on every retry and replay."""
        return f"{self.run_id}:{step_id}"

    def _auto_id(self, prefix: str) -> str:
        count = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = count
        return f"{prefix}#{count}"

    def _enter(
        self, step_id: str, kind: str, *, ordered: bool = True
    ) -> tuple[StepRecord | None, int | None]:
        """Claim the next position in the replay for ``step_id``; return its journal record.

        Compensations and the failure handler are not ``ordered``: they run after whatever
        failed, which is not a position the code reaches by itself."""
        if not isinstance(step_id, str) or not step_id.strip() or len(step_id) > MAX_STEP_ID:
            raise WorkflowError(f"step id {step_id!r}: a non-empty string of at most 200 chars")
        if step_id in self._seen:
            raise WorkflowError(
                f"duplicate step id {step_id!r}: every step of a run needs its own id "
                "(inside a loop, put the index or item key in the id)"
            )
        self._seen.add(step_id)
        record = self._journal.get(step_id)
        if not ordered:
            if record is not None and record.kind != kind:
                raise DeterminismError(
                    f"{step_id!r} is a {record.kind} in the journal, not {kind}", step_id=step_id
                )
            return record, None
        seq = self._seq
        self._seq += 1
        expected = self._by_seq.get(seq)
        if expected is not None and expected.step_id != step_id:
            raise DeterminismError(
                f"replay diverged at operation #{seq + 1}: the journal has {expected.kind} "
                f"{expected.step_id!r}, the code now asks for {kind} {step_id!r}. The code "
                "changed under a running run; ship the change as a new workflow version, or "
                "guard it with ctx.patched().",
                step_id=step_id,
            )
        if record is not None and (record.seq != seq or record.kind != kind):
            raise DeterminismError(
                f"replay diverged at {kind} {step_id!r}: the journal recorded it as "
                f"{record.kind} #{(record.seq or 0) + 1}, the code reaches it as #{seq + 1}",
                step_id=step_id,
            )
        unfinished = record is None or record.status not in ("succeeded", "failed", "skipped")
        if unfinished and not self.cancelling:
            if self.run.cancel_requested:
                raise Cancelled("cancel requested")
            if self.run.deadline_at is not None and clock.now() >= self.run.deadline_at:
                raise RunTimedOut(f"the run passed its deadline {self.run.deadline_at.isoformat()}")
        return record, seq

    def _remember(self, record: StepRecord) -> None:
        self._journal[record.step_id] = record

    def recorded(self, step_id: str) -> StepRecord | None:
        """The journal's record of ``step_id``, or None."""
        return self._journal.get(step_id)

    def history_continues(self) -> bool:
        """Whether the journal holds operations at or after the replay's current position:
        the code is walking a path an earlier execution already took."""
        return self._last_seq >= self._seq

    def used_side_tables(self) -> bool:
        """Whether this run may have timers, waits, approvals or branches left to close."""
        return self.run.deadline_at is not None or any(
            record.kind in _SIDE_TABLE_KINDS or record.attempt > 1 or record.status == "waiting"
            for record in self._journal.values()
        )

    def run_compensations(self, retry: RetryPolicy) -> list[dict[str, Any]]:
        """Undo the completed steps: their compensations in reverse order of completion, each
        a journaled step (run once; a replay reads it back). Returns the errors of those that
        failed for good; the others still run."""
        self.cancelling = True
        problems = []
        for step_id, undo, output in reversed(self.compensations):
            try:
                self._step(
                    f"compensate:{step_id}", "compensation", undo, (output,), {}, retry=retry
                )
            except StepFailed as exc:
                problems.append({**exc.error, "step": exc.step_id})
        return problems

    # --- steps ----------------------------------------------------------------------------------

    def _user_id(self, step_id: str) -> str:
        """Step ids chosen in workflow code may not take the shapes the engine uses itself."""
        if isinstance(step_id, str) and (
            any(c in step_id for c in "#[]")
            or step_id.startswith(("compensate:", patches.MARKER_PREFIX))
            or step_id == "on_failure"
        ):
            raise WorkflowError(
                f"step id {step_id!r}: '#', '[', ']', the prefixes 'compensate:' and 'patch:' "
                "and 'on_failure' are reserved for the engine's own records"
            )
        return step_id

    def step(
        self,
        step_id: str,
        fn: Callable[..., Any],
        *args: Any,
        retry: dict[str, Any] | RetryPolicy | None = None,
        timeout: str | float | timedelta | None = None,
        compensate: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` once, durably: its JSON result is recorded and returned on
        every replay. Failures are retried per ``retry``; ``compensate(output)`` undoes it if the
        run fails later (saga)."""
        return self._step(
            self._user_id(step_id),
            "step",
            fn,
            args,
            kwargs,
            retry=retry,
            timeout=timeout,
            compensate=compensate,
        )

    def action(
        self,
        step_id: str,
        name: str,
        input: dict[str, Any] | None = None,
        *,
        invoke: Callable[[Any, Any], Any] | None = None,
        circuit: bool | dict[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Run the registered action ``name`` with ``input`` as a step. The journal records
        ``input`` as the action's ``redact`` hook shows it (credential headers hidden).
        ``invoke(input, ctx)``, when given, is called instead of the action's own function
        (named like it, so fakes still find it): the interpreter uses it to put the
        definition's secrets into the input at call time, so the journal never holds them.
        ``circuit``: this step's circuit breaker (see ``@action``), over the action's own."""
        spec = get_action(name)
        if spec.retry is not None and options.get("retry") is None:
            options["retry"] = spec.retry
        input = input or {}
        options["circuit"] = circuits.breaker_for(
            spec.name, spec.circuit, circuit, _circuit_key(spec, input)
        )
        fn = spec.invoke
        if invoke is not None:
            fn = invoke
            fn.action_name = spec.name  # type: ignore[attr-defined]
        return self._step(
            self._user_id(step_id),
            "step",
            fn,
            (input, self),
            {},
            recorded_input=spec.redact(input) if spec.redact else None,
            **options,
        )

    def skip(self, step_id: str, reason: str) -> None:
        """Record that the step was not taken (its ``if`` was false), so the journal shows the
        branch the run took."""
        record, seq = self._enter(self._user_id(step_id), "step")
        if record is None:
            self._remember(journal.record_skipped(self, step_id=step_id, seq=seq, reason=reason))

    def _step(
        self,
        step_id: str,
        kind: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        retry: dict[str, Any] | RetryPolicy | None = None,
        timeout: str | float | timedelta | None = None,
        compensate: Callable[[Any], Any] | None = None,
        recorded_input: Any = None,
        circuit: circuits.Breaker | None = None,
    ) -> Any:
        record, seq = self._enter(step_id, kind, ordered=kind not in _UNORDERED_KINDS)
        if record is not None and record.status == "succeeded":
            if compensate is not None:
                self.compensations.append((step_id, compensate, record.output))
            return record.output
        if record is not None and record.status == "failed":
            raise StepFailed(step_id, record.error or {})
        waiting = record is not None and record.status == "waiting"
        if waiting and record.next_attempt_at and not waits.is_due(self, record):
            raise Suspend(f"retry of {step_id!r} at {record.next_attempt_at.isoformat()}")
        policy = RetryPolicy.from_value(retry, self._default_retry)
        limit = parse_duration(timeout).total_seconds() if timeout is not None else None
        self.current_step_id = step_id
        record, output = attempts.execute(
            self,
            record,
            step_id=step_id,
            seq=seq,
            kind=kind,
            fn=fn,
            args=args,
            kwargs=kwargs,
            policy=policy,
            timeout=limit,
            recorded_input=recorded_input,
            circuit=circuit,
        )
        self._remember(record)
        if compensate is not None:
            self.compensations.append((step_id, compensate, output))
        return output

    # --- waiting --------------------------------------------------------------------------------

    def sleep(self, step_id: str, duration: str | float | timedelta) -> None:
        """Wait ``duration`` ("1h", "3d", seconds) holding no worker and no broker message."""
        self.sleep_until(step_id, None, duration=parse_duration(duration))

    def sleep_until(
        self, step_id: str, when: datetime | None, *, duration: timedelta | None = None
    ) -> None:
        record, seq = self._enter(self._user_id(step_id), "sleep")
        if record is None:
            due = when if when is not None else clock.now() + (duration or timedelta(0))
            record = waits.start_sleep(self, step_id=step_id, seq=seq, due=due)
            self._remember(record)
        waits.finish_sleep_if_due(self, record)

    def wait_for_event(
        self,
        step_id: str,
        event_type: str,
        *,
        match: dict[str, Any] | str | None = None,
        condition: str | None = None,
        source: str = "",
        timeout: str | float | timedelta | None = None,
        lookback: str | float | timedelta | None = None,
    ) -> dict[str, Any] | TimedOut:
        """Wait for an event of ``event_type`` whose data matches ``match`` (a dict of exact
        values by dotted path, or a CEL condition on ``event``). Returns the event as a dict, or
        a falsy TimedOut after ``timeout``. ``condition``: a CEL condition on ``event`` that must
        hold as well as a dict ``match``. ``source``: a pattern the event's source must match
        (``webhook:stripe``, ``webhook:*``; default any source). An event that arrived within
        ``lookback`` (default: the AUTOMATION_WAIT_LOOKBACK setting) before the wait began also
        counts."""
        record, seq = self._enter(self._user_id(step_id), "wait_event")
        if record is None:
            record = waits.start_wait(
                self,
                step_id=step_id,
                seq=seq,
                event_type=event_type,
                match=match,
                condition=condition,
                source=source,
                timeout=parse_duration(timeout) if timeout is not None else None,
                lookback=parse_duration(lookback) if lookback is not None else None,
            )
            self._remember(record)
        if "mode" in (record.input or {}):
            raise DeterminismError(
                f"replay diverged at {step_id!r}: the journal has a wait for several events, "
                "the code now waits for one; ship the change as a new workflow version"
            )
        output = waits.wait_result(self, record)
        return TIMED_OUT if output.get("timed_out") else output

    def wait_for_events(
        self,
        step_id: str,
        *,
        any: list[dict[str, Any]] | None = None,
        all: list[dict[str, Any]] | None = None,
        timeout: str | float | timedelta | None = None,
        lookback: str | float | timedelta | None = None,
    ) -> EventsOutcome:
        """Wait for any one, or all, of several events under one deadline. Each entry is
        ``{"event": type, "match"?: dict or CEL, "condition"?: CEL, "source"?: pattern}``, as
        the arguments of ``wait_for_event``; events stored within ``lookback`` before the wait
        count, as there. Returns ``{"mode", "arrived": [indexes], "events": [event or None
        per entry], "timed_out"}``, falsy when ``timeout`` passed first (``arrived`` then says
        which came). One event fills one entry."""
        if (any is None) == (all is None):
            raise WorkflowError(f"wait_for_events {step_id!r}: give any=[...] or all=[...]")
        record, seq = self._enter(self._user_id(step_id), "wait_event")
        if record is None:
            record = waits.start_group_wait(
                self,
                step_id=step_id,
                seq=seq,
                mode="any" if any is not None else "all",
                entries=any if any is not None else all,
                timeout=parse_duration(timeout) if timeout is not None else None,
                lookback=parse_duration(lookback) if lookback is not None else None,
            )
            self._remember(record)
        if "mode" not in (record.input or {}):
            raise DeterminismError(
                f"replay diverged at {step_id!r}: the journal has a wait for one event, the code "
                "now waits for several; ship the change as a new workflow version"
            )
        return waits.group_wait_result(self, record)

    def wait_for_signal(
        self, step_id: str, name: str, *, timeout: str | float | timedelta | None = None
    ) -> dict[str, Any] | TimedOut:
        """Wait for a signal ``name`` sent to this run (``POST /api/runs/<id>/signals/``, the
        run page). A signal sent before the wait began is kept and taken here, oldest first;
        each signal is taken by one wait. Returns ``{"signal", "id", "data", "sent_by",
        "sent_at", "timed_out": False}``, or a falsy TimedOut after ``timeout``."""
        record, seq = self._enter(self._user_id(step_id), "wait_signal")
        if record is None:
            record = signalling.start_signal_wait(
                self,
                step_id=step_id,
                seq=seq,
                name=name,
                timeout=parse_duration(timeout) if timeout is not None else None,
            )
            self._remember(record)
        output = signalling.signal_result(self, record)
        return TIMED_OUT if output.get("timed_out") else output

    def approval(
        self,
        step_id: str,
        *,
        title: str,
        assignees: list[str],
        description: str = "",
        context: dict[str, Any] | None = None,
        timeout: str | float | timedelta | None = None,
        on_timeout: str = "reject",
        quorum: int = 1,
        four_eyes: bool = False,
        escalate_to: list[str] | None = None,
        escalation_timeout: str | float | timedelta | None = None,
        fields: list[dict[str, Any]] | None = None,
        remind_before: str | float | timedelta | None = "auto",
    ) -> dict[str, Any]:
        """Ask people ("user:alice", "group:managers") to approve; wait for the decision.

        Returns ``{"approved": bool, "decision": "approved"|"rejected"|"expired", "comment",
        "decided_by", "decided_at", "votes", "values", "timed_out": bool}`` (a timeout decided
        by ``on_timeout="approve"`` is ``decision: "approved", timed_out: True``). ``quorum``:
        approvals needed (one rejection rejects). ``four_eyes``: whoever started the run cannot
        decide. After ``timeout`` the step decides ``on_timeout``: reject, approve, or escalate
        (hand it to ``escalate_to`` for ``escalation_timeout``, then reject). ``fields``: form
        fields the approver fills in (approvals.forms), returned under ``values``.
        ``remind_before``: when to remind the assignees before the timeout ("auto", a duration,
        or None/0 for never).
        The assignees are emailed a personal link when asked, reminded and escalated to.
        """
        kind = ports.step_kind("approval")  # approvals.steps registers it
        record, seq = self._enter(self._user_id(step_id), "approval")
        if record is None:
            record = kind.start(
                self,
                step_id=step_id,
                seq=seq,
                title=title,
                assignees=assignees,
                description=description,
                context=context or {},
                timeout=parse_duration(timeout) if timeout is not None else None,
                on_timeout=on_timeout,
                quorum=quorum,
                four_eyes=four_eyes,
                escalate_to=escalate_to,
                escalation_timeout=(
                    parse_duration(escalation_timeout) if escalation_timeout is not None else None
                ),
                fields=fields,
                remind_before=(
                    parse_duration(remind_before)
                    if remind_before not in (None, "auto")
                    else remind_before
                ),
            )
            self._remember(record)
        return kind.result(self, record)

    # --- events, children, branches -------------------------------------------------------------

    def emit(
        self,
        event_type: str,
        data: dict[str, Any] | None = None,
        *,
        step_id: str | None = None,
        subject: str = "",
    ) -> str:
        """Emit an event exactly once (its causation is this run). Returns the event id."""
        step_id = step_id or self._auto_id(f"emit:{event_type}")
        record, seq = self._enter(step_id, "emit")
        if record is None:
            record = outward.emit_event(
                self,
                step_id=step_id,
                seq=seq,
                event_type=event_type,
                data=data or {},
                subject=subject,
            )
            self._remember(record)
        return record.output["event_id"]

    def child(
        self,
        step_id: str,
        workflow: str,
        input: dict[str, Any] | None = None,
        *,
        compensate: bool = True,
    ) -> Any:
        """Start the workflow ``workflow`` as a child run and wait for its output.

        A failed child raises StepFailed here (catch it to carry on); it compensated its own
        steps. A child that succeeded is part of this run's saga: if this run fails or is
        cancelled later, the child's completed steps are compensated, in reverse order, as one
        compensation of this step (``compensate=False``: the child's effects stay)."""
        record, seq = self._enter(self._user_id(step_id), "child")
        if record is None:
            record = outward.start_child(
                self, step_id=step_id, seq=seq, workflow=workflow, input=input or {}
            )
            self._remember(record)
        output = outward.child_result(self, record)
        if compensate:
            child_run = {"child_run_id": record.input["child_run_id"]}
            undo = partial(saga.child_compensate, new_context=Context)
            self.compensations.append((step_id, undo, child_run))
        return output

    def parallel(
        self,
        step_id: str,
        branches: list[Callable[..., Any] | tuple[Any, ...]],
        *,
        retry: dict[str, Any] | RetryPolicy | None = None,
    ) -> list[Any]:
        """Run branches concurrently, each as its own task on any worker. Each branch is a
        module-level function or ``(function, arg, …)``. Returns their results in order once all
        succeed; the first branch that fails for good fails this step (StepFailed)."""
        record, seq = self._enter(self._user_id(step_id), "parallel")
        if record is None:
            policy = RetryPolicy.from_value(retry, self._default_retry)
            record = branch_ops.start_parallel(
                self, step_id=step_id, seq=seq, branches=branches, policy=policy
            )
            self._remember(record)
        return branch_ops.parallel_result(self, record)

    # --- changing code under running runs, search attributes ---------------------------------

    def patched(self, change_id: str) -> bool:
        """Whether this run takes the new path of a code change named ``change_id`` (as
        Temporal's ``patched``). A run that reaches this point for the first time records a
        marker and answers True from then on; a run whose journal already went past this point
        without the marker (it started on the old code) answers False, so it keeps the old
        path and replays cleanly. Use it as ``if ctx.patched("x"): new() else: old()``."""
        decided = self.patches.get(change_id)
        if decided is None:
            decided = patches.decide(self, change_id)
            if decided is None:  # new ground: nothing recorded here yet
                self._remember(self._mark_patch(change_id))
                decided = True
            self.patches[change_id] = decided
        return decided

    def _mark_patch(self, change_id: str) -> StepRecord:
        return patches.record_marker(self, change_id)

    def set_search_attributes(self, attributes: dict[str, Any]) -> None:
        """Merge ``attributes`` (short keys, text or number values; None removes a key) into
        the run's search attributes, which ``GET /api/runs/?search.<key>=`` and the runs page
        filter on. Idempotent: a replay writes nothing new."""
        search.run_set_attributes(self, attributes)

    # --- recorded values ------------------------------------------------------------------------

    def now(self) -> datetime:
        """The current time, recorded: a replay sees the same value."""
        return datetime.fromisoformat(self._value("now", lambda: clock.now().isoformat()))

    def uuid(self) -> uuid_module.UUID:
        """A random UUID, recorded: a replay sees the same value."""
        return uuid_module.UUID(self._value("uuid", lambda: str(uuid_module.uuid4())))

    def _value(self, prefix: str, produce: Callable[[], Any]) -> Any:
        step_id = self._auto_id(prefix)
        record, seq = self._enter(step_id, "value")
        if record is None:
            record = journal.record_value(self, step_id=step_id, seq=seq, value=produce())
            self._remember(record)
        return record.output


def _circuit_key(spec: Any, input: Any) -> str | None:
    """The circuit a call of the action belongs to when the action keys them (a host); an
    input it cannot read (no URL yet) falls back to the action's own circuit."""
    if spec.circuit_key is None:
        return None
    try:
        return spec.circuit_key(input) or None
    except Exception:  # a bad input fails the step itself, with a clearer message
        return None
