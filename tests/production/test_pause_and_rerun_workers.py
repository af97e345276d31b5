"""Pause, resume and rerun on the production path: real Celery worker processes on Redis, the
sweep run by beat inside the worker, the test database shared with the test process. Steps
count their real executions."""

from __future__ import annotations

import pytest
from django.db import transaction

from automation.control import run_pause, run_rerun, run_resume, workflow_pause, workflow_resume
from automation.models import Run, RunStatus, StepRecord, Timer, Workflow
from events.services import emit
from tests.engine_app.workflows import executions
from tests.processes import celery_worker, wait_for
from tests.production.test_engine_workers import env, finished, ready, start  # noqa: F401  (fixture)

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_user("olivia", "olivia@example.com", "pw")


def status_is(run: Run, status: str):
    def check():
        run.refresh_from_db()
        return run if run.status == status else None

    return wait_for(check, timeout=30, message=f"run {run.id} never became {status}")


def test_a_run_paused_mid_step_finishes_the_step_and_stops_before_the_next(
    env,  # noqa: F811
    tmp_path,
    operator,
):
    with celery_worker(env, tmp_path / "w.log", concurrency=1, beat=True) as worker:
        ready(worker, tmp_path / "w.log")
        run = start("test.control_slow", {"key": "mid", "seconds": 2})
        wait_for(lambda: executions("start:mid") == 1, message="the slow step never started")
        asked = run_pause(run=run, user=operator)
        assert (asked.status, asked.pause_requested) == (RunStatus.RUNNING, True)
        run = status_is(run, RunStatus.PAUSED)
        assert executions("end:mid") == 1  # the step under way finished …
        assert StepRecord.objects.get(run=run, step_id="slow").status == "succeeded"
        assert executions("after:mid") == 0  # … and the next one did not start
        assert run.lease_owner == ""

        run_resume(run=run, user=operator)
        run = finished(run)
    assert run.status == RunStatus.SUCCEEDED
    assert run.output == {"after": 1}
    assert executions("start:mid") == 1


def test_a_sleep_that_falls_due_while_paused_takes_effect_at_resume(
    env,  # noqa: F811
    tmp_path,
    operator,
):
    with celery_worker(env, tmp_path / "w.log", concurrency=1, beat=True) as worker:
        ready(worker, tmp_path / "w.log")
        run = status_is(start("test.control", {"key": "nap", "nap": "1s"}), RunStatus.WAITING)
        with transaction.atomic():
            run_pause(run=run, user=operator)
        timer = Timer.objects.filter(run=run, step_id="nap", fired_at__isnull=False)
        wait_for(timer.exists, timeout=30, message="the sweep never fired the nap's timer")
        run.refresh_from_db()
        assert run.status == RunStatus.PAUSED  # fired, but the paused run did not move
        assert executions("second:nap") == 0

        run_resume(run=run, user=operator)
        run = finished(run)
    assert run.output == {"first": 1, "second": 1, "third": 1}


def test_a_rerun_repeats_the_chosen_steps_on_a_worker(
    env,  # noqa: F811
    tmp_path,
    operator,
):
    with celery_worker(env, tmp_path / "w.log", concurrency=2, beat=True) as worker:
        ready(worker, tmp_path / "w.log")
        run = finished(start("test.control", {"key": "again", "nap": "1s"}))
        run_rerun(run=run, from_step="second", user=operator)
        run = status_is(run, RunStatus.SUCCEEDED)
    assert run.execution == 2
    assert run.output == {"first": 1, "second": 2, "third": 2}
    assert executions("first:again") == 1
    old = StepRecord.ledger.filter(run=run, superseded_in=2)
    assert sorted(old.values_list("step_id", "output")) == [("second", 1), ("third", 1)]


def test_a_paused_workflow_keeps_its_events_runs_and_starts_them_on_resume(
    env,  # noqa: F811
    tmp_path,
    operator,
):
    with celery_worker(env, tmp_path / "w.log", concurrency=2, beat=True) as worker:
        ready(worker, tmp_path / "w.log")
        finished(start("test.control", {"key": "warm", "nap": "1s"}))
        workflow_pause(workflow=Workflow.objects.get(name="test-control"), user=operator)
        with transaction.atomic():
            event = emit("test.control", {"key": "kept", "nap": "1s"})
        run = wait_for(lambda: Run.objects.filter(trigger_event=event).first(), timeout=20)
        assert run.status == RunStatus.PAUSED
        assert executions("first:kept") == 0

        _, resumed = workflow_resume(
            workflow=Workflow.objects.get(name="test-control"), user=operator
        )
        assert resumed == 1
        run = finished(run)
    assert run.status == RunStatus.SUCCEEDED
    assert executions("first:kept") == 1
