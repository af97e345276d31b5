"""Waiting for any or all of several events under one deadline: which arrived, the lookback of
events stored before the wait, the timeout, and one event filling one entry only."""

from __future__ import annotations

import pytest

from automation import workflow
from automation.engine import registry
from automation.engine.errors import WorkflowError
from automation.models import StepRecord, Wait

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    registry.sync_code_workflows(force=True)


def test_any_completes_on_the_first_event_and_says_which(workflow_harness):
    run = workflow_harness.start("test-wait-any", {"key": "a"})
    assert workflow_harness.refresh(run).status == "waiting"
    workflow_harness.emit("test.voided", {"key": "other"})  # another key: no match
    assert workflow_harness.refresh(run).status == "waiting"
    voided = workflow_harness.emit("test.voided", {"key": "a"})
    run = workflow_harness.refresh(run)
    assert run.status == "succeeded"
    assert run.output["timed_out"] is False
    assert run.output["arrived"] == [1]
    assert run.output["events"][0] is None
    assert run.output["events"][1]["id"] == str(voided.id)
    assert run.output["events"][1]["data"] == {"key": "a"}
    statuses = dict(Wait.objects.filter(run=run).values_list("part", "status"))
    assert statuses == {0: "cancelled", 1: "matched"}


def test_all_waits_for_every_event_then_gives_them_in_order(workflow_harness):
    run = workflow_harness.start("test-wait-all", {"key": "b"})
    voided = workflow_harness.emit("test.voided", {"key": "b"})
    assert workflow_harness.refresh(run).status == "waiting"
    paid = workflow_harness.emit("test.paid", {"key": "b"})
    run = workflow_harness.refresh(run)
    assert run.status == "succeeded"
    assert run.output["arrived"] == [0, 1]
    assert [e["id"] for e in run.output["events"]] == [str(paid.id), str(voided.id)]


def test_events_stored_before_the_wait_count_as_for_a_single_wait(workflow_harness):
    paid = workflow_harness.emit("test.paid", {"key": "early"})
    voided = workflow_harness.emit("test.voided", {"key": "early"})
    run = workflow_harness.start("test-wait-all", {"key": "early"})
    run = workflow_harness.refresh(run)
    assert run.status == "succeeded"
    assert [e["id"] for e in run.output["events"]] == [str(paid.id), str(voided.id)]


def test_any_takes_the_oldest_event_stored_before_the_wait(workflow_harness):
    voided = workflow_harness.emit("test.voided", {"key": "first"})
    workflow_harness.emit("test.paid", {"key": "first"})  # later, though its entry comes first
    run = workflow_harness.refresh(workflow_harness.start("test-wait-any", {"key": "first"}))
    assert run.output["arrived"] == [1]
    assert run.output["events"][1]["id"] == str(voided.id)


def test_timeout_ends_the_wait_with_what_arrived(workflow_harness):
    run = workflow_harness.start("test-wait-all", {"key": "late", "timeout": "10m"})
    workflow_harness.emit("test.paid", {"key": "late"})
    workflow_harness.advance_time("11m")
    run = workflow_harness.refresh(run)
    assert run.status == "succeeded"
    assert run.output["timed_out"] is True
    assert run.output["arrived"] == [0]
    assert run.output["events"][1] is None
    workflow_harness.emit("test.voided", {"key": "late"})  # too late: changes nothing
    assert workflow_harness.refresh(run).output["arrived"] == [0]


def test_any_times_out_falsy(workflow_harness):
    run = workflow_harness.start("test-wait-any", {"key": "never", "timeout": "5m"})
    workflow_harness.advance_time("6m")
    run = workflow_harness.refresh(run)
    assert run.output == {"timed_out": True, "arrived": [], "events": [None, None]}
    assert not Wait.objects.filter(run=run, status="open").exists()


@workflow("test-wait-two-same")
def two_same(ctx, event):
    got = ctx.wait_for_events("pair", all=[{"event": "test.tick"}, {"event": "test.tick"}])
    return [e["data"]["n"] for e in got["events"]]


def test_one_event_fills_one_entry(workflow_harness):
    registry.sync_code_workflows(force=True)
    run = workflow_harness.start("test-wait-two-same")
    workflow_harness.emit("test.tick", {"n": 1})
    assert workflow_harness.refresh(run).status == "waiting"
    workflow_harness.emit("test.tick", {"n": 2})
    run = workflow_harness.refresh(run)
    assert run.status == "succeeded"
    assert run.output == [1, 2]


@workflow("test-wait-bad")
def bad_wait(ctx, event):
    return ctx.wait_for_events("bad", any=[{"type": "x"}])


def test_a_malformed_entry_fails_the_run_naming_it(workflow_harness):
    registry.sync_code_workflows(force=True)
    run = workflow_harness.refresh(workflow_harness.start("test-wait-bad"))
    assert run.status == "failed"
    assert "any[0] must be a dict with an 'event' type" in run.error["message"]
    assert not StepRecord.objects.filter(run=run, step_id="bad").exists()


def test_any_and_all_together_are_refused():
    from automation.engine.context import Context

    with pytest.raises(WorkflowError, match="give any="):
        Context.wait_for_events(None, "x", any=[], all=[])  # type: ignore[arg-type]
