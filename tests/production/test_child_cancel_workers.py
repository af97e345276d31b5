"""Cancelling parents that wait on children, on real Celery worker processes: the two
"advance" messages of each pair are taken by two pool processes in whatever order the broker
gives them, and every pair still ends cancelled, each side compensated once."""

from __future__ import annotations

import pytest
from django.db import transaction

from automation.models import Run, StepRecord
from automation.services import run_cancel, run_start, workflow_definition_save
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
