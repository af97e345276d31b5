"""Cancelling parents that wait on children, on real Celery worker processes: the two
"advance" messages of each pair are taken by two pool processes in whatever order the broker
gives them, and every pair still ends cancelled, each side compensated once."""

from __future__ import annotations

import pytest
from django.db import transaction

from automation.commands import workflow_definition_save
from automation.engine.runs import run_cancel, run_start
from automation.models import Run, StepRecord
from tests.processes import celery_worker, wait_for
from tests.production.test_engine_workers import env, finished, ready  # noqa: F401

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

CHILD = {
    "name": "workers-slow-child",
    "trigger": {},
    "steps": [
        {
            "id": "charge",
            "action": "log",
            "input": {"message": "charge"},
            "compensate": {"action": "log", "input": {"message": "refund"}},
        },
        {"id": "settle", "sleep": "1d"},
    ],
}
PARENT = {
    "name": "workers-waiting-parent",
    "trigger": {},
    "steps": [
        {
            "id": "reserve",
            "action": "log",
            "input": {"message": "reserve"},
            "compensate": {"action": "log", "input": {"message": "release"}},
        },
        {"id": "kid", "child": {"workflow": "workers-slow-child"}},
    ],
}
PAIRS = 4


def test_cancelled_parents_and_their_children_all_end_cancelled_on_real_workers(env, tmp_path):  # noqa: F811
    workflow_definition_save(definition=CHILD)
    workflow_definition_save(definition=PARENT)
    with celery_worker(env, tmp_path / "w.log", concurrency=2, beat=True) as worker:
        ready(worker, tmp_path / "w.log")
        with transaction.atomic():
            parents = [run_start(workflow="workers-waiting-parent", input={}) for _ in range(PAIRS)]
        children = Run.objects.filter(parent_run__in=parents, status="waiting")
        wait_for(lambda: children.count() == PAIRS, timeout=30, message="children never waited")
        for parent in parents:
            with transaction.atomic():
                run_cancel(run=parent)
        for parent in parents:
            finished(parent)
            finished(Run.objects.get(parent_run=parent))
    runs = Run.objects.filter(workflow__name__startswith="workers-")
    assert sorted(runs.values_list("status", flat=True)) == ["cancelled"] * (2 * PAIRS)
    undone = StepRecord.objects.filter(run__in=runs, kind="compensation")
    assert sorted(undone.values_list("step_id", "status", "attempt")) == sorted(
        [("compensate:reserve", "succeeded", 1)] * PAIRS
        + [("compensate:charge", "succeeded", 1)] * PAIRS
    )
    assert not StepRecord.objects.filter(run__in=runs, status__in=["running", "waiting"]).exists()


QUICK_CHILD = {
    "name": "workers-quick-child",
    "trigger": {},
    "steps": [
        {
            "id": "charge",
            "action": "log",
            "input": {"message": "charge"},
            "compensate": {"action": "log", "input": {"message": "refund"}},
        },
        {"id": "note", "action": "log", "input": {"message": "charged"}},
    ],
}
PATIENT_PARENT = {
    "name": "workers-patient-parent",
    "trigger": {},
    "steps": [
        {
            "id": "reserve",
            "action": "log",
            "input": {"message": "reserve"},
            "compensate": {"action": "log", "input": {"message": "release"}},
        },
        {"id": "kid", "child": {"workflow": "workers-quick-child"}},
        {"id": "settle", "sleep": "1d"},
    ],
}
RACES = 30


def test_cancelling_parents_while_their_children_finish_never_deadlocks(env, tmp_path):  # noqa: F811
    """Each cancel is sent as soon as the child exists (30 times: 8 were not enough to meet
    the deadlock on the old code, 30 met it), so the operator's transaction (parent
    row, then child row) meets the child's end (child row, parent step, parent row) on real
    workers. Rows are taken parent first on both sides: nothing deadlocks, every parent ends
    cancelled and each side's completed step is compensated once, whichever finished first."""
    workflow_definition_save(definition=QUICK_CHILD)
    workflow_definition_save(definition=PATIENT_PARENT)
    log = tmp_path / "w.log"
    with celery_worker(env, log, concurrency=2, beat=True) as worker:
        ready(worker, log)
        parents = []
        for _ in range(RACES):
            with transaction.atomic():
                parent = run_start(workflow="workers-patient-parent", input={})
            parents.append(parent)
            children = Run.objects.filter(parent_run=parent)
            wait_for(children.exists, timeout=30, message="the child never started")
            with transaction.atomic():
                run_cancel(run=parent)
        for parent in parents:
            finished(parent)
            finished(Run.objects.get(parent_run=parent))
    assert "deadlock" not in log.read_text().lower()
    parents_ = Run.objects.filter(workflow__name="workers-patient-parent")
    children_ = Run.objects.filter(workflow__name="workers-quick-child")
    assert set(parents_.values_list("status", flat=True)) == {"cancelled"}
    assert set(children_.values_list("status", flat=True)) <= {"cancelled", "succeeded"}
    for parent in parents_:
        assert undone(parent, "reserve") == ["succeeded"]
    for child in children_:  # a child cancelled before it charged has nothing to undo
        charged = child.steps.filter(step_id="charge", status="succeeded").exists()
        assert undone(child, "charge") == (["succeeded"] if charged else [])


def undone(run: Run, step_id: str) -> list[str]:
    compensation = run.steps.filter(step_id=f"compensate:{step_id}")
    return list(compensation.values_list("status", flat=True))
