"""A worker survives Redis restarts on its own (kombu#582): on a Redis of the test's own, on a
free port, restarted as often as the test likes without disturbing anyone else's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from automation.celery import app
from automation.models import Heartbeat
from tests.processes import ROOT, celery_worker, free_port, project_env, wait_for

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

if not shutil.which("redis-server"):
    pytest.skip("redis-server is not installed", allow_module_level=True)


class OwnRedis:
    """redis-server on a free port, without persistence (a restart empties it)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_for(lambda: _answers(client), timeout=10, message="redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture
def own_redis(tmp_path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_a_channel_of_a_lost_connection_fails_as_a_connection_error(own_redis):
    """What made Celery's worker exit: on a lost connection the consumer collects it, which
    detaches its transport and closes its channels; a task that finishes afterwards
    acknowledges its message on such a channel. That must fail as a connection error, which
    Celery logs ("Couldn't ack"), not with AttributeError ('NoneType' object has no attribute
    'hostname'), which stops the worker."""
    connection = app.connection_for_write(own_redis.url)
    channel = connection.channel()
    own_redis.stop()
    connection.collect()
    with pytest.raises(connection.connection_errors):
        channel.qos.ack("a-delivery-tag")
    with pytest.raises(connection.connection_errors):
        channel.qos.restore_unacked()


def test_a_worker_survives_redis_restarts_and_runs_new_work(own_redis, tmp_path):
    env = project_env(CELERY_BROKER_URL=own_redis.url, REDIS_URL=own_redis.url)
    log = tmp_path / "worker.log"
    with celery_worker(env, log) as worker:
        wait_for(lambda: Heartbeat.objects.exists(), timeout=30, message=log.read_text())
        for _ in range(3):
            own_redis.stop()
            own_redis.start()
        Heartbeat.objects.all().delete()
        send = "from automation.tasks import heartbeat; heartbeat.delay()"
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-v0", "-c", send],
            cwd=ROOT, env=env, check=True, timeout=60,
        )  # fmt: skip
        wait_for(
            lambda: Heartbeat.objects.exists(),
            timeout=60,
            message=f"the worker did not run new work after the restarts:\n{log.read_text()}",
        )
        assert worker.poll() is None
        assert "Unrecoverable error" not in log.read_text()
