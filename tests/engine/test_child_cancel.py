"""Cancelling a parent that waits on a child always ends both cancelled, each side's completed
steps compensated exactly once, whichever of the two "advance" messages a worker takes first."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from automation import workflow
from automation.engine.runs import run_cancel
from automation.models import Run

pytestmark = pytest.mark.django_db


def reserve() -> dict:
    return {"reserved": True}


def charge() -> dict:
    return {"charged": 10}


def release(output: dict) -> None:
    pass


def refund(output: dict) -> None:
    pass


@workflow("cancel-slow-child")
def slow_child(ctx, event):
    ctx.step("charge", charge, compensate=refund)
    ctx.sleep("settle", "1d")
    return "settled"


@workflow("cancel-waiting-parent")
def waiting_parent(ctx, event):
    ctx.step("reserve", reserve, compensate=release)
    return ctx.child("kid", "cancel-slow-child")


def cancel_while_child_waits(harness, on_commit):
    parent = harness.start("cancel-waiting-parent")
    child = Run.objects.get(parent_run=parent)
    assert harness.refresh(parent).status == "waiting"
    assert harness.refresh(child).status == "waiting"
    with on_commit(execute=True):  # as the commit of the request that cancels would
        run_cancel(run=parent)
    return parent, child


def assert_both_cancelled_and_compensated_once(harness, parent, child):
    parent, child = harness.refresh(parent), harness.refresh(child)
    assert (parent.status, child.status) == ("cancelled", "cancelled")
    assert parent.error == {"message": "cancelled"}
    assert harness.calls["compensate:reserve"] == 1
    assert harness.calls["compensate:charge"] == 1
    assert parent.steps.get(step_id="kid").status == "cancelled"


def test_cancelling_a_parent_ends_both_cancelled_when_the_child_is_advanced_first(
    workflow_harness, django_capture_on_commit_callbacks
):
    parent, child = cancel_while_child_waits(workflow_harness, django_capture_on_commit_callbacks)
    assert workflow_harness.deliver(child)
    workflow_harness.drain()
    assert_both_cancelled_and_compensated_once(workflow_harness, parent, child)


def test_cancelling_a_parent_ends_both_cancelled_when_the_parent_is_advanced_first(
    workflow_harness, django_capture_on_commit_callbacks
):
    parent, child = cancel_while_child_waits(workflow_harness, django_capture_on_commit_callbacks)
    assert workflow_harness.deliver(parent)
    workflow_harness.drain()
    assert_both_cancelled_and_compensated_once(workflow_harness, parent, child)


def test_a_child_that_ends_locks_its_parent_before_itself(workflow_harness):
    """A parent ending (or cancelled) updates itself, then its child; a child ending updates
    its parent's step and wakes it. Both must take the rows parent first, or a parent and a
    child ending at once deadlock on PostgreSQL."""
    if not connection.features.has_select_for_update:
        pytest.skip("this database takes no row locks")
    parent = workflow_harness.start("cancel-waiting-parent")
    child = Run.objects.get(parent_run=parent)
    with CaptureQueriesContext(connection) as captured:
        workflow_harness.advance_time("1d")  # the child's sleep is over: it succeeds
    assert workflow_harness.refresh(child).status == "succeeded"
    queries = [query["sql"] for query in captured]
    parent_locked = first(queries, "FOR UPDATE", parent.id.hex)
    child_ended = first(
        queries, 'UPDATE "automation_run" SET "status" = \'succeeded\'', child.id.hex
    )
    assert parent_locked is not None, "the child never locked its parent"
    assert parent_locked < child_ended


def first(queries: list[str], *parts: str) -> int | None:
    return next((i for i, sql in enumerate(queries) if all(part in sql for part in parts)), None)


# The parent's cancel lands after the child recorded its last step and before the child ends:
# the workflow body's last lines stand for that moment (as an operator's click would).
@workflow("cancel-late-child")
def late_child(ctx, event):
    ctx.step("charge", charge, compensate=refund)
    parent = Run.objects.get(id=ctx.run.parent_run_id)
    if parent.status == "waiting":
        run_cancel(run=parent)
    return "charged"


@workflow("cancel-late-parent")
def late_parent(ctx, event):
    ctx.step("reserve", reserve, compensate=release)
    return ctx.child("kid", "cancel-late-child")


def test_a_child_asked_to_cancel_after_its_last_step_is_undone_not_left_succeeded(
    workflow_harness,
):
    """The child used to succeed anyway: its parent had closed the step waiting for it, so
    nothing ever refunded the charge. Now the child compensates and ends cancelled."""
    parent = workflow_harness.start("cancel-late-parent")
    workflow_harness.drain()
    child = Run.objects.get(parent_run=parent)
    parent, child = workflow_harness.refresh(parent), workflow_harness.refresh(child)
    assert (parent.status, child.status) == ("cancelled", "cancelled")
    assert workflow_harness.calls["compensate:reserve"] == 1
    assert workflow_harness.calls["compensate:charge"] == 1
