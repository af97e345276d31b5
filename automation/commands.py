"""Operator commands: retrying failed runs, signalling runs, saving declarative workflow
definitions, closing circuits.

Cancelling a run is in the engine (automation.engine.runs.run_cancel): the engine cancels runs
itself too (children of a run that ends, runs a concurrency limit replaces).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.db import transaction

from automation.definitions import validation
from automation.engine import circuits, clock, dispatch, registry, signalling, transitions
from automation.engine.errors import UnknownWorkflow, WorkflowError
from automation.lib.errors import DomainError
from automation.models import (
    Circuit,
    Run,
    RunStatus,
    Signal,
    StepRecord,
    StepStatus,
    Timer,
    Wait,
    Workflow,
    WorkflowVersion,
)

logger = logging.getLogger(__name__)


# --- retrying runs --------------------------------------------------------------------------


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
        transitions.transition(run.id, "retry", workflow=locked.workflow.name)
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


_BEGUN_ANEW = (
    StepRecord.Kind.WAIT_EVENT,
    StepRecord.Kind.WAIT_SIGNAL,
    StepRecord.Kind.APPROVAL,
    StepRecord.Kind.CHILD,
)


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


# --- circuit breakers -----------------------------------------------------------------------


class CircuitNotFound(DomainError):
    code = "not_found"
    status = 404


def circuit_close(*, key: str, user: Any) -> Circuit:
    """Close the circuit ``key`` now (an operator knows the service is back): the next call
    goes through. Written to the admin's history of the circuit, with who closed it."""
    with transaction.atomic():
        if not circuits.close(key):
            raise CircuitNotFound(f"no circuit {key!r}; GET /api/circuits/ lists the circuits")
        circuit = Circuit.objects.get(key=key)
        LogEntry.objects.log_actions(
            user_id=user.pk,
            queryset=[circuit],
            action_flag=CHANGE,
            change_message="Closed the circuit now.",
            single_object=True,
        )
    logger.info("circuit %s closed by %s", key, user.get_username())
    return circuit


def workflow_activate(*, workflow: Workflow, active: bool, user: Any) -> bool:
    """Let ``workflow`` start new runs (``active``) or stop it from starting any; runs in
    flight go on either way. Written to the admin's history of the workflow, with who did it.
    Returns whether anything changed (it may already be so)."""
    with transaction.atomic():
        changed = (
            Workflow.objects.filter(pk=workflow.pk)
            .exclude(active=active)
            .update(active=active, updated_at=clock.now())
        )
        if changed:
            LogEntry.objects.log_actions(
                user_id=user.pk,
                queryset=[workflow],
                action_flag=CHANGE,
                change_message="Activated." if active else "Deactivated.",
                single_object=True,
            )
    workflow.active = active
    if changed:
        logger.info(
            "workflow %s %s by %s",
            workflow.name,
            "activated" if active else "deactivated",
            user.get_username(),
        )
    return bool(changed)


# --- signals --------------------------------------------------------------------------------


def run_signal(*, run_id: Any, name: Any, data: Any, user: Any) -> Signal:
    """Send the signal ``name`` with ``data`` to a run as ``user`` (API, run page, admin):
    stored, delivered to the step waiting for it if one waits, and written to the admin's
    history of the run with who sent it. Raises SignalRefused (400, 404, 409), storing
    nothing, for a bad name or data, an unknown run or one that has ended."""
    signal = signalling.signal_send(run_id=run_id, name=name, data=data, user=user)
    LogEntry.objects.log_actions(
        user_id=user.pk,
        queryset=[Run.objects.get(id=run_id)],
        action_flag=CHANGE,
        change_message=f"Sent the signal {signal.name!r} ({signal.id}).",
        single_object=True,
    )
    logger.info("signal %s sent to run %s by %s", signal.name, run_id, user.get_username())
    return signal
