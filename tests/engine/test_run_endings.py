"""However a run ends (succeeded, failed, cancelled, timed out, dead-lettered), nothing of it
stays open: no step "waiting", no pending approval, no open wait, no timer that would wake it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import Group, Permission

from approvals.models import Approval
from automation import workflow
from automation.commands import run_retry
from automation.engine import leases, sweeps
from automation.engine.runs import run_cancel, run_start
from automation.models import Run, StepRecord, Timer, Wait

pytestmark = pytest.mark.django_db


@workflow("endings-sleeper")
def sleeper(ctx, event):
    ctx.sleep("nap", "2h")


@workflow("endings-approval-with-deadline", timeout="1h")
def approval_with_deadline(ctx, event):
    return ctx.approval("ok", title="Go?", assignees=["group:managers"], timeout="1d")


@workflow("endings-impatient-parent", timeout="1h")
def impatient_parent(ctx, event):
    return ctx.child("kid", "endings-sleeper")


@pytest.fixture
def operator(users):
    operator = users["operator"]
    operator.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_run", "change_run"])
    )
    return operator


def assert_nothing_open(run: Run) -> None:
    assert not StepRecord.objects.filter(run=run, status__in=["running", "waiting"]).exists()
    assert not StepRecord.objects.filter(run=run, finished_at__isnull=True).exists()
    assert not Approval.objects.filter(run=run, status="pending").exists()
    assert not Wait.objects.filter(run=run, status="open").exists()
    assert not Timer.objects.filter(run=run, fired_at__isnull=True).exists()


def test_a_cancelled_run_shows_its_approval_step_cancelled_everywhere(
    workflow_harness, client, operator
):
    Group.objects.create(name="managers")
    workflow_harness.emit("example.expense.submitted", {"amount": 120, "employee": "eve"})
    run = Run.objects.get(workflow__name="example-expense-approval")
    assert workflow_harness.refresh(run).status == "waiting"

    workflow_harness._committed(run_cancel, run=run)
    workflow_harness.drain()

    assert workflow_harness.refresh(run).status == "cancelled"
    assert_nothing_open(run)
    assert Approval.objects.get(run=run).status == "cancelled"
    client.force_login(operator)
    step = client.get(f"/api/runs/{run.id}/").json()["steps"][0]
    assert step["id"] == "approve"
    assert step["status"] == "cancelled"
    assert step["duration"] is not None
    assert step["next_attempt_at"] is None
    page = client.get(f"/app/runs/{run.id}/").content.decode()
    assert 'data-status="waiting"' not in page
    assert "Next: due in" not in page


def test_a_run_that_passes_its_deadline_closes_its_sleep_and_resumes_it_on_retry(
    workflow_harness,
):
    run = workflow_harness.start("test-run-timeout")
    workflow_harness.run_until_idle()
    run = workflow_harness.refresh(run)
    assert run.status == "failed"
    assert "deadline" in run.error["message"]
    assert_nothing_open(run)
    assert run.steps.get(step_id="long").status == "cancelled"
    due = datetime.fromisoformat(run.steps.get(step_id="long").input["until"])

    workflow_harness._committed(run_retry, run=run)
    workflow_harness.drain()
    assert workflow_harness.refresh(run).status == "waiting"  # the sleep carries on
    sleep = run.steps.get(step_id="long")
    assert sleep.status == "waiting"
    # Until the time it was due, not for its whole duration again from the retry.
    assert sleep.next_attempt_at == due
    assert Timer.objects.get(run=run, step_id="long", fired_at=None).due_at == sleep.next_attempt_at


def test_a_run_that_passes_its_deadline_cancels_its_approval_and_asks_again_on_retry(
    workflow_harness,
):
    Group.objects.create(name="managers")
    run = workflow_harness.start("endings-approval-with-deadline")
    workflow_harness.run_until_idle()
    run = workflow_harness.refresh(run)
    assert run.status == "failed"
    assert_nothing_open(run)
    assert Approval.objects.get(run=run).status == "cancelled"

    first_ask = Approval.objects.get(run=run)

    workflow_harness._committed(run_retry, run=run)
    workflow_harness.drain()
    assert workflow_harness.refresh(run).status == "waiting"
    assert run.steps.get(step_id="ok").status == "waiting"
    # The first ask stays as it was (who was asked, when, how it ended); a new one is pending.
    asks = Approval.objects.filter(run=run).order_by("created_at")
    assert [(a.id, a.status) for a in asks] == [
        (first_ask.id, "cancelled"),
        (asks[1].id, "pending"),
    ]
    assert asks[0].created_at == first_ask.created_at


def test_a_dead_lettered_run_closes_the_step_its_workers_died_in(workflow_harness, clock, settings):
    settings.AUTOMATION_MAX_RECOVERIES = 1
    run = workflow_harness._committed(run_start, workflow="test-noop")
    workflow_harness.backend.queue.clear()
    assert leases.claim(run.id, "doomed-worker")
    StepRecord.objects.create(run=run, step_id="one", seq=0, status="running")
    for _ in range(2):
        clock.advance(timedelta(minutes=5))
        workflow_harness._committed(sweeps.runs_recover)
        workflow_harness.backend.queue.clear()
        Run.objects.filter(id=run.id, status="pending").update(
            status="running", lease_owner="doomed-worker", lease_expires_at=clock.now()
        )
    run = workflow_harness.refresh(run)
    assert run.error["type"] == "DeadLetter"
    assert_nothing_open(run)
    assert run.steps.get(step_id="one").status == "cancelled"

    workflow_harness._committed(run_retry, run=run)  # from the dead-letter list
    workflow_harness.drain()
    assert workflow_harness.result(run) is None
    assert run.steps.get(step_id="one").attempt == 2  # the closed step ran again


def test_a_parent_that_ends_while_its_child_runs_cancels_the_child(workflow_harness, clock):
    parent = workflow_harness.start("endings-impatient-parent")
    child = Run.objects.get(parent_run=parent)
    assert workflow_harness.refresh(child).status == "waiting"
    workflow_harness.advance_time("61m")  # the parent's deadline; the child still sleeps
    assert workflow_harness.refresh(parent).status == "failed"
    assert "deadline" in parent.error["message"]
    assert workflow_harness.refresh(child).status == "cancelled"
    assert parent.steps.get(step_id="kid").status == "cancelled"
    assert_nothing_open(parent)
    assert_nothing_open(child)


def test_the_schema_lets_a_step_still_open_have_no_duration(client, workflow_harness, operator):
    """A waiting step of an active run has no duration yet: the API says null, and the
    published schema allows it (it declared a number only)."""
    step = client.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]["Step"]
    assert step["properties"]["duration"]["nullable"] is True
