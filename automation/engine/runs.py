"""The run-domain writes the engine itself makes: starting a run, waking it, giving a waiting
step its outcome, what happens when a run ends (its parent told, its concurrency slot freed)
and cancelling it (the engine cancels children and runs a concurrency limit replaces).

Each function is one transaction and is named <thing>_<verb>. The outer apps call these too:
events (a trigger starts a run, an event resumes a wait), approvals (a decision completes a
step), the operator commands, the admin and the API.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from automation import lifecycle
from automation.engine import (
    clock,
    dispatch,
    inputs,
    journal,
    leases,
    matching,
    ports,
    registry,
    transitions,
    waitgroups,
)
from automation.engine.errors import UnknownWorkflow, WorkflowError
from automation.models import (
    ACTIVE_STATUSES,
    Run,
    RunOrigin,
    RunStatus,
    Timer,
    Wait,
    Workflow,
    WorkflowVersion,
)

logger = logging.getLogger(__name__)


# --- starting runs --------------------------------------------------------------------------


def run_start(
    *,
    workflow: str | Workflow,
    input: dict[str, Any] | None = None,
    event: Any = None,
    correlation_id: str = "",
    parent_run: Run | None = None,
    parent_step_id: str = "",
    started_by: Any = None,
    started_via: str = RunOrigin.CODE,
    version: WorkflowVersion | None = None,
    lease_to: str = "",
    priority: int = 0,
    delay_until: datetime | None = None,
    waiting_for: str = "",
    check_input: bool = False,
) -> Run:
    """Start a run of the workflow's latest version; it is dispatched after commit.

    With ``event``, the run's input is the event's data and the event starts the workflow at
    most once (a second call returns the first run). ``lease_to``: a lease owner
    (``leases.new_owner()``); the run is created already held by it, and no "advance" message
    is sent: the caller advances it at once (if the caller dies first, the recovery sweep takes
    the run over when the lease expires). Not for a run its concurrency limit holds back.
    ``started_via``: the RunOrigin the run page shows when no event, parent or user started it.
    ``priority``: higher is sent to workers first. ``delay_until``: the run waits (showing
    ``waiting_for``) until then, when a timer wakes it (a trigger's throttle or debounce).
    A paused workflow's run is created paused (not delayed); resuming the workflow starts it.
    ``check_input``: the input must match the version's input schema (a person or client
    started it), else InvalidInput names each path and nothing is started.
    """
    registry.sync_code_workflows()
    wf = workflow if isinstance(workflow, Workflow) else _workflow(workflow)
    if not wf.active:
        raise WorkflowError(f"workflow {wf.name!r} is inactive; activate it to start runs")
    version = version or wf.latest_version()
    if version is None:
        raise WorkflowError(f"workflow {wf.name!r} has no version yet")
    data = event.data if event is not None else (input if input is not None else {})
    if not isinstance(data, dict):
        raise WorkflowError("a run's input must be a JSON object")
    if check_input and event is None:
        inputs.check_input(version, data)
    run = Run(
        workflow=wf,
        version=version,
        input=journal.to_json(data, "the run's input"),
        trigger_event=event,
        parent_run=parent_run,
        parent_step_id=parent_step_id,
        correlation_id=correlation_id or (event.correlation_id if event is not None else ""),
        started_by=started_by,
        started_via=started_via,
        priority=priority,
    )
    if started_by is None:
        # Whoever caused the trigger requested the run (approvals' four-eyes refuses them); a
        # child run has its parent's requester.
        run.started_by_id = _requester_id(event, parent_run)
    spec = _code_spec(wf, version)
    try:
        with transaction.atomic():
            _apply_limits(run, spec)
            delayed = delay_until is not None and run.status == RunStatus.PENDING
            if wf.paused_at is not None and run.status == RunStatus.PENDING:
                # Kept, not refused: it starts when the workflow resumes.
                transitions.prepare(run, "hold_paused", waiting_for="its workflow to resume")
            elif delayed and not run.queued:
                transitions.prepare(run, "delay", waiting_for=waiting_for)
            elif run.status == RunStatus.PENDING and not run.queued:
                run.dispatched_at = clock.now()
                if lease_to:
                    leases.hold(run, lease_to)
            if spec is not None and spec.timeout is not None:
                run.deadline_at = clock.now() + spec.timeout
            run.save()
            if run.deadline_at is not None:
                Timer.objects.create(run=run, kind=Timer.Kind.RUN_TIMEOUT, due_at=run.deadline_at)
            if run.status == RunStatus.WAITING:
                Timer.objects.create(run=run, kind=Timer.Kind.WAKE, due_at=delay_until)
            if run.dispatched_at is not None and not run.lease_owner:
                dispatch.advance(run.id, priority=run.priority)
            lifecycle.announce_run(run.id, run.status, workflow=wf.name, created=True)
            if run.status == RunStatus.CANCELLED:  # skipped by its concurrency limit
                run_finished(run=run)
    except IntegrityError:
        if event is None:
            raise
        return Run.objects.get(workflow=wf, trigger_event=event)
    return run


def run_start_again_later(*, run_id: Any, event: Any, due_at: datetime) -> bool:
    """A run held back by its trigger's debounce takes ``event`` as its trigger (and input)
    and waits until ``due_at``. False, changing nothing, when it no longer waits to start (its
    timer fired, or it is being cancelled): the caller starts another run."""
    with transaction.atomic():
        moved = Timer.objects.filter(
            run_id=run_id,
            kind=Timer.Kind.WAKE,
            fired_at__isnull=True,
            run__status=RunStatus.WAITING,
            run__cancel_requested=False,
        ).update(due_at=due_at)
        if not moved:
            return False
        Run.objects.filter(id=run_id).update(
            trigger_event_id=event.id,
            input=journal.to_json(event.data, "the run's input"),
            correlation_id=event.correlation_id,
            started_by_id=event.actor_id,
        )
    return True


def run_batch_hold(*, run_id: Any) -> bool:
    """Whether a run held back by its trigger's batch still waits to start, its timer locked
    until this transaction ends (a sweep firing it waits, then sees the events added to the
    batch meanwhile). False when it has started (or is being cancelled): the caller opens
    another batch."""
    return bool(
        Timer.objects.filter(
            run_id=run_id,
            kind=Timer.Kind.WAKE,
            fired_at__isnull=True,
            run__status=RunStatus.WAITING,
            run__cancel_requested=False,
        ).update(due_at=F("due_at"))
    )


def run_batch_release(*, run_id: Any, priority: int = 0) -> bool:
    """The batch is full: its run starts now rather than at its timeout."""
    with transaction.atomic():
        now = clock.now()
        if not Timer.objects.filter(
            run_id=run_id, kind=Timer.Kind.WAKE, fired_at__isnull=True
        ).update(due_at=now, fired_at=now):
            return False
        return run_wake(run_id=run_id, priority=priority)


def _requester_id(event: Any, parent_run: Run | None) -> Any:
    if event is not None:
        return event.actor_id
    return parent_run.started_by_id if parent_run is not None else None


def _code_spec(wf: Workflow, version: WorkflowVersion) -> registry.WorkflowSpec | None:
    """The code of a code workflow's version; None for declarative workflows and for a version
    newer than this process's code (a rolling deploy: an up-to-date worker runs it)."""
    if wf.kind != Workflow.Kind.CODE:
        return None
    known = registry.known_versions(wf.name)
    if known and version.number > known[-1]:
        return None
    return registry.get_workflow(wf.name, version.number)


def _workflow(name: str) -> Workflow:
    try:
        return Workflow.objects.get(name=name)
    except Workflow.DoesNotExist:
        known = ", ".join(Workflow.objects.values_list("name", flat=True)) or "none"
        raise UnknownWorkflow(f"no workflow named {name!r} (known: {known})") from None


def _apply_limits(run: Run, spec: registry.WorkflowSpec | None) -> None:
    """Apply the workflow's concurrency limit to a run about to be created."""
    if spec is None or spec.concurrency is None:
        return
    limit = spec.concurrency
    run.concurrency_key = _concurrency_key(limit, run.input)
    # Serialise starts of this workflow so two starts cannot both see a free slot.
    Workflow.objects.select_for_update().filter(pk=run.workflow_id).first()
    active = Run.objects.filter(
        workflow_id=run.workflow_id,
        concurrency_key=run.concurrency_key,
        status__in=ACTIVE_STATUSES,
        queued=False,
    )
    if active.count() < limit.limit:
        return
    if limit.on_limit == "queue":
        run.queued = True
        run.waiting_for = "a free slot (concurrency limit)"
    elif limit.on_limit == "skip":
        message = f"skipped: {limit.limit} run(s) already active for this key"
        transitions.prepare(run, "skip", error={"message": message})
    else:
        for previous in active:
            run_cancel(run=previous)


def _concurrency_key(limit: registry.Concurrency, data: dict[str, Any]) -> str:
    if limit.key is None:
        return ""
    value = limit.key(data) if callable(limit.key) else matching.lookup(data, limit.key)
    return "" if value is None or value is matching.MISSING else str(value)[:200]


# --- waking runs ----------------------------------------------------------------------------


def run_wake(*, run_id: Any, priority: int = 0) -> bool:
    """Something a run waits for happened: make it runnable. Returns True if it was waiting.
    ``priority``: the run's, for its message (a run a throttle or debounce held back).

    ``wakeups`` is bumped in every case, so a worker that is about to suspend this run sees
    the wake-up and replays instead of going to sleep on it.
    """
    with transaction.atomic():
        transitions.transition(run_id, "count_wakeup")
        return transitions.transition(run_id, "wake", priority=priority)


def wait_accepts(wait: Wait, event: Any, problems: list[str] | None = None) -> bool:
    if not matching.source_matches(wait.source, event.source):
        return False
    if not matching.data_matches(wait.match or {}, event.data):
        return False
    if not wait.expression:
        return True
    try:
        return matching.condition(wait.expression, {"event": event.as_trigger()})
    except matching.ExpressionError as exc:
        logger.warning("wait %s/%s: %s", wait.run_id, wait.step_id, exc)
        if problems is not None:
            problems.append(f"run {wait.run_id} step {wait.step_id} not resumed: condition: {exc}")
        return False


def wait_resolve(
    *, wait: Wait, event: Any, wake: bool = True, problems: list[str] | None = None
) -> bool:
    """Give ``event`` to the waiting step if it still waits and the event matches."""
    if not wait_accepts(wait, event, problems):
        return False
    if wait.mode:
        with transaction.atomic():
            decided = waitgroups.fill(wait, event)
            if decided and wake:
                run_wake(run_id=wait.run_id)
        return decided is not None
    with transaction.atomic():
        if not Wait.objects.filter(pk=wait.pk, status=Wait.Status.OPEN).update(
            status=Wait.Status.MATCHED, event_id=event.id, resolved_at=clock.now()
        ):
            return False
        journal.complete_waiting(wait.run_id, wait.step_id, event.as_trigger())
        if wake:
            run_wake(run_id=wait.run_id)
    return True


def waits_resolve_for_event(event: Any, *, problems: list[str] | None = None) -> int:
    """Resume the runs waiting for this event. Returns how many it resumed. ``problems``
    receives why a waiting step whose condition failed on this event was not resumed."""
    resumed = 0
    for wait in Wait.objects.filter(status=Wait.Status.OPEN, event_type=event.type):
        try:
            with transaction.atomic():  # one broken wait never blocks the others
                resumed += wait_resolve(wait=wait, event=event, problems=problems)
        except Exception:
            logger.exception("event %s could not resume %s/%s", event.id, wait.run_id, wait.step_id)
    return resumed


def step_complete(*, run_id: Any, step_id: str, output: Any) -> bool:
    """Record the outcome of a waiting step decided outside the run, and resume the run."""
    with transaction.atomic():
        if not journal.complete_waiting(run_id, step_id, output):
            return False
        run_wake(run_id=run_id)
    return True


def run_finished(*, run: Run) -> None:
    """Called in the transaction that ends a run: tell its parent, free its slot."""
    if run.parent_run_id and run.parent_step_id:
        _tell_parent(run)
    if run.concurrency_key or _has_limit(run):
        _start_queued(run)


def _tell_parent(run: Run) -> None:
    """Give the parent's waiting step the child's output, or fail it with the child's error.
    A child cancelled because its parent is being cancelled tells nothing: the parent ends
    cancelled whichever of the two a worker advances first, and its end closes the step."""
    parent_id, step_id, child_id = run.parent_run_id, run.parent_step_id, str(run.id)
    if run.status == RunStatus.SUCCEEDED:
        if journal.complete_waiting(parent_id, step_id, run.output, child_run_id=child_id):
            run_wake(run_id=parent_id)
        return
    if (
        run.status == RunStatus.CANCELLED
        and Run.objects.filter(id=parent_id, cancel_requested=True).exists()
    ):
        return
    error = {
        "type": "ChildFailed",
        "message": f"child run {run.id} {run.status}",
        "child_run_id": str(run.id),
        "child_error": run.error,
        "retryable": False,
    }
    if journal.fail_waiting(parent_id, step_id, error, child_run_id=child_id):
        run_wake(run_id=parent_id)


def run_finished_writes(run: Run) -> bool:
    """Whether ``run_finished`` has anything to write for this run (a parent to tell, a slot
    to free): the caller may skip the transaction when not."""
    return bool(run.parent_run_id and run.parent_step_id) or bool(
        run.concurrency_key or _has_limit(run)
    )


def _has_limit(run: Run) -> bool:
    try:
        spec = registry.get_workflow(run.workflow.name, run.version.number)
    except (UnknownWorkflow, WorkflowError):
        return False
    return spec.concurrency is not None


def _start_queued(run: Run) -> None:
    """Start queued runs of the same key while slots are free. Takes the same lock as starting
    a run, so a run queued concurrently with this release is never stranded."""
    spec_limit = _limit(run)
    Workflow.objects.select_for_update().filter(pk=run.workflow_id).first()
    same_key = Run.objects.filter(workflow_id=run.workflow_id, concurrency_key=run.concurrency_key)
    active = same_key.filter(status__in=ACTIVE_STATUSES, queued=False).count()
    waiting = same_key.filter(queued=True, status=RunStatus.PENDING).order_by("created_at")
    for nxt in waiting[: max(0, spec_limit - active)]:
        transitions.transition(nxt.id, "unqueue")


def _limit(run: Run) -> int:
    try:
        spec = registry.get_workflow(run.workflow.name, run.version.number)
    except (UnknownWorkflow, WorkflowError):
        return 1
    return spec.concurrency.limit if spec.concurrency else 1


# --- cancelling runs ------------------------------------------------------------------------


def run_cancel(*, run: Run) -> Run:
    """Ask a run to stop: its waits and approvals close now, its child runs are cancelled, and
    its completed steps are compensated. A running run stops before its next step."""
    with transaction.atomic():
        if not transitions.transition(run.id, "request_cancel"):
            raise WorkflowError(f"run {run.id} has already finished ({run.status})")
        Wait.objects.filter(run_id=run.id, status=Wait.Status.OPEN).update(
            status=Wait.Status.CANCELLED, resolved_at=clock.now()
        )
        ports.run_close_hooks_call(run.id)  # approvals: its pending approvals
        runs_cancel_children(run_id=run.id)
        # Without a worker (waiting, or queued) it is made runnable to compensate and end.
        if not transitions.transition(run.id, "wake_to_cancel", workflow=run.workflow.name):
            transitions.transition(run.id, "unqueue_to_cancel", workflow=run.workflow.name)
    run.refresh_from_db()
    return run


def runs_cancel_children(*, run_id: Any) -> None:
    """The run ends or is being cancelled: its children still active are cancelled (nothing
    will wait for them). Those already asked to cancel are left to finish doing so."""
    active = Run.objects.filter(parent_run_id=run_id, status__in=ACTIVE_STATUSES)
    for child in active.filter(cancel_requested=False):
        try:
            run_cancel(run=child)
        except WorkflowError:  # it finished meanwhile: nothing to cancel
            continue
