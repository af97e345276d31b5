"""Counterexamples the model-based test (test_run_state_machine.py) found, kept as ordinary
tests: each is the shortest sequence of rules that broke a promise about run states."""

from __future__ import annotations

import pytest

from automation.models import StepRecord
from tests.engine_app import state_workflows as wf

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _executions():
    wf.EXECUTIONS.clear()


def test_a_parallel_run_cancelled_before_its_branches_ran_closes_every_step(workflow_harness):
    """Found on main: start(sm-parallel, drain=False), deliver_next, cancel, drain left the
    parallel step "fan" waiting in a cancelled run."""
    run = workflow_harness.start("sm-parallel", {"key": "k1"}, drain=False)
    workflow_harness.deliver_next()  # the run starts its branches and waits for them
    assert [what for what, _ in workflow_harness.queued] == ["branch", "branch"]
    workflow_harness.cancel(run)
    assert workflow_harness.refresh(run).status == "cancelled"
    still_open = StepRecord.objects.filter(run=run, status__in=["running", "waiting"])
    assert list(still_open.values_list("step_id", "status")) == []
    assert wf.EXECUTIONS == []  # the branches never ran


def test_a_cancelled_parent_cancels_its_waiting_child_and_closes_its_wait(workflow_harness):
    """Found on main: start(sm-child), cancel: the child ended cancelled with its "reply" step
    still waiting, and the parent failed ("child run ... cancelled") instead of ending
    cancelled; its "before" step was compensated once."""
    parent = workflow_harness.start("sm-child", {"key": "k1"})
    workflow_harness.cancel(parent)
    child = parent.children.get()
    assert (workflow_harness.refresh(parent).status, child.status) == ("cancelled", "cancelled")
    still_open = StepRecord.objects.filter(
        run__in=[parent, child], status__in=["running", "waiting"]
    )
    assert list(still_open.values_list("step_id", "status")) == []
    assert wf.EXECUTIONS == [("k1", "before"), ("k1", "undo:before")]
