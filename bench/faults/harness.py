"""The stack every fault script breaks: a Redis and (optionally) a PostgreSQL of its own, a
database of its own, N Celery workers and one beat, all short-leased so recovery is quick; and
the one report every fault script prints.

Own servers on free ports: restarting them disturbs nobody else. Everything started is stopped
when the ``FaultStack`` block ends, whether the script succeeded, failed or was interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import (
    PG,
    OwnPostgres,
    OwnRedis,
    drop_database,
    manage,
    project_env,
    recreate_database,
    setup_django,
    start_beat,
    start_worker,
    stop,
    table,
    wait_until,
    workdir,
)

# One database per script run: several people may run fault scripts on one PostgreSQL server.
DB_NAME = f"automation_bench_faults_{os.getpid()}"
# Quick recovery: a killed worker's run is taken over 3 s after its last renewal, a lost
# "advance" message re-sent after 4 s, and the sweep runs every half second.
FAST_RECOVERY = {
    "RUN_LEASE_SECONDS": "3",
    "RUN_REDISPATCH_SECONDS": "4",
    "SWEEP_INTERVAL": "1",
    "HEARTBEAT_INTERVAL": "1",
    "RUN_MAX_RECOVERIES": "50",  # repeated kills are the test, not a poison run
}


class FaultStack:
    def __init__(
        self, tmp: Path, *, own_postgres: bool = False, workers: int = 2, procfile: bool = False
    ) -> None:
        self.procfile = procfile  # workers with the Procfile's options (bench.common.start_worker)
        self.tmp = tmp
        self.redis = OwnRedis(tmp)
        self.redis.start()
        self.postgres = OwnPostgres(tmp) if own_postgres else None
        if self.postgres is not None:
            self.postgres.start()
        self.server = self.postgres.server if self.postgres else PG
        url = recreate_database(self.server, DB_NAME)
        self.env = project_env(url, self.redis.url, **FAST_RECOVERY)
        self.worker_count = workers
        self.workers: list[subprocess.Popen] = []
        # Worker main processes that exited by themselves (not killed by the script) and were
        # started again. Any is a failure: a worker must survive broker and database restarts
        # on its own (kombu#582 used to make it exit on a Redis restart: automation.lib.broker).
        self.exits = 0
        self.beat: subprocess.Popen | None = None
        self.log = tmp / "processes.log"

    def prepare(self) -> None:
        manage(self.env, "migrate", "--noinput", "-v0")
        setup_django(self.env)
        # This process breaks things on purpose: its own complaints about that are noise.
        logging.disable(logging.CRITICAL)
        from django.db import connection

        import bench.bench_app as app
        from automation.engine import registry

        registry.sync_code_workflows(force=True)
        with connection.cursor() as cursor:
            for sql in app.FAULT_SQL:
                cursor.execute(sql)

    def start_processes(self) -> None:
        self.workers = [self.start_worker(n) for n in range(self.worker_count)]
        self.beat = start_beat(self.env, self.log, self.tmp)

    def start_worker(self, n: int) -> subprocess.Popen:
        name = f"fault{n}-{time.monotonic_ns()}"
        return start_worker(self.env, self.log, name=name, procfile=self.procfile)

    def revive_workers(self) -> None:
        """Start a new worker for each whose main process died (kill_workers.py kills them),
        so that the runs can finish and the report say how many exited by themselves
        (``exits``, which fails the report)."""
        for n, worker in enumerate(self.workers):
            if worker.poll() is not None:
                self.exits += worker.returncode != -signal.SIGKILL
                self.workers[n] = self.start_worker(n)

    def kill_random_worker_process(self) -> str:
        """kill -9 one process of a random worker: its main process or a pool child."""
        worker = random.choice([w for w in self.workers if w.poll() is None])  # noqa: S311
        pids = [worker.pid, *_children(worker.pid)]
        victim = random.choice(pids)  # noqa: S311
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
        return "main" if victim == worker.pid else "child"

    def close(self) -> None:
        for process in [*self.workers, self.beat]:
            stop(process, timeout=10)
        from django.conf import settings

        if settings.configured:
            from django.db import connections

            connections.close_all()
        drop_database(self.server, DB_NAME)
        if self.postgres is not None:
            self.postgres.stop()
        self.redis.stop()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


@contextlib.contextmanager
def fault_stack(prefix: str, **options: Any) -> Iterator[FaultStack]:
    with workdir(prefix) as tmp:
        stack = None
        try:
            stack = FaultStack(tmp, **options)
            stack.prepare()
            yield stack
            if _broken:  # the report said so: what the workers and beat logged says why
                _print_log(tmp)
        except BaseException:
            _print_log(tmp)
            raise
        finally:
            if stack is not None:
                stack.close()


def _print_log(tmp: Path) -> None:
    log = tmp / "processes.log"
    if log.exists():
        lines = log.read_text().splitlines()
        # A worker's own exit is one CRITICAL line and its traceback, easily buried in the
        # reconnect noise of the tail: print those first.
        for n, line in enumerate(lines):
            if "CRITICAL" in line or "Unrecoverable" in line:
                print("\n".join(["--- a fatal error in processes.log ---", *lines[n : n + 60]]))
        print(f"--- the end of {log.name} ---", file=sys.stderr)
        print("\n".join(lines)[-6000:], file=sys.stderr)


# --- the report -----------------------------------------------------------------------------

_broken: list[str] = []  # the verdicts of reports that were not as promised


def query(sql: str, params: list | None = None) -> list[tuple]:
    from django.db import close_old_connections, connection

    close_old_connections()  # a restarted server left this process a broken connection
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def scalar(sql: str, params: list | None = None) -> int:
    return int(query(sql, params)[0][0] or 0)


def settle(expected: int, timeout: float, stack: FaultStack | None = None) -> None:
    """Wait until ``expected`` runs exist and none is active (or the timeout passes); with
    ``stack``, restarting (and counting) its workers that exit meanwhile."""

    def settled() -> bool:
        if stack is not None:
            stack.revive_workers()
        runs = scalar("SELECT count(*) FROM automation_run")
        active = scalar(
            "SELECT count(*) FROM automation_run WHERE status IN ('pending','running','waiting')"
        )
        return runs >= expected and active == 0

    with contextlib.suppress(SystemExit):
        wait_until(settled, timeout, "the runs to finish", 0.5)


def report(
    title: str,
    accepted: int,
    extra: list[tuple[str, Any]] | None = None,
    stack: FaultStack | None = None,
    unanswered: int = 0,
) -> bool:
    """Print the table every fault script prints; True when all is as promised.

    ``unanswered``: work stored although its sender was told otherwise (a webhook committed,
    then answered 503 as the database went away). Its runs must complete like the others and
    a retry of it is deduplicated, so it is not a failure, but only the script that knows of
    it may account for the runs beyond ``accepted``."""
    runs = scalar("SELECT count(*) FROM automation_run")
    completed = scalar("SELECT count(*) FROM automation_run WHERE status = 'succeeded'")
    failed = scalar("SELECT count(*) FROM automation_run WHERE status IN ('failed','cancelled')")
    stuck = scalar(
        "SELECT count(*) FROM automation_run WHERE status IN ('pending','running','waiting')"
    )
    twice = scalar(
        "SELECT count(*) FROM (SELECT 1 FROM bench_recorded GROUP BY run_id, step_id "
        "HAVING count(*) > 1) AS t"
    )
    executions = scalar("SELECT count(*) FROM bench_executions")
    steps = scalar("SELECT count(*) FROM bench_recorded")
    lost = max(0, accepted - runs) + failed
    # The same event must never start its run twice (the routing claim on routed_at).
    doubled = scalar(
        "SELECT count(*) FROM (SELECT 1 FROM automation_run WHERE trigger_event_id IS NOT NULL "
        "GROUP BY trigger_event_id HAVING count(*) > 1) AS t"
    )
    rows: list[tuple[str, Any]] = [
        ("runs started (accepted)", accepted),
        ("runs in the database", runs),
        ("events that started two runs", doubled),
        ("completed", completed),
        ("lost (never started, or failed)", lost),
        ("stuck (still active)", stuck),
        ("steps recorded", steps),
        ("steps recorded twice", twice),
        ("step executions (at-least-once: re-runs after a kill)", executions),
        *(extra or []),
    ]
    if stack is not None:
        rows.append(("workers that exited by themselves, restarted", stack.exits))
    print(title)
    print(table(["", "count"], rows))
    ok = (
        lost == 0
        and stuck == 0
        and twice == 0
        and doubled == 0
        and completed == runs == accepted + unanswered
    )
    if not accepted:
        print("BROKEN: no work was accepted, so this run proved nothing")
        ok = False
    if stack is not None and stack.exits:
        print(f"BROKEN: {stack.exits} worker(s) exited by themselves (their log follows)")
        ok = False
    verdict = "OK" if ok else "BROKEN"
    print(f"{verdict}: lost {lost}, stuck {stuck}, recorded twice {twice} of {accepted} runs")
    if not ok:
        _broken.append(title)
    return ok


def broken(reason: str) -> bool:
    """A script's own check failed: say so (the processes' log is printed at the end)."""
    print(f"BROKEN: {reason}")
    _broken.append(reason)
    return False
