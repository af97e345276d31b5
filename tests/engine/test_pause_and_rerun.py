"""Pausing and resuming runs and workflows, and rerunning a run from a step, through the
time-skipping harness on the real database: steps count their real executions."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry

from automation.control import (
    NotAllowedNow,
    UnknownStep,
    rerun_plan,
    run_pause,
    workflow_pause,
    workflow_resume,
)
from automation.engine import clock, executor
from automation.engine.runs import run_start
from automation.models import Run, RunStatus, StepRecord, Timer, Workflow
from tests.engine_app.workflows import executions

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(users):
    return users["admin"]


def start(harness, key, **data):
    return harness.start("test-control", {"key": key, **data})


def test_a_paused_waiting_run_keeps_its_timer_and_runs_on_only_once_resumed(
    workflow_harness, admin
):
    run = start(workflow_harness, "k1")
    assert workflow_harness.refresh(run).status == RunStatus.WAITING
    due = Timer.objects.get(run=run, step_id="nap").due_at

    run = workflow_harness.pause(run, user=admin)
    assert run.status == RunStatus.PAUSED
    assert run.paused_by == admin
    assert Timer.objects.get(run=run, step_id="nap").due_at == due

    workflow_harness.advance_time("2h")  # the nap's timer fires while the run is paused
    assert workflow_harness.refresh(run).status == RunStatus.PAUSED
    assert executions("second:k1") == 0

    run = workflow_harness.resume(run, user=admin)  # the due timer takes effect right away
    run = workflow_harness.refresh(run)
    assert run.status == RunStatus.SUCCEEDED
    assert run.output == {"first": 1, "second": 1, "third": 1}
    assert [e.change_message for e in LogEntry.objects.filter(object_id=str(run.id))] == [
        "Resumed the run.",
        "Paused the run.",
    ]


def test_a_run_resumed_before_its_timer_is_due_waits_for_it_again(workflow_harness, admin):
    run = start(workflow_harness, "k2")
    workflow_harness.pause(run, user=admin)
    workflow_harness.resume(run, user=admin)
    assert workflow_harness.refresh(run).status == RunStatus.WAITING
    assert executions("second:k2") == 0
    workflow_harness.run_until_idle()
    assert workflow_harness.refresh(run).status == RunStatus.SUCCEEDED
    assert executions("second:k2") == 1


def test_a_running_run_asked_to_pause_stops_before_its_next_step(workflow_harness, admin):
    run = start(workflow_harness, "k3", nap="1s")

    def second_pauses_its_run(key, step):  # an operator pauses the run during "second"
        assert Run.objects.get(id=run.id).status == RunStatus.RUNNING
        assert run_pause(run=run, user=admin).pause_requested
        return 20

    workflow_harness.fake("second", returns=second_pauses_its_run)
    workflow_harness.advance_time("2s")
    run = workflow_harness.refresh(run)
    assert run.status == RunStatus.PAUSED
    assert not run.pause_requested
    assert StepRecord.objects.get(run=run, step_id="second").output == 20  # it finished
    assert workflow_harness.calls.get("third") is None  # the next step did not start

    run = workflow_harness.resume(run, user=admin)
    assert workflow_harness.refresh(run).output == {"first": 1, "second": 20, "third": 1}


def test_a_pause_withdrawn_before_the_run_stops_lets_it_carry_on(workflow_harness, admin):
    run = start(workflow_harness, "k3b", nap="1s")

    def pause_then_resume(key, step):
        run_pause(run=run, user=admin)
        workflow_harness.resume(run, user=admin, drain=False)
        return 2

    workflow_harness.fake("second", returns=pause_then_resume)
    workflow_harness.advance_time("2s")
    assert workflow_harness.refresh(run).status == RunStatus.SUCCEEDED


def test_pausing_what_cannot_be_paused_is_refused_and_changes_nothing(workflow_harness, admin):
    run = start(workflow_harness, "k4", nap="1s")
    workflow_harness.run_until_idle()
    assert workflow_harness.refresh(run).status == RunStatus.SUCCEEDED
    with pytest.raises(NotAllowedNow, match="has finished"):
        run_pause(run=run, user=admin)
    other = start(workflow_harness, "k5")
    workflow_harness.pause(other, user=admin)
    with pytest.raises(NotAllowedNow, match="already paused"):
        run_pause(run=other, user=admin)
    assert not LogEntry.objects.filter(object_id=str(run.id)).exists()


def test_a_paused_run_can_be_cancelled(workflow_harness, admin):
    run = start(workflow_harness, "k6")
    workflow_harness.pause(run, user=admin)
    run = workflow_harness.refresh(workflow_harness.cancel(run))
    assert run.status == RunStatus.CANCELLED
    assert not Timer.objects.filter(run=run, fired_at__isnull=True).exists()


def test_a_paused_workflow_keeps_its_runs_and_starts_them_on_resume(workflow_harness, admin):
    workflow_harness.start("test-control", {"key": "warm", "nap": "1s"})
    wf = Workflow.objects.get(name="test-control")
    workflow_pause(workflow=wf, user=admin)
    held = [start(workflow_harness, f"held{i}", nap="1s") for i in range(2)]
    workflow_harness.run_until_idle()
    for run in held:
        run = workflow_harness.refresh(run)
        assert run.status == RunStatus.PAUSED
        assert run.held_by_workflow
    assert executions("first:held0") == 0

    wf, resumed = workflow_harness._committed(workflow_resume, workflow=wf, user=admin)
    assert resumed == 2
    workflow_harness.run_until_idle()
    assert [workflow_harness.refresh(run).status for run in held] == [RunStatus.SUCCEEDED] * 2
    assert executions("first:held0") == 1
    with pytest.raises(NotAllowedNow, match="not paused"):
        workflow_resume(workflow=wf, user=admin)


def test_pausing_a_workflow_leaves_its_runs_in_flight_unless_asked(workflow_harness, admin):
    running = start(workflow_harness, "flight")
    also = start(workflow_harness, "flight2")
    wf = Workflow.objects.get(name="test-control")
    workflow_pause(workflow=wf, user=admin)
    assert workflow_harness.refresh(running).status == RunStatus.WAITING
    workflow_resume(workflow=wf, user=admin)
    wf, paused = workflow_pause(workflow=wf, user=admin, runs=True)
    assert paused == 2
    assert workflow_harness.refresh(also).status == RunStatus.PAUSED
    manual = start(workflow_harness, "manual")  # held by the workflow's pause too
    workflow_harness._committed(workflow_resume, workflow=wf, user=admin)
    workflow_harness.run_until_idle()
    statuses = {workflow_harness.refresh(r).status for r in (running, also, manual)}
    assert statuses == {RunStatus.SUCCEEDED}


def test_a_run_paused_by_hand_stays_paused_when_its_workflow_resumes(workflow_harness, admin):
    run = start(workflow_harness, "own")
    workflow_harness.pause(run, user=admin)
    wf = Workflow.objects.get(name="test-control")
    workflow_pause(workflow=wf, user=admin)
    _, resumed = workflow_resume(workflow=wf, user=admin)
    assert resumed == 0
    assert workflow_harness.refresh(run).status == RunStatus.PAUSED


# --- rerun from a step ----------------------------------------------------------------------


def finished(harness, key):
    run = start(harness, key, nap="1s")
    harness.run_until_idle()
    run = harness.refresh(run)
    assert run.status == RunStatus.SUCCEEDED
    return run


def test_the_rerun_preview_lists_the_steps_that_run_again(workflow_harness):
    run = finished(workflow_harness, "p1")
    plan = rerun_plan(run=run, from_step="second")
    assert [r.step_id for r in plan.kept] == ["first", "nap"]
    assert [r.step_id for r in plan.repeated] == ["second", "third"]
    with pytest.raises(UnknownStep, match="choose one of: first, nap, second, third"):
        rerun_plan(run=run, from_step="fourth")


def test_a_rerun_repeats_the_chosen_step_and_later_ones_and_keeps_both_in_the_ledger(
    workflow_harness, admin
):
    run = finished(workflow_harness, "r1")
    run = workflow_harness.rerun(run, "second", user=admin)
    workflow_harness.run_until_idle()
    run = workflow_harness.refresh(run)
    assert run.status == RunStatus.SUCCEEDED
    assert run.execution == 2
    assert run.output == {"first": 1, "second": 2, "third": 2}  # first was not repeated
    assert executions("first:r1") == 1
    current = list(StepRecord.objects.filter(run=run).timeline().values_list("step_id", flat=True))
    assert current == ["first", "nap", "second", "third"]
    ledger = StepRecord.ledger.filter(run=run).exclude(superseded_at=None)
    assert sorted(ledger.values_list("step_id", "superseded_in")) == [
        ("second", 2),
        ("third", 2),
    ]
    assert LogEntry.objects.get(object_id=str(run.id)).change_message == (
        "Reran the run from step 'second' (execution 2)."
    )


def test_a_rerun_from_a_sleep_sleeps_again(workflow_harness, admin):
    run = finished(workflow_harness, "r2")
    workflow_harness.rerun(run, "nap", user=admin)
    assert workflow_harness.refresh(run).status == RunStatus.WAITING
    workflow_harness.run_until_idle()
    assert workflow_harness.refresh(run).output == {"first": 1, "second": 2, "third": 2}


def test_only_finished_or_paused_runs_are_rerun(workflow_harness, admin):
    run = start(workflow_harness, "r3")
    with pytest.raises(NotAllowedNow, match="pause it first"):
        rerun_plan(run=workflow_harness.refresh(run), from_step="first")
    workflow_harness.pause(run, user=admin)
    workflow_harness.rerun(run, "first", user=admin)
    workflow_harness.run_until_idle()
    run = workflow_harness.refresh(run)
    assert run.status == RunStatus.SUCCEEDED
    assert run.output["first"] == 2


def test_a_redelivered_message_after_a_rerun_runs_nothing_twice(workflow_harness, admin):
    run = finished(workflow_harness, "r4")
    workflow_harness.rerun(run, "third", user=admin, drain=False)
    workflow_harness.deliver_next(times=2)
    workflow_harness.run_until_idle()
    assert executions("third:r4") == 2
    assert executor.run_advance(run.id) == "not pending"


def test_a_run_started_while_its_workflow_is_paused_is_paused_from_its_creation(
    workflow_harness, admin
):
    wf = Workflow.objects.get_or_create(name="test-control")[0]
    start(workflow_harness, "warm2", nap="1s")
    workflow_pause(workflow=Workflow.objects.get(name="test-control"), user=admin)
    run = run_start(workflow=wf.name, input={"key": "x"})
    assert Run.objects.get(id=run.id).status == RunStatus.PAUSED
    assert Run.objects.get(id=run.id).paused_at <= clock.now()


def test_rerunning_a_paused_parent_cancels_the_child_of_a_superseded_step(workflow_harness, admin):
    from tests.engine_app import state_workflows  # noqa: F401  (registers sm-child)

    parent = workflow_harness.start("sm-child", {"key": "p"})
    old_child = Run.objects.get(parent_run=parent)
    assert old_child.status == RunStatus.WAITING
    workflow_harness.pause(parent, user=admin)
    workflow_harness.rerun(parent, "kid", user=admin)
    assert workflow_harness.refresh(old_child).status == RunStatus.CANCELLED
    new_child = Run.objects.filter(parent_run=parent).exclude(id=old_child.id).get()
    assert new_child.status == RunStatus.WAITING
    assert workflow_harness.refresh(parent).status == RunStatus.WAITING
    workflow_harness.emit("sm.reply", {"key": "p-kid"})
    assert workflow_harness.refresh(parent).status == RunStatus.SUCCEEDED
