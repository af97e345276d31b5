#!/usr/bin/env python3
"""Engine throughput and latency next to a bare Celery chain, measured in the same run.

Throughput: a 3-step no-op workflow (started by ``run_start`` and by events) against a bare
Celery 3-task chain that writes one row per task. Each round queues all the work first, then
starts one ``celery worker --pool prefork --concurrency 2`` (two worker processes) and measures
from the first step to the last by the database's own timestamps, so the publisher and the
poller are not competing for the two cores while the worker runs.

Latency: with the worker running, events at a steady --rate per second for --seconds; the time
from an event being received to its run's first step starting (p50/p99), next to the bare
enqueue-to-start latency of a Celery task sent at the same rate. Each stream starts with
--warm-up seconds at the same rate that are reported apart and not counted in p50/p99: the
first events each pool process routes pay for code paths it has not run yet (the bare stream
before warmed only Celery and its connection: the event path's statements, caches and Python's
adaptive interpreter), 10-25 ms each, the emitting process opens its publisher thread and
broker connection, and the backlog this leaves takes a few hundred milliseconds to drain. The
figure is the steady state of a steady rate, as the bar asks; the warm-up lines show the rest.

    .venv/bin/python bench/engine.py [--runs 1000] [--repeat 3] [--rate 100] [--seconds 10]
    .venv/bin/python bench/engine.py --smoke     # seconds, for CI: checks it works, not figures

Uses the database automation_bench_engine and Redis DB 12 (both emptied).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PG,
    REDIS_HOST,
    manage,
    percentile,
    project_env,
    recreate_database,
    setup_django,
    start_worker,
    stop,
    table,
    wait_until,
    workdir,
)

DB_NAME = "automation_bench_engine"
REDIS_URL = f"{REDIS_HOST}/12"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="chains / runs per round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each (median taken)")
    parser.add_argument("--rate", type=float, default=100.0, help="events/s for the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    parser.add_argument(
        "--warm-up", type=float, default=1.0, help="seconds sent first and reported apart"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a CI check")
    parser.add_argument("--json", type=Path, help="also write the medians here (bench/compare.py)")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.repeat, args.rate, args.seconds, args.warm_up = 40, 1, 50.0, 1.0, 0.2

    env = project_env(recreate_database(PG, DB_NAME), REDIS_URL)
    manage(env, "migrate", "--noinput", "-v0")
    setup_django(env)
    from django.db import connection

    import bench.bench_app as app
    from automation.engine import registry

    registry.sync_code_workflows(force=True)
    with connection.cursor() as cursor:
        for sql in app.TABLES_SQL:
            cursor.execute(sql)

    with workdir("bench-engine-") as tmp:
        log = tmp / "worker.log"
        results: dict[str, list[float]] = {"bare": [], "engine": [], "events": []}
        try:
            for _ in range(args.repeat):
                results["bare"].append(bare_round(env, log, args.runs))
                results["engine"].append(engine_round(env, log, args.runs, via_events=False))
                results["events"].append(engine_round(env, log, args.runs, via_events=True))
            latency = latency_runs(env, log, args.rate, args.seconds, args.warm_up)
        except SystemExit:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise
    report(args, results, latency)


# --- throughput -----------------------------------------------------------------------------


def _reset() -> None:
    import redis
    from django.db import connection

    from bench.bench_app import BARE_TABLE, LATENCY_TABLE

    redis.Redis.from_url(REDIS_URL).flushdb()
    with connection.cursor() as cursor:
        cursor.execute(
            f"TRUNCATE {BARE_TABLE}, {LATENCY_TABLE}, automation_run, events_event CASCADE"
        )


def _scalar(sql: str) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql)
        value = cursor.fetchone()[0]
    return float(value) if value is not None else 0.0


def bare_round(env: dict[str, str], log: Path, runs: int) -> float:
    from celery import chain

    from bench.bench_app import BARE_TABLE, bare_step

    _reset()
    for i in range(runs):
        chain(bare_step.si(i, 1), bare_step.si(i, 2), bare_step.si(i, 3)).apply_async()
    worker = start_worker(env, log)
    try:
        count = f"SELECT count(*) FROM {BARE_TABLE}"
        wait_until(lambda: _scalar(count) >= 3 * runs, 600, "the bare chains", 0.2)
    finally:
        stop(worker)
    span = _scalar(f"SELECT extract(epoch FROM max(at) - min(at)) FROM {BARE_TABLE}")
    return 3 * runs / span


def engine_round(env: dict[str, str], log: Path, runs: int, *, via_events: bool) -> float:
    from automation.engine.runs import run_start
    from events.services import emit

    _reset()
    for i in range(runs):
        if via_events:
            emit("bench.noop", {"i": i})
        else:
            run_start(workflow="bench-noop", input={"i": i})
    worker = start_worker(env, log)
    try:
        done = "SELECT count(*) FROM automation_run WHERE status = 'succeeded'"
        settled = "SELECT count(*) FROM automation_run WHERE status IN ('failed', 'cancelled')"
        wait_until(lambda: _scalar(done) + _scalar(settled) >= runs, 600, "the engine's runs", 0.2)
    finally:
        stop(worker)
    if failed := _scalar(settled):
        raise SystemExit(f"{failed:.0f} runs did not succeed")
    span = _scalar(
        "SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM automation_steprecord"
    )
    return 3 * runs / span


# --- latency --------------------------------------------------------------------------------


def _paced(rate: float, seconds: float, send) -> int:
    """Call ``send()`` at a steady ``rate`` for ``seconds``; returns how many were sent."""
    interval, count = 1.0 / rate, int(rate * seconds)
    start = time.monotonic()
    for n in range(count):
        delay = start + n * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        send()
    return count


def _worker_ready(env: dict[str, str], log: Path):
    from automation.models import Heartbeat

    Heartbeat.objects.all().delete()
    worker = start_worker(env, log)
    wait_until(Heartbeat.objects.exists, 60, "the worker's start-up heartbeat")
    return worker


def latency_runs(
    env: dict[str, str], log: Path, rate: float, seconds: float, warm_up: float
) -> dict[str, list[float]]:
    """Both streams, each ``warm_up + seconds`` long without a pause; the latencies of what was
    sent from ``warm_up`` seconds in are the measurement, the ones before are the warm-up."""
    from bench.bench_app import LATENCY_TABLE, bare_latency
    from events.services import emit

    _reset()
    worker = _worker_ready(env, log)
    try:
        bare_from = time.time() + warm_up
        sent = _paced(rate, warm_up + seconds, lambda: bare_latency.delay(time.time()))
        count = f"SELECT count(*) FROM {LATENCY_TABLE}"
        wait_until(lambda: _scalar(count) >= sent, 120, "the bare latency tasks")
        events_from = time.time() + warm_up
        sent_events = _paced(rate, warm_up + seconds, lambda: emit("bench.noop", {}))
        done = "SELECT count(*) FROM automation_run WHERE status = 'succeeded'"
        wait_until(lambda: _scalar(done) >= sent_events, 120, "the event-started runs")
    finally:
        stop(worker)
    bare = f"SELECT 1000 * (started - sent), sent >= {bare_from} FROM {LATENCY_TABLE}"
    engine = (
        "SELECT 1000 * extract(epoch FROM s.started_at - e.received_at), "
        f"e.received_at >= to_timestamp({events_from}) "
        "FROM automation_steprecord s JOIN automation_run r ON r.id = s.run_id "
        "JOIN events_event e ON e.id = r.trigger_event_id WHERE s.step_id = 'one'"
    )
    latency: dict[str, list[float]] = {}
    for name, sql in (("bare", bare), ("engine", engine)):
        rows = _rows(sql)
        latency[name] = [ms for ms, measured in rows if measured]
        latency[f"{name} warm-up"] = [ms for ms, measured in rows if not measured]
    return latency


def _rows(sql: str) -> list[tuple[float, bool]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [(float(ms), bool(measured)) for ms, measured in cursor.fetchall()]


# --- report ---------------------------------------------------------------------------------


def report(args: argparse.Namespace, results: dict[str, list[float]], latency: dict) -> None:
    median = {name: statistics.median(values) for name, values in results.items()}
    labels = {
        "bare": "bare Celery 3-task chain, 1 INSERT per task",
        "engine": "engine: 3-step no-op workflow (run_start)",
        "events": "engine: 3-step no-op workflow started by an event",
    }
    print(f"throughput: {args.runs} chains/runs per round, prefork 2, median of {args.repeat}")
    rows = [
        (label, median[name], ", ".join(f"{v:.0f}" for v in results[name]))
        for name, label in labels.items()
    ]
    print(table(["measurement", "steps/s", "rounds"], rows))
    print()
    print(
        f"latency at {args.rate:g}/s for {args.seconds:g}s, after {args.warm_up:g}s of warm-up "
        "at the same rate (a freshly started worker; shown apart, not counted)"
    )
    rows = [
        ("bare: Celery enqueue -> task start", *_spread(latency["bare"])),
        ("engine: event received -> first step starts", *_spread(latency["engine"])),
        ("  warm-up: bare", *_spread(latency["bare warm-up"])),
        ("  warm-up: engine", *_spread(latency["engine warm-up"])),
    ]
    print(table(["measurement", "n", "p50 ms", "p99 ms"], rows))
    ratio = median["engine"] / median["bare"]
    events = median["events"] / median["bare"]
    p99 = percentile(latency["engine"], 99)
    print(
        f"ratio engine/bare: {ratio:.2f} (started by events: {events:.2f}; bar 0.60); "
        f"event-to-first-step p99 {p99:.1f} ms (bar 25 ms)"
    )
    if args.json:
        figures = {f"{name} steps/s": value for name, value in median.items()}
        for name, values in latency.items():
            figures[f"{name} p50 ms"], figures[f"{name} p99 ms"] = _spread(values)[1:]
        args.json.write_text(json.dumps(figures, indent=2))


def _spread(values: list[float]) -> tuple[int, float, float]:
    if not values:
        return 0, float("nan"), float("nan")
    return len(values), percentile(values, 50), percentile(values, 99)


if __name__ == "__main__":
    main()
