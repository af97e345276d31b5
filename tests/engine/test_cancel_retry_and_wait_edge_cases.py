"""Regression tests for the findings of an engine review: each scenario used to leave a run
stuck, wrong or crashed."""

from __future__ import annotations

import pytest

from automation import NonRetryableError, workflow
from automation.engine import registry
from automation.models import Run, StepRecord
from automation.services import run_cancel, run_retry

pytestmark = pytest.mark.django_db

STATE: dict = {"undo": [], "undo_calls": 0, "a_fail": True, "b_calls": 0, "shipped": 0}


def book() -> dict:
    return {"booking": 1}


def undo_book(output) -> None:
    STATE["undo"].append(output)


def undo_flaky(output) -> None:
    STATE["undo_calls"] += 1
    if STATE["undo_calls"] == 1:
        raise ValueError("refund API down")


def ship() -> int:
    STATE["shipped"] += 1
    return 1


def always_fails() -> None:
    raise ValueError("boom")


def branch_a() -> str:
    if STATE["a_fail"]:
        raise NonRetryableError("a is broken")
    return "a"


def branch_b() -> str:
    STATE["b_calls"] += 1
    if STATE["b_calls"] == 1:
        raise ValueError("b flaky once")
    return "b"


def cancel_myself(run_id: str) -> str:
    run_cancel(run=Run.objects.get(id=run_id))  # an operator cancels while the step runs
    return "cancel requested"


@workflow("review-timeout-saga", timeout="1h")
def timeout_saga(ctx, event):
    ctx.step("book", book, compensate=undo_book)
    ctx.sleep("long", "2h")


@workflow("review-child", concurrency={"limit": 1, "on_limit": "skip"})
def child_wf(ctx, event):
    ctx.sleep("hold", "1h")
    return {"ok": True}


@workflow("review-parent")
def parent_wf(ctx, event):
    return ctx.child("kid", "review-child", {})


@workflow("review-parallel")
def parallel_wf(ctx, event):
    return ctx.parallel("fan", [branch_a, branch_b], retry={"max_attempts": 3, "initial": "10s"})


@workflow("review-cancel-wait")
def cancel_wait(ctx, event):
    ctx.step("charge", book, compensate=undo_flaky)
    got = ctx.wait_for_event("reply", "review.reply", match={"k": event.data["k"]})
    if event.data.get("more"):
        ctx.step("after", book)
    return {"got": bool(got)}


@workflow("review-cancel-running")
def cancel_running(ctx, event):
    ctx.step("operator-cancels", cancel_myself, ctx.run_id)
    ctx.step("ship", ship)
    return {"done": True}


@workflow("review-two-waits")
def two_waits(ctx, event):
    first = ctx.wait_for_event("first", "review.pay", match={"k": event.data["k"]})
    second = ctx.wait_for_event("second", "review.pay", match={"k": event.data["k"]})
    return {"first": first["id"], "second": second["id"]}


@workflow("review-retry-once", retry={"max_attempts": 3, "initial": "1s"})
def retry_once(ctx, event):
    return ctx.step("flaky", always_fails)


@pytest.fixture(autouse=True)
def _fresh():
    registry.sync_code_workflows(force=True)
    STATE.update(undo=[], undo_calls=0, a_fail=True, b_calls=0, shipped=0)


def test_run_timeout_compensates_completed_steps(workflow_harness):
    run = workflow_harness.start("review-timeout-saga", {})
    workflow_harness.run_until_idle()
    run = workflow_harness.refresh(run)
    assert run.status == "failed"
    assert "deadline" in run.error["message"]
    assert STATE["undo"] == [{"booking": 1}]


def test_a_child_skipped_by_its_concurrency_limit_fails_the_parents_step(workflow_harness):
    workflow_harness.start("review-child", {})  # takes the only slot
    parent = workflow_harness.refresh(workflow_harness.start("review-parent", {}))
    assert Run.objects.get(parent_run=parent).status == "cancelled"
    assert parent.status == "failed"
    assert parent.error["type"] == "ChildFailed"


def test_retry_after_a_parallel_step_failed_fast_reruns_the_unfinished_branches(workflow_harness):
    run = workflow_harness.start("review-parallel", {})
    workflow_harness.drain()
    assert workflow_harness.refresh(run).status == "failed"
    STATE["a_fail"] = False  # the cause is fixed; retry from the failed step
    workflow_harness._committed(run_retry, run=run)
    workflow_harness.run_until_idle()
    assert workflow_harness.result(run) == ["a", "b"]


def test_cancel_while_waiting_wins_over_an_event_arriving_during_compensation(workflow_harness):
    run = workflow_harness.start("review-cancel-wait", {"k": "x"})
    workflow_harness._committed(run_cancel, run=run)
    workflow_harness.drain()  # compensation fails once: a retry timer
    workflow_harness.emit("review.reply", {"k": "x"})  # the wait was closed by the cancel
    workflow_harness.run_until_idle()
    assert workflow_harness.refresh(run).status == "cancelled"
    assert STATE["undo_calls"] == 2


def test_cancel_while_waiting_then_an_event_does_not_crash_the_unwind(workflow_harness):
    run = workflow_harness.start("review-cancel-wait", {"k": "y", "more": True})
    workflow_harness._committed(run_cancel, run=run)
    workflow_harness.drain()
    workflow_harness.emit("review.reply", {"k": "y"})
    workflow_harness.run_until_idle()
    assert workflow_harness.refresh(run).status == "cancelled"


def test_cancel_while_running_stops_before_the_next_step(workflow_harness):
    run = workflow_harness.refresh(workflow_harness.start("review-cancel-running", {}))
    assert run.status == "cancelled"
    assert STATE["shipped"] == 0
    # The step during which the cancel came ran: it is journaled (and would be compensated).
    assert run.steps.get(step_id="operator-cancels").status == "succeeded"
    assert not run.steps.filter(step_id="ship").exists()


def test_two_waits_for_the_same_type_get_two_events_in_order(workflow_harness):
    run = workflow_harness.start("review-two-waits", {"k": "z"})
    first = workflow_harness.emit("review.pay", {"k": "z"})
    assert workflow_harness.refresh(run).status == "waiting"
    second = workflow_harness.emit("review.pay", {"k": "z"})
    assert workflow_harness.result(run) == {"first": str(first.id), "second": str(second.id)}


def test_retry_from_the_failed_step_gets_the_full_attempt_budget(workflow_harness):
    run = workflow_harness.start("review-retry-once", {})
    workflow_harness.run_until_idle()
    assert workflow_harness.calls["flaky"] == 3
    workflow_harness._committed(run_retry, run=run)
    workflow_harness.run_until_idle()
    assert workflow_harness.refresh(run).status == "failed"
    assert workflow_harness.calls["flaky"] == 6


@workflow("review-wait-one")
def wait_one(ctx, event):
    got = ctx.wait_for_event("reply", "review.busy", match={"k": event.data["k"]}, timeout="1m")
    return {"got": bool(got)}


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


def slow_but_healthy(run_id: str) -> str:
    import time

    from automation.engine import sweeps

    time.sleep(2.5)  # longer than the 1 s lease
    sweeps.runs_recover()  # another worker's sweep looks at the run meanwhile
    return "done"


@workflow("review-slow-healthy")
def slow_healthy(ctx, event):
    return ctx.step("slow", slow_but_healthy, ctx.run_id)


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
    from automation.services import run_start

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


FLAKY = {"broken": True}


def optional_fn() -> str:
    if FLAKY["broken"]:
        raise NonRetryableError("optional service down")
    return "ok"


def last_fn() -> str:
    if FLAKY["broken"]:
        raise NonRetryableError("last broken")
    return "done"


@workflow("review-caught")
def caught(ctx, event):
    from automation import StepFailed

    try:
        ctx.step("optional", optional_fn)
    except StepFailed:
        ctx.step("fallback", book)  # the workflow handled this failure itself
    return ctx.step("last", last_fn)


def test_retry_leaves_failures_the_workflow_handled_alone(workflow_harness):
    FLAKY["broken"] = True
    run = workflow_harness.refresh(workflow_harness.start("review-caught", {}))
    assert run.error["step"] == "last"
    FLAKY["broken"] = False  # the cause of "last" is fixed
    workflow_harness._committed(run_retry, run=run)
    workflow_harness.run_until_idle()
    assert workflow_harness.result(run) == "done"
    assert run.steps.get(step_id="optional").status == "failed"


def raises_key_error() -> None:
    raise KeyError("no such customer")


@workflow("review-parallel-nonretryable")
def parallel_nonretryable(ctx, event):
    return ctx.parallel(
        "fan", [raises_key_error], retry={"max_attempts": 3, "non_retryable": [KeyError]}
    )


def test_parallel_branches_honour_non_retryable_classes(workflow_harness):
    run = workflow_harness.start("review-parallel-nonretryable", {})
    workflow_harness.run_until_idle()
    branch = StepRecord.objects.get(run=workflow_harness.refresh(run), step_id="fan[0]")
    assert branch.attempt == 1
    assert run.status == "failed"


@workflow("review-nap")
def nap(ctx, event):
    ctx.sleep("nap", "10s")
    return {"woke": True}


def test_a_timer_fired_by_a_sweeper_whose_clock_runs_ahead_still_wakes_the_run(
    workflow_harness, clock
):
    from datetime import timedelta

    from django.utils import timezone

    from automation.models import Timer
    from automation.services import run_wake

    run = workflow_harness.start("review-nap", {})
    timer = Timer.objects.get(run=run)
    clock.advance(timer.due_at - clock.now() - timedelta(seconds=2))  # this worker: 2 s early
    # A sweeper whose clock runs 3 s ahead finds the timer due and fires it.
    Timer.objects.filter(pk=timer.pk).update(fired_at=timezone.now())
    workflow_harness._committed(run_wake, run_id=run.id)
    workflow_harness.drain()
    assert workflow_harness.result(run) == {"woke": True}


@workflow("review-versioned", on="review.versioned", version=1)
def versioned_v1(ctx, event):
    return {"v": 1}


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
