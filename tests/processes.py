"""Start the project's real processes (server, Celery worker) for tests, and stop them.

Each process gets the environment of production or embedded mode explicitly, pointing at the
test database that pytest-django created, so what it writes is what the test reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import redis
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret-key-" + "x" * 60


def test_database_url() -> str:
    """The URL of the database this test run uses (pytest-django's test database)."""
    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    auth = quote(conf["USER"] or "")
    if conf.get("PASSWORD"):
        auth += ":" + quote(conf["PASSWORD"])
    return f"postgres://{auth}@{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 5432}/{conf['NAME']}"


def project_env(**overrides: str | None) -> dict[str, str]:
    """The environment for a child process: real settings, this run's database and data dir.

    An override of None removes the variable.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "REDIS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="automation.settings",
        DATABASE_URL=test_database_url(),
        SECRET_KEY=SECRET,
        HTTPS="false",
        PYTHONUNBUFFERED="1",
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def redis_layer(url: str) -> RedisPubSubChannelLayer:
    """The channel layer a production process builds from ``REDIS_URL=url`` (see
    automation.settings: pub/sub channels named after the Redis database)."""
    database = redis.connection.parse_url(url).get("db") or 0
    return RedisPubSubChannelLayer(hosts=[url], prefix=f"asgi.{database}.")


def manage(env: dict[str, str], *args: str) -> str:
    """Run ``manage.py <args>`` in a child process; its stdout (fails with its stderr)."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log: Path

    def get(self, path: str) -> tuple[int, bytes]:
        return http_get(self.url + path)

    def api(self, token: str, method: str, path: str, body: dict | None = None) -> dict:
        """A JSON API call as the owner of ``token``; an HTTP error raises."""
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def interrupt(self, timeout: float = 20.0) -> int:
        """Ctrl-C, then wait for a clean exit; returns the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=timeout)


def start_server(env: dict[str, str], log: Path, *, timeout: float = 30.0) -> Server:
    port = free_port()
    handle = log.open("w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{server.output()}")
        try:
            server.get("/healthz")
            return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    stop(process)
    raise AssertionError(f"server did not answer within {timeout}s:\n{server.output()}")


@contextmanager
def running_server(env: dict[str, str], log: Path) -> Iterator[Server]:
    server = start_server(env, log)
    try:
        yield server
    finally:
        stop(server.process)


@contextmanager
def celery_worker(
    env: dict[str, str], log: Path, *, concurrency: int = 2, beat: bool = False
) -> Iterator[subprocess.Popen]:
    """A real `celery -A automation worker` process (prefork pool), optionally with beat (-B).

    It gets a session of its own, so ``kill_hard`` can kill it with all its children."""
    handle = log.open("w")
    command = [sys.executable, "-m", "celery", "-A", "automation", "worker"]
    command += ["--loglevel=INFO", f"--concurrency={concurrency}", "--pool=prefork"]
    command += ["--without-gossip", "--without-mingle", f"--hostname=w{free_port()}@%h"]
    if beat:
        command += ["--beat", "--schedule", str(log.with_suffix(".beat"))]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield process
    finally:
        stop(process, sig=signal.SIGTERM)
        # A worker that had to be killed leaves its pool and its beat process behind: end the
        # whole session, so no worker outlives its test.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def kill_hard(process: subprocess.Popen) -> None:
    """kill -9 the process and every process of its session (a worker and its pool)."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def stop(process: subprocess.Popen, *, sig: int = signal.SIGINT, timeout: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(predicate, *, timeout: float = 20.0, interval: float = 0.1, message: str = ""):
    """Poll ``predicate`` until it returns something truthy; fail with ``message`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(message or f"condition not met within {timeout}s")
