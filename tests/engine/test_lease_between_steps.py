"""A worker checks that it still holds the run when it journals a step (the check is part of
the step's write, not a statement of its own)."""

from __future__ import annotations

import pytest

from automation import workflow
from automation.models import Run, StepRecord

pytestmark = pytest.mark.django_db

CALLS = {"after": 0}


def _hand_over(run_id: str) -> None:
    # What the recovery sweep does when it gives the run to another worker.
    Run.objects.filter(id=run_id).update(lease_owner="another-worker")


def _after() -> None:
    CALLS["after"] += 1


@workflow("lease-between-steps")
def lease_between_steps(ctx, event):
    ctx.step("hand-over", _hand_over, ctx.run_id)
    ctx.step("after", _after)


def test_a_worker_that_lost_the_run_between_steps_runs_and_journals_nothing_more(
    workflow_harness,
):
    CALLS["after"] = 0
    run = workflow_harness.start("lease-between-steps", {})
    # The step during which the run changed hands is not journaled by the worker that lost it:
    # the new holder runs it again (at least once) and records it (exactly once).
    assert not StepRecord.objects.filter(run=run).exists()
    assert CALLS["after"] == 0
    assert Run.objects.get(id=run.id).lease_owner == "another-worker"
