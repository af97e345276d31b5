"""A real gunicorn process serving the project (the WSGI topology used for webhooks)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.processes import ROOT, Server, free_port, stop


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 30.0):
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@contextmanager
def running_gunicorn(
    env: dict[str, str], log: Path, *, workers: int = 2, threads: int = 8
) -> Iterator[Server]:
    port = free_port()
    handle = log.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "automation.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--timeout",
            "60",
        ],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers are a process group of their own
    )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        _wait_until_answering(server)
        yield server
    finally:
        stop(process, timeout=20)
        # A master killed after the timeout leaves its workers behind (one stuck reading a
        # request body ignores SIGTERM), holding the test database open: end the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _wait_until_answering(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"gunicorn exited:\n{server.output()}")
        try:
            server.get("/healthz")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise AssertionError(f"gunicorn did not answer within {timeout}s:\n{server.output()}")
