"""The lifecycle signals that the live UI, metrics and logs listen to."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import transaction

from automation import lifecycle, workflow
from automation.models import StepRecord

pytestmark = pytest.mark.django_db

CALLS = {}


@workflow("lifecycle-slow")
def lifecycle_slow(ctx, event):
    return ctx.step("slow", lambda: CALLS["slow"]())


@pytest.fixture
def heard():
    """Every run and step change announced while the test runs, in order."""
    changes: list[tuple] = []

    def on_run(sender, *, run_id, workflow, status, created, **_):
        changes.append(("run", status, created))

    def on_step(sender, *, run_id, step_id, status, retrying, **_):
        changes.append(("step", step_id, status, retrying))

    lifecycle.run_changed.connect(on_run)
    lifecycle.step_changed.connect(on_step)
    yield changes
    lifecycle.run_changed.disconnect(on_run)
    lifecycle.step_changed.disconnect(on_step)


def test_a_run_announces_each_status_and_each_step_in_order(workflow_harness, heard):
    run = workflow_harness.start("test-noop", {})
    workflow_harness.run_until_idle()
    assert workflow_harness.refresh(run).status == "succeeded"
    assert heard[:2] == [("run", "pending", True), ("run", "running", False)]
    assert heard[-1] == ("run", "succeeded", False)
    steps = [c for c in heard if c[0] == "step"]
    # Quick steps are journaled once, when they end (a long one also as running: below).
    assert [s[1:3] for s in steps] == [
        ("one", "succeeded"),
        ("two", "succeeded"),
        ("three", "succeeded"),
    ]


def test_a_long_step_is_journaled_and_announced_as_running_while_it_runs(
    workflow_harness, heard, transactional_db
):
    from automation.engine.attempts import RUNNING_VISIBLE_AFTER

    seen = {}

    def slow() -> str:
        time.sleep(RUNNING_VISIBLE_AFTER + 0.5)
        seen["journal"] = list(StepRecord.objects.values_list("step_id", "status", "attempt"))
        return "done"

    CALLS["slow"] = slow
    run = workflow_harness.start("lifecycle-slow", {})
    assert workflow_harness.refresh(run).status == "succeeded"
    assert seen["journal"] == [("slow", "running", 1)]
    assert [c[1:3] for c in heard if c[0] == "step"] == [
        ("slow", "running"),
        ("slow", "succeeded"),
    ]
    record = StepRecord.objects.get(run=run)
    assert (record.status, record.output, record.attempt) == ("succeeded", "done", 1)


def test_a_scheduled_retry_is_announced_and_the_failure_at_the_end(workflow_harness, heard):
    run = workflow_harness.start("test-retry", {})
    assert heard[2:] == [
        ("step", "flaky", "waiting", True),
        ("run", "waiting", False),
    ]
    for _ in range(3):
        workflow_harness.advance_time(timedelta(hours=1))
    assert workflow_harness.refresh(run).status == "failed"
    assert heard[-3:] == [
        ("step", "flaky", "running", False),
        ("step", "flaky", "failed", False),
        ("run", "failed", False),
    ]


def test_nothing_is_announced_for_a_change_that_was_rolled_back(workflow_harness, heard):
    def change_then_fail():
        with transaction.atomic():
            lifecycle.announce_run("0", "running")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        workflow_harness._committed(change_then_fail)
    assert heard == []


def test_a_receiver_that_raises_does_not_disturb_the_run(workflow_harness, caplog):
    def broken(sender, **_):
        raise ValueError("receiver bug")

    lifecycle.step_changed.connect(broken)
    try:
        run = workflow_harness.start("test-noop", {})
        workflow_harness.run_until_idle()
    finally:
        lifecycle.step_changed.disconnect(broken)
    assert workflow_harness.refresh(run).status == "succeeded"
    assert "lifecycle receiver" in caplog.text
