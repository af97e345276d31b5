"""One circuit breaker shared by two real Celery worker processes, against a local HTTP server
that fails on purpose: the circuit opens after its failures, and no call passes it while it is
open; after the cool-down exactly one probe goes; closing it lets every waiting run through."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from automation.commands import circuit_close, workflow_definition_save
from automation.engine.runs import run_start
from automation.models import Circuit, Run, StepRecord, Timer
from tests.processes import celery_worker, wait_for
from tests.production.test_engine_workers import env, ready  # noqa: F401  (fixture)

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

RUNS = 6
FAILURES = 3


class FailingServer:
    """Answers 503 until ``up``; counts every request it gets."""

    def __init__(self) -> None:
        self.up = False
        self.hits: list[float] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with server.lock:
                    server.hits.append(time.monotonic())
                status = 200 if server.up else 503
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/charge"

    def count(self) -> int:
        with self.lock:
            return len(self.hits)


@pytest.fixture
def server() -> Iterator[FailingServer]:
    server = FailingServer()
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def _waiting_for_circuit(runs: list[Run]) -> bool:
    return all(
        Run.objects.filter(
            id=run.id, status="waiting", waiting_for__startswith="waiting: circuit open for"
        ).exists()
        for run in runs
    )


def test_two_workers_share_one_breaker_and_no_call_passes_it(
    env,  # noqa: F811
    server,
    tmp_path,
    django_user_model,
):
    env = {**env, "AUTOMATION_HTTP_ALLOWLIST": "127.0.0.1"}
    workflow_definition_save(
        definition={
            "name": "charge",
            "trigger": {"event": "test.charge"},
            "steps": [
                {
                    "id": "call",
                    "action": "http.request",
                    "input": {"url": server.url},
                    "retry": {"max_attempts": 8, "initial": "200ms", "backoff": 1, "jitter": 0},
                    "circuit": {"failures": FAILURES, "within": "1m", "open_for": "10m"},
                }
            ],
        }
    )
    with (
        celery_worker(env, tmp_path / "w1.log", concurrency=2, beat=True) as first,
        celery_worker(env, tmp_path / "w2.log", concurrency=2) as second,
    ):
        ready(first, tmp_path / "w1.log")
        wait_for(lambda: second.poll() is None, message="the second worker did not start")
        with transaction.atomic():
            runs = [run_start(workflow="charge", input={"n": n}) for n in range(RUNS)]

        # Failing: the circuit opens after FAILURES failures. Calls already on their way when
        # it opened may still arrive (at most one per other worker process: three); none after.
        wait_for(
            lambda: _waiting_for_circuit(runs),
            timeout=60,
            message=f"runs did not wait for the circuit:\n{(tmp_path / 'w1.log').read_text()}",
        )
        opened = Circuit.objects.get(key="127.0.0.1")
        assert opened.state == "open"
        calls = server.count()
        assert FAILURES <= calls <= FAILURES + 3
        time.sleep(3)  # the 200ms retries would have called many times by now
        assert server.count() == calls
        for run in runs:
            assert StepRecord.objects.get(run=run, step_id="call").attempt <= FAILURES + 1

        # The cool-down ends (moved, not waited for): both workers wake every run at once, and
        # exactly one of them gets the probe. It fails: the circuit opens again.
        now = timezone.now()
        Circuit.objects.filter(key="127.0.0.1").update(retry_at=now)
        waiting = StepRecord.objects.filter(run__in=runs, step_id="call", status="waiting")
        for record in waiting:
            Timer.objects.filter(
                run_id=record.run_id, due_at=record.next_attempt_at, fired_at=None
            ).update(due_at=now)
        waiting.update(next_attempt_at=now)
        wait_for(
            lambda: Circuit.objects.filter(
                key="127.0.0.1", state="open", retry_at__gt=now
            ).exists(),
            timeout=30,
            message="no probe reopened the circuit",
        )
        time.sleep(3)
        assert server.count() == calls + 1
        assert _waiting_for_circuit(runs)

        # The service is back and an operator closes the circuit: every run calls once more.
        server.up = True
        operator = django_user_model.objects.create_user("operator", password="pw")
        circuit_close(key="127.0.0.1", user=operator)
        wait_for(
            lambda: (
                Run.objects.filter(id__in=[r.id for r in runs], status="succeeded").count() == RUNS
            ),
            timeout=60,
            message="the runs did not finish once the circuit was closed",
        )
    assert server.count() == calls + 1 + RUNS
