"""Engine throughput: a 3-step no-op workflow vs a bare Celery 3-task chain, same run.

Both run on PostgreSQL + Redis with one `celery worker --pool prefork --concurrency 2`, started
fresh for each measurement. Usage (needs PostgreSQL and Redis on 127.0.0.1)::

    .venv/bin/python bench/engine.py [--chains 1000] [--repeat 3]

Prints steps/second of each (median of --repeat rounds) and, last, the ratio engine/bare.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "automation_bench_engine"
REDIS = os.environ.get(
    "BENCH_REDIS", "redis://127.0.0.1:6379/12"
)  # emptied; bench/ingest.py uses 13

ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "automation.settings",
    "DATABASE_URL": f"{PG}/{DB_NAME}",
    "CELERY_BROKER_URL": REDIS,
    "REDIS_URL": REDIS,
    "SECRET_KEY": "bench-" + "k" * 60,
    "HTTPS": "false",
    "EXAMPLES": "false",
    "LOG_LEVEL": "warning",
    # Persistent connections for both sides, as a production worker would be configured.
    "DATABASE_CONN_MAX_AGE": "60",
    "PYTHONPATH": str(ROOT),
}


def prepare_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=ENV, check=True)


def setup_django() -> None:
    os.environ.update(ENV)
    import django

    django.setup()
    from django.db import connection

    from bench.bench_app import BARE_TABLE

    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {BARE_TABLE} (id bigserial primary key, chain_id int, n int)"  # noqa: E501
        )


def start_worker() -> subprocess.Popen:
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "automation", "worker", "--pool=prefork",
         "--concurrency=2", "--loglevel=WARNING", "-I", "bench.bench_app",
         "--without-heartbeat", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    from automation.models import Heartbeat

    Heartbeat.objects.all().delete()
    deadline = time.monotonic() + 60
    while not Heartbeat.objects.exists():  # the worker's start-up heartbeat went round
        if time.monotonic() > deadline:
            raise SystemExit("worker did not start")
        time.sleep(0.1)
    return worker


def wait_until(count, target: int, timeout: float = 600) -> float:
    deadline = time.monotonic() + timeout
    while count() < target:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out at {count()}/{target}")
        time.sleep(0.02)
    return time.monotonic()


def bare_round(chains: int) -> float:
    from celery import chain
    from django.db import connection

    from bench.bench_app import BARE_TABLE, bare_step

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {BARE_TABLE}")

    def rows() -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {BARE_TABLE}")  # noqa: S608
            return cursor.fetchone()[0]

    worker = start_worker()
    try:
        started = time.monotonic()
        for i in range(chains):
            chain(bare_step.si(i, 1), bare_step.si(i, 2), bare_step.si(i, 3)).apply_async()
        ended = wait_until(rows, 3 * chains)
    finally:
        worker.terminate()
        worker.wait()
    return 3 * chains / (ended - started)


def engine_round(chains: int, *, via_events: bool) -> float:
    from automation.models import Run
    from automation.services import run_start
    from events.models import Event
    from events.services import emit

    Run.objects.all().delete()
    Event.objects.all().delete()

    def done() -> int:
        return Run.objects.filter(status="succeeded").count()

    worker = start_worker()
    try:
        started = time.monotonic()
        for i in range(chains):
            if via_events:
                emit("bench.noop", {"i": i})
            else:
                run_start(workflow="bench-noop", input={"i": i})
        ended = wait_until(done, chains)
    finally:
        worker.terminate()
        worker.wait()
    failed = Run.objects.exclude(status="succeeded").count()
    if failed:
        raise SystemExit(f"{failed} runs did not succeed")
    return 3 * chains / (ended - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=500, help="chains / runs per round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each (median taken)")
    args = parser.parse_args()

    prepare_database()
    setup_django()
    import bench.bench_app  # noqa: F401  (registers the workflow in this process too)
    from automation.engine import registry

    registry.sync_code_workflows(force=True)

    results: dict[str, list[float]] = {"bare": [], "engine": [], "engine_events": []}
    for _ in range(args.repeat):
        results["bare"].append(bare_round(args.chains))
        results["engine"].append(engine_round(args.chains, via_events=False))
        results["engine_events"].append(engine_round(args.chains, via_events=True))

    median = {name: statistics.median(values) for name, values in results.items()}
    print(f"{'measurement':<52} {'steps/s (median)':>16}  rounds")
    labels = {
        "bare": "bare Celery 3-task chain, 1 INSERT per task",
        "engine": "engine: 3-step no-op workflow (run_start)",
        "engine_events": "engine: 3-step no-op workflow started by an event",
    }
    for name, label in labels.items():
        rounds = ", ".join(f"{v:.0f}" for v in results[name])
        print(f"{label:<52} {median[name]:>16.0f}  {rounds}")
    print(
        f"ratio engine/bare: {median['engine'] / median['bare']:.2f} "
        f"(started by events: {median['engine_events'] / median['bare']:.2f})"
    )


if __name__ == "__main__":
    main()
