"""Runs that end before their last step: cancelled while waiting or while a step runs, past
their deadline, or refused a child by its concurrency limit. Each scenario used to leave a run
stuck, wrong or crashed."""

from __future__ import annotations

import pytest

from automation import workflow
from automation.engine import registry
from automation.engine.runs import run_cancel
from automation.models import Run

pytestmark = pytest.mark.django_db

STATE: dict = {"undo": [], "undo_calls": 0, "shipped": 0}


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


@pytest.fixture(autouse=True)
def _fresh():
    registry.sync_code_workflows(force=True)
    STATE.update(undo=[], undo_calls=0, shipped=0)


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
