"""The harness plays the broker and the workers: a message delivered twice, a worker that dies
holding a run's lease. The engine's answers are the product's promises: nothing runs twice and
nothing is lost."""

from __future__ import annotations

import pytest

from automation.models import Run
from tests.engine_app import state_workflows as wf

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _executions():
    wf.EXECUTIONS.clear()


def test_a_message_delivered_twice_runs_each_step_once(workflow_harness):
    run = workflow_harness.start("sm-saga", {"key": "twice"}, drain=False)
    assert workflow_harness.queued == [("advance", (str(run.id),))]
    workflow_harness.deliver_next(times=2)
    workflow_harness.drain()
    assert workflow_harness.result(run) == "shipped"
    assert wf.EXECUTIONS == [("twice", "charge"), ("twice", "reserve"), ("twice", "ship")]


def test_a_run_whose_worker_died_is_taken_back_when_its_lease_expires(workflow_harness):
    run = workflow_harness.start("sm-saga", {"key": "dead"}, drain=False)
    workflow_harness.worker_dies()
    assert workflow_harness.refresh(run).status == "running"
    assert workflow_harness.queued == []
    workflow_harness.expire_leases()
    run = Run.objects.get(id=run.id)
    assert (run.status, run.recoveries) == ("succeeded", 1)
    assert [what for _, what in wf.EXECUTIONS] == ["charge", "reserve", "ship"]


def test_cancel_and_retry_from_the_harness(workflow_harness):
    workflow_harness.fake("ship", raises=ValueError("the warehouse is closed"))
    failed = workflow_harness.start("sm-saga", {"key": "again"})
    assert workflow_harness.refresh(failed).status == "failed"
    workflow_harness.fakes.pop("ship")
    workflow_harness.retry(failed)
    assert workflow_harness.result(failed) == "shipped"
    waiting = workflow_harness.start("sm-sequence", {"key": "stop"})
    assert workflow_harness.cancel(waiting).status in ("pending", "cancelled")
    assert workflow_harness.refresh(waiting).status == "cancelled"
