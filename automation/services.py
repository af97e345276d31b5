"""Writes of the automation domain: starting, waking, cancelling and retrying runs.

Each function is one transaction and is named <thing>_<verb>. The engine (automation/engine/)
executes runs; these services are what the rest of the system calls: events routing, approvals,
the admin, the API and management commands.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from automation import lifecycle
from automation.definitions import validation
from automation.engine import clock, dispatch, leases, matching, registry, steps
from automation.engine.errors import UnknownWorkflow, WorkflowError
from automation.models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    Heartbeat,
    Run,
    RunOrigin,
    RunStatus,
    StepRecord,
    StepStatus,
    Timer,
    Wait,
    Workflow,
    WorkflowVersion,
)

logger = logging.getLogger(__name__)

BACKGROUND = "background"


def heartbeat_record(*, name: str = BACKGROUND) -> Heartbeat:
    """Record that this process has just run a background job."""
    heartbeat, _ = Heartbeat.objects.update_or_create(
        name=name,
        defaults={"seen_at": timezone.now(), "worker": f"{socket.gethostname()}:{os.getpid()}"},
    )
    return heartbeat


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
) -> Run:
    """Start a run of the workflow's latest version; it is dispatched after commit.

    With ``event``, the run's input is the event's data and the event starts the workflow at
    most once (a second call returns the first run). ``lease_to``: a lease owner
    (``leases.new_owner()``); the run is created already held by it, and no "advance" message
    is sent: the caller advances it at once (if the caller dies first, the recovery sweep takes
    the run over when the lease expires). Not for a run its concurrency limit holds back.
    ``started_via``: the RunOrigin the run page shows when no event, parent or user started it.
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
    run = Run(
        workflow=wf,
        version=version,
        input=steps.to_json(data, "the run's input"),
        trigger_event=event,
        parent_run=parent_run,
        parent_step_id=parent_step_id,
        correlation_id=correlation_id or (event.correlation_id if event is not None else ""),
        started_by=started_by,
        started_via=started_via,
    )
    if started_by is None:
        # Whoever caused the trigger requested the run (approvals' four-eyes refuses them); a
        # child run has its parent's requester.
        run.started_by_id = _requester_id(event, parent_run)
    spec = _code_spec(wf, version)
    try:
        with transaction.atomic():
            _apply_limits(run, spec)
            if run.status == RunStatus.PENDING and not run.queued:
                run.dispatched_at = clock.now()
                if lease_to:
                    leases.hold(run, lease_to)
            if spec is not None and spec.timeout is not None:
                run.deadline_at = clock.now() + spec.timeout
            run.save()
            if run.deadline_at is not None:
                Timer.objects.create(run=run, kind=Timer.Kind.RUN_TIMEOUT, due_at=run.deadline_at)
            if run.dispatched_at is not None and not run.lease_owner:
                dispatch.advance(run.id)
            lifecycle.announce_run(run.id, run.status, workflow=wf.name, created=True)
            if run.status == RunStatus.CANCELLED:  # skipped by its concurrency limit
                run_finished(run=run)
    except IntegrityError:
        if event is None:
            raise
        return Run.objects.get(workflow=wf, trigger_event=event)
    return run


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
        run.status = RunStatus.CANCELLED
        run.finished_at = clock.now()
        run.error = {"message": f"skipped: {limit.limit} run(s) already active for this key"}
    else:
        for previous in active:
            run_cancel(run=previous)


def _concurrency_key(limit: registry.Concurrency, data: dict[str, Any]) -> str:
    if limit.key is None:
        return ""
    value = limit.key(data) if callable(limit.key) else matching.lookup(data, limit.key)
    return "" if value is None or value is matching.MISSING else str(value)[:200]


def _dispatch(run_id: Any) -> None:
    Run.objects.filter(id=run_id).update(dispatched_at=clock.now())
    dispatch.advance(run_id)


def runs_start_for_event(
    event: Any, *, lease_first_to: str = "", problems: list[str] | None = None
) -> list[Run]:
    """Start every active workflow whose trigger matches the event (at most once each).

    ``lease_first_to``: the first run is created held by this lease owner, for the caller to
    advance at once (one broker round trip less between an event and its first step).
    ``problems`` receives why a matching workflow was not started (its filter failed)."""
    registry.sync_code_workflows()
    latest: dict[int, WorkflowVersion] = {}
    versions = (
        WorkflowVersion.objects.filter(workflow__active=True)
        .select_related("workflow")
        .order_by("workflow_id", "-number")
    )
    for version in versions:
        latest.setdefault(version.workflow_id, version)
    runs = []
    for version in latest.values():
        pattern, condition, source = _trigger(version)
        if not matching.type_matches(pattern, event.type):
            continue
        if not matching.source_matches(source, event.source):
            continue
        if not _filter_passes(version, condition, event, problems):
            continue
        # One workflow that cannot start never blocks the others: run_start writes only inside
        # its own atomic block (a savepoint here), so a failure leaves this transaction usable.
        try:
            run = run_start(
                workflow=version.workflow,
                version=version,
                event=event,
                lease_to="" if runs else lease_first_to,
            )
        except Exception:
            logger.exception("event %s could not start workflow %s", event.id, version.workflow)
            continue
        runs.append(run)
    return runs


def _trigger(version: WorkflowVersion) -> tuple[str, str, str]:
    """(event pattern, CEL filter, source pattern). For code workflows the code is the source
    of truth."""
    if version.workflow.kind == Workflow.Kind.CODE:
        name = version.workflow.name
        known = registry.known_versions(name)
        if not known:
            logger.warning("workflow %s is not in this process's code; events skip it", name)
            return "", "", ""
        if version.number not in known:
            # A rolling deploy: the database knows a version this process does not. Route with
            # the newest trigger we know; the run is executed by a worker that knows it.
            logger.warning(
                "workflow %s v%d is not in this process's code (it has v%s); routing with v%d",
                name,
                version.number,
                "/v".join(map(str, known)),
                known[-1],
            )
        spec = registry.get_workflow(name, version.number if version.number in known else None)
        return spec.on, spec.filter, spec.source
    source = (version.definition or {}).get("trigger", {}).get("source", "")
    return version.trigger_event, version.trigger_filter, source


def _filter_passes(
    version: WorkflowVersion, condition: str, event: Any, problems: list[str] | None
) -> bool:
    if not condition:
        return True
    try:
        matching.compile_expression(condition)  # a refused filter needs none of the event's data
        return matching.condition(condition, {"trigger": event.as_trigger()})
    except matching.ExpressionError as exc:
        logger.warning(
            "workflow %s v%d: filter could not be evaluated for event %s (%s); not started",
            version.workflow.name,
            version.number,
            event.id,
            exc,
        )
        if problems is not None:
            problems.append(
                f"workflow {version.workflow.name} v{version.number} not started: "
                f"trigger.filter: {exc}"
            )
        return False


# --- waking runs ----------------------------------------------------------------------------


def run_wake(*, run_id: Any) -> bool:
    """Something a run waits for happened: make it runnable. Returns True if it was waiting.

    ``wakeups`` is bumped in every case, so a worker that is about to suspend this run sees
    the wake-up and replays instead of going to sleep on it.
    """
    with transaction.atomic():
        Run.objects.filter(id=run_id, status__in=ACTIVE_STATUSES).update(wakeups=F("wakeups") + 1)
        woke = Run.objects.filter(id=run_id, status=RunStatus.WAITING).update(
            status=RunStatus.PENDING, waiting_for="", dispatched_at=clock.now()
        )
        if woke:
            lifecycle.announce_run(run_id, RunStatus.PENDING)
            dispatch.advance(run_id)
    return bool(woke)


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
    with transaction.atomic():
        if not Wait.objects.filter(pk=wait.pk, status=Wait.Status.OPEN).update(
            status=Wait.Status.MATCHED, event_id=event.id, resolved_at=clock.now()
        ):
            return False
        steps.complete_waiting(wait.run_id, wait.step_id, event.as_trigger())
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
        if not steps.complete_waiting(run_id, step_id, output):
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
        if steps.complete_waiting(parent_id, step_id, run.output, child_run_id=child_id):
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
    if steps.fail_waiting(parent_id, step_id, error, child_run_id=child_id):
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
        if Run.objects.filter(id=nxt.id, queued=True).update(queued=False, waiting_for=""):
            _dispatch(nxt.id)


def _limit(run: Run) -> int:
    try:
        spec = registry.get_workflow(run.workflow.name, run.version.number)
    except (UnknownWorkflow, WorkflowError):
        return 1
    return spec.concurrency.limit if spec.concurrency else 1


# --- operator actions -----------------------------------------------------------------------


def run_cancel(*, run: Run) -> Run:
    """Ask a run to stop: its waits and approvals close now, its child runs are cancelled, and
    its completed steps are compensated. A running run stops before its next step."""
    from approvals.services import approvals_cancel_for_run

    with transaction.atomic():
        updated = Run.objects.filter(id=run.id, status__in=ACTIVE_STATUSES).update(
            cancel_requested=True, wakeups=F("wakeups") + 1
        )
        if not updated:
            raise WorkflowError(f"run {run.id} has already finished ({run.status})")
        Wait.objects.filter(run_id=run.id, status=Wait.Status.OPEN).update(
            status=Wait.Status.CANCELLED, resolved_at=clock.now()
        )
        approvals_cancel_for_run(run_id=run.id)
        runs_cancel_children(run_id=run.id)
        if Run.objects.filter(id=run.id, status=RunStatus.WAITING).update(
            status=RunStatus.PENDING
        ) or Run.objects.filter(id=run.id, status=RunStatus.PENDING, queued=True).update(
            queued=False
        ):
            lifecycle.announce_run(run.id, RunStatus.PENDING, workflow=run.workflow.name)
            _dispatch(run.id)
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


def run_retry(*, run: Run) -> Run:
    """Resume a failed run from the step that failed it, with a fresh attempt budget. Earlier
    steps are not repeated, except those whose effect a compensation undid: they run again.
    Failures the workflow itself caught stay as they were."""
    with transaction.atomic():
        locked = (
            Run.objects.select_for_update().select_related("workflow", "version").get(id=run.id)
        )
        if locked.status != RunStatus.FAILED:
            raise WorkflowError(f"only failed runs can be retried; run {run.id} is {locked.status}")
        journal = StepRecord.objects.filter(run=run)
        undone = journal.filter(
            kind=StepRecord.Kind.COMPENSATION, status=StepStatus.SUCCEEDED
        ).values_list("step_id", flat=True)
        journal.filter(step_id__in=[s.removeprefix("compensate:") for s in undone]).delete()
        journal.filter(kind__in=[StepRecord.Kind.COMPENSATION, StepRecord.Kind.ON_FAILURE]).delete()
        failed_step = (locked.error or {}).get("step")
        record = journal.filter(step_id=failed_step, status=StepStatus.FAILED).first()
        if record is not None:
            _reset_for_retry(run, record)
        _reopen_closed(run)
        _rearm_deadline(locked)
        Run.objects.filter(id=run.id).update(
            status=RunStatus.PENDING,
            error=None,
            output=None,
            finished_at=None,
            recoveries=0,
            cancel_requested=False,
            waiting_for="",
        )
        lifecycle.announce_run(run.id, RunStatus.PENDING, workflow=locked.workflow.name)
        _dispatch(run.id)
    run.refresh_from_db()
    return run


def _reset_for_retry(run: Run, record: StepRecord) -> None:
    if record.kind == StepRecord.Kind.CHILD:
        record.delete()  # a new child run is started
        return
    marker = {
        "attempt": record.attempt,
        "retried_at": clock.now().isoformat(),
        "error": {"type": "Retried", "message": "retried by an operator"},
    }
    StepRecord.objects.filter(pk=record.pk).update(
        status=StepStatus.WAITING,
        next_attempt_at=None,
        attempt=0,
        attempts=[*record.attempts, marker],
    )
    if record.kind == StepRecord.Kind.PARALLEL:
        branches = StepRecord.objects.filter(
            run=run, kind=StepRecord.Kind.BRANCH, step_id__startswith=f"{record.step_id}["
        ).exclude(status=StepStatus.SUCCEEDED)
        for branch in branches:
            branch.status, branch.next_attempt_at, branch.attempt = StepStatus.WAITING, None, 0
            branch.save(update_fields=["status", "next_attempt_at", "attempt"])
            dispatch.branch(run.id, branch.step_id)


_BEGUN_ANEW = (StepRecord.Kind.WAIT_EVENT, StepRecord.Kind.APPROVAL, StepRecord.Kind.CHILD)


def _reopen_closed(run: Run) -> None:
    """Steps the run's end closed while they were open (a run timeout during a wait, a dead
    letter during a step) carry on when it is retried: a plain step runs again by itself; a
    sleep waits again until the time it was due; a wait, approval or child is begun anew (its
    closed wait makes way; its cancelled approval stays, the record of who was asked and
    when); a parallel step sends its unfinished branches again."""
    closed = StepRecord.objects.filter(run=run, status=StepStatus.CANCELLED)
    for sleep in closed.filter(kind=StepRecord.Kind.SLEEP):
        _sleep_resume(run, sleep)
    anew = list(closed.filter(kind__in=_BEGUN_ANEW).values_list("step_id", flat=True))
    Wait.objects.filter(run=run, step_id__in=anew).delete()
    closed.filter(step_id__in=anew).delete()
    for record in closed.filter(kind=StepRecord.Kind.PARALLEL):
        _reset_for_retry(run, record)


def _sleep_resume(run: Run, record: StepRecord) -> None:
    due = datetime.fromisoformat(record.input["until"])
    StepRecord.objects.filter(pk=record.pk).update(
        status=StepStatus.WAITING, finished_at=None, next_attempt_at=due
    )
    Timer.objects.create(run=run, step_id=record.step_id, due_at=due)


def _rearm_deadline(run: Run) -> None:
    """A retried run gets its whole timeout again."""
    try:
        spec = registry.get_workflow(run.workflow.name, run.version.number)
    except (UnknownWorkflow, WorkflowError):
        return
    if spec.timeout is not None:
        deadline = clock.now() + spec.timeout
        Run.objects.filter(id=run.id).update(deadline_at=deadline)
        Timer.objects.create(run=run, kind=Timer.Kind.RUN_TIMEOUT, due_at=deadline)


def runs_retry_failed(*, runs: Any) -> int:
    """Retry every failed run in ``runs`` (the dead-letter queue). Returns how many."""
    count = 0
    for run in runs.filter(status=RunStatus.FAILED):
        try:
            run_retry(run=run)
        except WorkflowError as exc:  # e.g. retried meanwhile by someone else
            logger.warning("run %s not retried: %s", run.id, exc)
            continue
        count += 1
    return count


# --- Retention ------------------------------------------------------------------------------


def runs_purge(
    *, older_than: timedelta, batch_size: int = 1000, max_batches: int | None = None
) -> int:
    """Delete finished runs (with their journal, timers, waits and approvals) that finished
    more than ``older_than`` ago, ``batch_size`` runs per transaction. Returns how many."""
    expired = runs_expired(older_than=older_than)
    return delete_in_batches(expired, batch_size=batch_size, max_batches=max_batches)


def runs_expired(*, older_than: timedelta) -> Any:
    """Finished runs that finished more than ``older_than`` ago."""
    cutoff = timezone.now() - older_than
    return Run.objects.filter(status__in=FINISHED_STATUSES, finished_at__lt=cutoff)


def delete_in_batches(queryset: Any, *, batch_size: int, max_batches: int | None = None) -> int:
    """Delete the rows of ``queryset`` a batch at a time (short transactions, bounded locks);
    rows that stop matching meanwhile are left alone. Returns how many were deleted."""
    model = queryset.model
    deleted = batches = 0
    while max_batches is None or batches < max_batches:
        ids = list(queryset.order_by().values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        _, per_model = queryset.filter(pk__in=ids).delete()  # one transaction per batch
        deleted += per_model.get(model._meta.label, 0)
        batches += 1
    logger.info("purged %d %s rows", deleted, model._meta.verbose_name)
    return deleted


def retention_apply(*, max_batches: int = 100) -> dict[str, int]:
    """Apply EVENTS_RETENTION_DAYS and RUNS_RETENTION_DAYS (0: keep forever); what the
    periodic ``automation.purge`` task does. At most ``max_batches`` batches of each per call,
    so a large first purge is spread over several runs of the task."""
    from events.retention import events_purge

    purged = {"runs": 0, "events": 0}
    batch = settings.RETENTION_BATCH_SIZE
    if settings.RUNS_RETENTION_DAYS:
        purged["runs"] = runs_purge(
            older_than=timedelta(days=settings.RUNS_RETENTION_DAYS),
            batch_size=batch,
            max_batches=max_batches,
        )
    if settings.EVENTS_RETENTION_DAYS:
        purged["events"] = events_purge(
            older_than=timedelta(days=settings.EVENTS_RETENTION_DAYS),
            batch_size=batch,
            max_batches=max_batches,
        )
    return purged


# --- declarative workflows ------------------------------------------------------------------


def definition_checksum(definition: dict[str, Any]) -> str:
    """The same definition (whatever its key order or file format) has the same checksum."""
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def workflow_definition_save(
    *,
    definition: Any,
    user: Any = None,
    name: str | None = None,
    active: bool | None = None,
) -> tuple[Workflow, WorkflowVersion, bool]:
    """Validate and save a declarative definition. A definition that differs from the latest
    version makes a new version (runs in flight stay on theirs); an unchanged one makes none.
    ``name``: the workflow being edited (a definition cannot rename it). Returns (workflow,
    latest version, whether a version was created). Raises InvalidDefinition."""
    validation.check(definition)
    if name is not None and definition["name"] != name:
        raise validation.InvalidDefinition(
            [validation.DefinitionError("name", f"this workflow is {name!r}; names cannot change")]
        )
    checksum = definition_checksum(definition)
    trigger = definition.get("trigger", {})
    with transaction.atomic():
        wf, _ = Workflow.objects.select_for_update().get_or_create(
            name=definition["name"], defaults={"kind": Workflow.Kind.DECLARATIVE}
        )
        if wf.kind != Workflow.Kind.DECLARATIVE:
            raise validation.InvalidDefinition(
                [validation.DefinitionError("name", f"{wf.name!r} is a code workflow")]
            )
        latest = wf.latest_version()
        created = latest is None or latest.checksum != checksum
        if created:
            latest = WorkflowVersion.objects.create(
                workflow=wf,
                number=(latest.number + 1) if latest else 1,
                definition=definition,
                checksum=checksum,
                trigger_event=trigger.get("event", ""),
                trigger_filter=trigger.get("filter", ""),
                created_by=user if getattr(user, "is_authenticated", False) else None,
            )
        wf.description = definition.get("description", "")
        if active is not None:
            wf.active = active
        wf.save(update_fields=["description", "active", "updated_at"])
    return wf, latest, created
