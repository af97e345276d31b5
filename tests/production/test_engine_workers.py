"""The engine on the production path: real Celery worker processes (prefork) on Redis, the
sweep run by beat inside a worker (-B), the test database shared with the test process."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from celery import Celery
from django.db import transaction

from automation.engine import dispatch
from automation.models import Heartbeat, Run, StepRecord, Timer
from events import publisher
from events.services import emit
from tests.engine_app.workflows import executions
from tests.processes import celery_worker, kill_hard, project_env, wait_for

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]


class SendToRedis:
    """Dispatch from the test process to the Redis broker the workers consume."""

    def __init__(self, url: str) -> None:
        self.app = Celery("test-client", broker=url)

    def advance(self, run_id: str) -> None:
        self.app.send_task("automation.advance_run", args=[run_id])

    def branch(self, run_id: str, step_id: str) -> None:
        self.app.send_task("automation.run_branch", args=[run_id, step_id])

    def route(self, event_id: str) -> None:
        self.app.send_task("events.route_event", args=[event_id])


@pytest.fixture
def env(redis_url) -> Iterator[dict[str, str]]:
    backend = SendToRedis(redis_url)
    previous = dispatch.set_backend(backend)
    previous_router = publisher.set_router(backend.route)
    yield project_env(
        DJANGO_SETTINGS_MODULE="tests.settings",
        CELERY_BROKER_URL=redis_url,
        REDIS_URL=redis_url,
        RUN_LEASE_SECONDS="2",
        SWEEP_INTERVAL="1",
    )
    dispatch.set_backend(previous)
    publisher.set_router(previous_router)


def ready(worker: subprocess.Popen, log: Path) -> None:
    """Wait until the worker ran its start-up heartbeat through the broker."""
    Heartbeat.objects.all().delete()
    wait_for(
        lambda: worker.poll() is None and Heartbeat.objects.exists(),
        timeout=40,
        message=f"worker did not start:\n{log.read_text()}",
    )


def start(event_type: str, data: dict) -> Run:
    with transaction.atomic():
        event = emit(event_type, data)
    return wait_for(lambda: Run.objects.filter(trigger_event=event).first(), timeout=20)


def finished(run: Run, timeout: float = 30) -> Run:
    def done():
        run.refresh_from_db()
        return run if run.finished else None

    return wait_for(done, timeout=timeout, message=f"run {run.id} did not finish")


def test_kill_9_mid_step_loses_nothing_and_records_the_step_once(env, tmp_path):
    key = "kill9"
    with celery_worker(env, tmp_path / "w1.log", concurrency=1, beat=True) as first:
        ready(first, tmp_path / "w1.log")
        run = start("test.slow", {"key": key, "seconds": 3})
        wait_for(lambda: executions(f"start:{key}") == 1, message="the step never started")
        # A step running longer than a second is journaled as running (a quicker one only
        # when it ends): the attempt the kill interrupts is on record.
        journaled = StepRecord.objects.filter(run=run, step_id="slow", status="running")
        wait_for(journaled.exists, message="the long step was never journaled as running")
        kill_hard(first)  # worker, pool child and embedded beat, mid-step
    assert executions(f"end:{key}") == 0

    with celery_worker(env, tmp_path / "w2.log", concurrency=1, beat=True) as second:
        ready(second, tmp_path / "w2.log")
        run = finished(run, timeout=40)
    assert run.status == "succeeded"
    assert run.recoveries == 1
    assert executions(f"start:{key}") == 2  # executed again after the kill …
    assert executions(f"end:{key}") == 1
    step = StepRecord.objects.get(run=run, step_id="slow")  # … and recorded once
    assert step.attempt == 2
    assert step.attempts[0]["error"]["type"] == "WorkerLost"
    assert step.output == {"pid": run.output["worker_pid"]}


def test_a_two_second_sleep_wakes_on_time(env, tmp_path):
    with celery_worker(env, tmp_path / "w.log", concurrency=1, beat=True) as worker:
        ready(worker, tmp_path / "w.log")
        run = finished(start("test.sleep", {"duration": "2s"}))
    assert run.status == "succeeded"
    nap = StepRecord.objects.get(run=run, step_id="nap")
    assert run.output["slept"] >= 2.0
    lateness = (nap.finished_at - datetime.fromisoformat(nap.input["until"])).total_seconds()
    assert 0 <= lateness < 2.5, f"woke {lateness:.2f}s after the due time"


def test_wait_for_event_matched_from_lookback_and_timed_out(env, tmp_path):
    with celery_worker(env, tmp_path / "w.log", concurrency=2, beat=True) as worker:
        ready(worker, tmp_path / "w.log")
        with transaction.atomic():
            emit("test.reply", {"key": "early", "n": 1})  # before its wait exists
        early = start("test.wait", {"key": "early"})
        later = start("test.wait", {"key": "later"})
        lonely = start("test.wait", {"key": "lonely", "timeout": "2s"})
        wait_for(lambda: Run.objects.get(id=later.id).status == "waiting", timeout=20)
        with transaction.atomic():
            emit("test.reply", {"key": "later", "n": 2})
        results = [finished(run) for run in (early, later, lonely)]
    assert [run.output for run in results] == [
        {"timed_out": False, "reply": {"key": "early", "n": 1}},
        {"timed_out": False, "reply": {"key": "later", "n": 2}},
        {"timed_out": True, "reply": None},
    ]


def test_parallel_branches_run_on_two_workers(env, tmp_path):
    with (
        celery_worker(env, tmp_path / "a.log", concurrency=1, beat=True) as a,
        celery_worker(env, tmp_path / "b.log", concurrency=1) as b,
    ):
        ready(a, tmp_path / "a.log")
        run = finished(start("test.parallel", {"seconds": 1.5}))
        workers = {a.pid, b.pid}
    assert run.status == "succeeded"
    branch_pids = {branch["pid"] for branch in run.output}
    assert len(branch_pids) == 2, "both branches ran in the same process"
    parents = {
        int(
            subprocess.run(
                ["ps", "-o", "ppid=", "-p", str(pid)], capture_output=True, text=True
            ).stdout
            or 0
        )
        for pid in branch_pids
    }
    assert parents <= workers | {0}


def test_compensations_run_in_reverse_order_on_real_workers(env, tmp_path):
    with celery_worker(env, tmp_path / "w.log", concurrency=2, beat=True) as worker:
        ready(worker, tmp_path / "w.log")
        run = finished(start("example.trip.requested", {"destination": "Lima", "fail": "car"}))
    assert run.status == "failed"
    undo = list(StepRecord.objects.filter(run=run, kind="compensation").order_by("finished_at"))
    assert [record.step_id for record in undo] == ["compensate:hotel", "compensate:flight"]


def test_retry_attempts_and_their_backoff_are_recorded(env, tmp_path):
    with celery_worker(env, tmp_path / "w.log", concurrency=1, beat=True) as worker:
        ready(worker, tmp_path / "w.log")
        run = finished(start("example.record.changed", {"id": "prod-1", "failures": 2}))
    assert run.status == "succeeded"
    step = StepRecord.objects.get(run=run, step_id="sync")
    assert step.attempt == 3
    assert [a["error"]["type"] for a in step.attempts] == ["RetryAfter", "RetryAfter"]
    timers = list(Timer.objects.filter(run=run).order_by("due_at"))
    assert len(timers) == 2
    assert all(timer.fired_at is not None and timer.fired_at >= timer.due_at for timer in timers)


def test_a_step_longer_than_the_lease_runs_once_on_a_healthy_worker(env, tmp_path):
    key = "long-healthy"
    with celery_worker(env, tmp_path / "w.log", concurrency=2, beat=True) as worker:
        ready(worker, tmp_path / "w.log")
        # 5 s against a 2 s lease, while the sweep runs every second in the other process.
        run = finished(start("test.slow", {"key": key, "seconds": 5}))
    assert run.status == "succeeded"
    assert run.recoveries == 0
    assert executions(f"start:{key}") == 1
    assert StepRecord.objects.get(run=run, step_id="slow").attempt == 1
