"""The production path: separate worker, beat and client processes on a real Redis broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from automation.models import Heartbeat
from tests.processes import ROOT, celery_worker, project_env, redis_layer, stop, wait_for

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]


def _worker_pids(worker: subprocess.Popen) -> set[int]:
    """The worker's main process and its prefork children."""
    children = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(worker.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    return {worker.pid, *map(int, children)}


def _heartbeat_pid() -> int | None:
    beat = Heartbeat.objects.filter(name="background").first()
    return int(beat.worker.rsplit(":", 1)[1]) if beat else None


def test_a_task_sent_by_one_process_runs_in_a_worker_process(redis_url, tmp_path):
    env = project_env(CELERY_BROKER_URL=redis_url, REDIS_URL=redis_url)
    with celery_worker(env, tmp_path / "worker.log") as worker:
        # A starting worker announces itself with a heartbeat through the broker.
        wait_for(_heartbeat_pid, timeout=30, message=(tmp_path / "worker.log").read_text())
        Heartbeat.objects.all().delete()

        # A separate client process (as a web process would) publishes a task.
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-v0",
                "-c",
                "from automation.tasks import heartbeat; heartbeat.delay()",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=60,
        )
        pid = wait_for(_heartbeat_pid, message="the worker never ran the task")
        assert pid in _worker_pids(worker)
        assert pid != os.getpid()


def test_beat_schedules_periodic_work_from_the_database(redis_url, tmp_path):
    env = project_env(CELERY_BROKER_URL=redis_url, REDIS_URL=redis_url, HEARTBEAT_INTERVAL="1")
    beat_log = (tmp_path / "beat.log").open("w")
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "automation", "beat", "--loglevel=INFO"],
        cwd=ROOT,
        env=env,
        stdout=beat_log,
        stderr=subprocess.STDOUT,
    )
    try:
        with celery_worker(env, tmp_path / "worker.log"):
            first = wait_for(
                lambda: Heartbeat.objects.filter(name="background").first(), timeout=30
            )
            later = wait_for(
                lambda: Heartbeat.objects.filter(seen_at__gt=first.seen_at).first(),
                timeout=10,
                message="beat did not send the heartbeat again",
            )
            assert later.seen_at > first.seen_at
    finally:
        stop(beat)
    log = (tmp_path / "beat.log").read_text()
    assert "DatabaseScheduler" in log


async def test_a_channels_message_crosses_processes_through_redis(redis_url):
    layer = redis_layer(redis_url)
    channel = await layer.new_channel()
    await layer.group_add("foundation-test", channel)
    sender = (
        "import django; django.setup();"
        "from asgiref.sync import async_to_sync;"
        "from channels.layers import get_channel_layer;"
        "async_to_sync(get_channel_layer().group_send)("
        "'foundation-test', {'type': 'run.update', 'text': 'from another process'})"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "automation.settings",
        "REDIS_URL": redis_url,
        "SECRET_KEY": "x" * 60,
    }
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", sender, cwd=ROOT, env=env)
    assert await asyncio.wait_for(process.wait(), 60) == 0
    message = await asyncio.wait_for(layer.receive(channel), 10)
    assert message == {"type": "run.update", "text": "from another process"}
    await layer.group_discard("foundation-test", channel)
    await layer.flush()
