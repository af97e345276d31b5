"""Waits, timers and workers: events matched to waits in order and through the lookback, a
timer fired by a sweeper whose clock runs ahead, leases kept by healthy workers and branches of
dead ones run again, and an event for a workflow version this process does not know. Each
scenario used to leave a run stuck, wrong or crashed."""

from __future__ import annotations

import pytest

from automation import workflow
from automation.engine import registry
from automation.models import Run, StepRecord

pytestmark = pytest.mark.django_db


@workflow("review-two-waits")
def two_waits(ctx, event):
    first = ctx.wait_for_event("first", "review.pay", match={"k": event.data["k"]})
    second = ctx.wait_for_event("second", "review.pay", match={"k": event.data["k"]})
    return {"first": first["id"], "second": second["id"]}


@workflow("review-wait-one")
def wait_one(ctx, event):
    got = ctx.wait_for_event("reply", "review.busy", match={"k": event.data["k"]}, timeout="1m")
    return {"got": bool(got)}


def slow_but_healthy(run_id: str) -> str:
    import time

    from automation.engine import sweeps

    time.sleep(2.5)  # longer than the 1 s lease
    sweeps.runs_recover()  # another worker's sweep looks at the run meanwhile
    return "done"


@workflow("review-slow-healthy")
def slow_healthy(ctx, event):
    return ctx.step("slow", slow_but_healthy, ctx.run_id)


@workflow("review-nap")
def nap(ctx, event):
    ctx.sleep("nap", "10s")
    return {"woke": True}


@workflow("review-versioned", on="review.versioned", version=1)
def versioned_v1(ctx, event):
    return {"v": 1}


@pytest.fixture(autouse=True)
def _fresh():
    registry.sync_code_workflows(force=True)


def test_two_waits_for_the_same_type_get_two_events_in_order(workflow_harness):
    run = workflow_harness.start("review-two-waits", {"k": "z"})
    first = workflow_harness.emit("review.pay", {"k": "z"})
    assert workflow_harness.refresh(run).status == "waiting"
    second = workflow_harness.emit("review.pay", {"k": "z"})
    assert workflow_harness.result(run) == {"first": str(first.id), "second": str(second.id)}


def test_the_lookback_finds_the_reply_among_many_events_of_its_type(workflow_harness):
    from datetime import timedelta

    from django.utils import timezone

    from events.models import Event

    workflow_harness.emit("review.busy", {"k": "mine"})
    older = timezone.now() - timedelta(seconds=60)
    Event.objects.bulk_create(
        Event(
            type="review.busy",
            data={"k": f"other-{i}"},
            source="t",
            received_at=older,
            routed_at=older,
        )
        for i in range(1500)
    )
    run = workflow_harness.start("review-wait-one", {"k": "mine"})
    assert workflow_harness.result(run) == {"got": True}


@pytest.mark.django_db(transaction=True)
def test_a_step_longer_than_the_lease_keeps_its_lease_on_a_healthy_worker(
    workflow_harness, settings
):
    settings.AUTOMATION_LEASE_SECONDS = 1.0  # the keeper renews every third of a second
    run = workflow_harness.start("review-slow-healthy", {})
    run = workflow_harness.refresh(run)
    assert workflow_harness.result(run) == "done"
    assert run.recoveries == 0
    step = run.steps.get(step_id="slow")
    assert (step.attempt, step.attempts) == (1, [])


def test_a_branch_whose_worker_died_is_run_again(workflow_harness, clock):
    from datetime import timedelta

    from automation.engine import branches, executor
    from automation.engine.runs import run_start

    run = workflow_harness._committed(run_start, workflow="test-parallel", input={"seconds": 0})
    queue = workflow_harness.backend.queue
    workflow_harness._committed(executor.run_advance, queue.popleft()[1][0])
    _, second = list(queue)
    queue.clear()
    # A worker claims fan[0] (as _execute_branch does) and is killed -9 mid-branch.
    StepRecord.objects.filter(run=run, step_id="fan[0]").update(
        status="running", attempt=1, lease_expires_at=clock.now() + timedelta(seconds=60)
    )
    workflow_harness._committed(branches.execute_branch, *second[1])
    for _ in range(5):  # some minutes of sweeps
        clock.advance(timedelta(minutes=2))
        workflow_harness.tick()
    branch = StepRecord.objects.get(run=run, step_id="fan[0]")
    assert (branch.status, branch.attempt) == ("succeeded", 2)
    assert branch.attempts[0]["error"]["type"] == "WorkerLost"
    assert workflow_harness.refresh(run).status == "succeeded"


def test_a_timer_fired_by_a_sweeper_whose_clock_runs_ahead_still_wakes_the_run(
    workflow_harness, clock
):
    from datetime import timedelta

    from django.utils import timezone

    from automation.engine.runs import run_wake
    from automation.models import Timer

    run = workflow_harness.start("review-nap", {})
    timer = Timer.objects.get(run=run)
    clock.advance(timer.due_at - clock.now() - timedelta(seconds=2))  # this worker: 2 s early
    # A sweeper whose clock runs 3 s ahead finds the timer due and fires it.
    Timer.objects.filter(pk=timer.pk).update(fired_at=timezone.now())
    workflow_harness._committed(run_wake, run_id=run.id)
    workflow_harness.drain()
    assert workflow_harness.result(run) == {"woke": True}


def test_an_event_for_a_version_this_process_does_not_know_waits_for_a_worker_that_does(
    workflow_harness,
):
    from automation.models import Workflow, WorkflowVersion

    wf = Workflow.objects.get(name="review-versioned")
    # v2 was synced by a newer deploy that is still rolling out.
    WorkflowVersion.objects.create(workflow=wf, number=2, code_ref="x:y", checksum="z")
    workflow_harness.emit("review.versioned", {})
    run = Run.objects.get(workflow=wf)
    assert (run.version.number, run.status) == (2, "pending")
    assert "version 2" in run.waiting_for
