"""A parent retried after it ended while its child was still active starts a new child under
the same step; the old child, which ends later (cancelled), reports to nobody: only the child
a step started can complete or fail that step."""

from __future__ import annotations

from datetime import timedelta

import pytest

from automation import workflow
from automation.commands import run_retry
from automation.engine import clock, sweeps
from automation.models import Run

pytestmark = pytest.mark.django_db


def charge() -> dict:
    return {"charged": 10}


def refund(output: dict) -> None:
    pass


@workflow("retry-slow-child")
def slow_child(ctx, event):
    ctx.step("charge", charge, compensate=refund)
    ctx.sleep("settle", "1d")
    return "settled"


@workflow("retry-impatient-parent", timeout="1h")
def impatient_parent(ctx, event):
    return ctx.child("kid", "retry-slow-child")


def test_the_old_child_of_a_retried_parent_does_not_fail_the_new_step(
    workflow_harness, django_capture_on_commit_callbacks
):
    harness = workflow_harness
    parent = harness.start("retry-impatient-parent")
    old_child = Run.objects.get(parent_run=parent)
    # Past the parent's deadline: it ends, and its child is asked to cancel.
    clock.advance(timedelta(minutes=61))
    with django_capture_on_commit_callbacks(execute=True):
        sweeps.sweep()
    assert harness.deliver(parent)
    assert harness.refresh(parent).status == "failed"
    assert harness.refresh(old_child).cancel_requested

    with django_capture_on_commit_callbacks(execute=True):
        run_retry(run=parent)
    assert harness.deliver(parent)
    new_child = Run.objects.filter(parent_run=parent).exclude(id=old_child.id).get()
    assert harness.deliver(new_child)
    assert harness.deliver(old_child)  # the old child ends cancelled only now
    harness.drain()

    assert harness.refresh(old_child).status == "cancelled"
    assert harness.refresh(parent).status == "waiting"
    kid = parent.steps.get(step_id="kid")
    assert (kid.status, kid.input["child_run_id"]) == ("waiting", str(new_child.id))
    assert harness.refresh(new_child).status == "waiting"
