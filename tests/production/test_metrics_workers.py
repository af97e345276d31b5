"""/metrics counts the work of every process: Celery worker processes (prefork) write their
samples to PROMETHEUS_MULTIPROC_DIR and a separate web process adds them up."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from celery import Celery
from django.db import transaction
from prometheus_client.parser import text_string_to_metric_families

from automation.engine import dispatch
from automation.models import Run
from events import publisher
from events.services import emit
from tests.events.servers import running_gunicorn
from tests.processes import (
    ROOT,
    celery_worker,
    free_port,
    http_get,
    project_env,
    stop,
    wait_for,
)

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

RUNS = 8


class SendToRedis:
    def __init__(self, url: str) -> None:
        self.app = Celery("test-client", broker=url)

    def advance(self, run_id: str) -> None:
        self.app.send_task("automation.advance_run", args=[run_id])

    def branch(self, run_id: str, step_id: str) -> None:
        self.app.send_task("automation.run_branch", args=[run_id, step_id])

    def route(self, event_id: str) -> None:
        self.app.send_task("events.route_event", args=[event_id])


@pytest.fixture
def env(redis_url, tmp_path) -> Iterator[dict[str, str]]:
    backend = SendToRedis(redis_url)
    previous = dispatch.set_backend(backend)
    previous_router = publisher.set_router(backend.route)
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    yield project_env(
        DJANGO_SETTINGS_MODULE="tests.settings",
        CELERY_BROKER_URL=redis_url,
        REDIS_URL=redis_url,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    dispatch.set_backend(previous)
    publisher.set_router(previous_router)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_add_up_the_work_of_every_worker_process(env, tmp_path):
    with celery_worker(env, tmp_path / "worker.log", concurrency=2):
        with transaction.atomic():
            events = [emit("test.noop", {"n": n}) for n in range(RUNS)]
        wait_for(
            lambda: (
                Run.objects.filter(trigger_event__in=events, status="succeeded").count() == RUNS
            ),
            timeout=60,
            message=f"runs did not finish:\n{(tmp_path / 'worker.log').read_text()[-3000:]}",
        )
    writers = {path.stem.split("_")[-1] for path in (tmp_path / "prometheus").glob("*.db")}
    with running_gunicorn(env, tmp_path / "web.log", workers=2, threads=1) as server:
        status, body = server.get("/metrics")
    assert status == 200
    found = samples(body.decode())
    finished = (
        "automation_runs_finished_total",
        (("status", "succeeded"), ("workflow", "test-noop")),
    )
    assert found[finished] == RUNS, writers
    steps = ("automation_step_duration_seconds_count", (("kind", "step"), ("status", "succeeded")))
    assert found[steps] == 3 * RUNS
    # The counts come from the files the worker processes wrote (one set per process id); the
    # web process that served /metrics executed nothing.
    assert writers, "no worker process wrote samples"

    # A worker-only host serves the same files with `manage.py serve_metrics`.
    assert samples(_serve_metrics(env))[finished] == RUNS


def _serve_metrics(env: dict[str, str]) -> str:
    port = free_port()
    command = [sys.executable, "manage.py", "serve_metrics", "--host", "127.0.0.1"]
    process = subprocess.Popen([*command, "--port", str(port)], cwd=ROOT, env=env)
    try:
        _status, body = wait_for(lambda: _get(f"http://127.0.0.1:{port}/"), timeout=30)
    finally:
        stop(process)
    return body.decode()


def _get(url: str) -> tuple[int, bytes] | None:
    try:
        return http_get(url)
    except OSError:
        return None
