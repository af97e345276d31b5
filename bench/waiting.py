#!/usr/bin/env python3
"""Waiting costs nothing: 100,000 sleeping runs, what they cost while they wait, and how late
their timers fire as they fall due.

One run of a workflow that sleeps is started and advanced by the engine until it sleeps; its
rows (the run, its journal record, its timer) are then copied --runs times in SQL, each copy
with its own id and due time, which is exactly the state the engine leaves a sleeping run in.
--due of them fall due at a steady --due-rate during the measurement, the rest days later.
Two workers (prefork 2) and beat (the timer sweep, every SWEEP_INTERVAL: 1 s by default) run.

    .venv/bin/python bench/waiting.py [--runs 100000] [--due 1000] [--due-rate 20]
    .venv/bin/python bench/waiting.py --smoke

Prints the broker's queue, the workers' memory and CPU while the runs wait, and the lateness
of the timers (due -> fired, due -> the run's next step starting), p50/p99/max.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from datetime import timedelta
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
    start_beat,
    start_worker,
    stop,
    table,
    wait_until,
    workdir,
)

DB_NAME = "automation_bench_waiting"
REDIS_URL = f"{REDIS_HOST}/12"  # shared with bench/engine.py (they do not run together)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000, help="sleeping runs")
    parser.add_argument("--due", type=int, default=1000, help="of which fall due while measured")
    parser.add_argument("--due-rate", type=float, default=20.0, help="timers due per second")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds measured idle")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a CI check")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.due, args.due_rate, args.idle = 2000, 40, 20.0, 2.0

    env = project_env(recreate_database(PG, DB_NAME), REDIS_URL)
    manage(env, "migrate", "--noinput", "-v0")
    setup_django(env)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    created = time.monotonic()
    template = sleeping_template()
    lead = 8.0 + args.runs / 20_000 + args.idle  # the copies and the idle window come first
    clone(template, args.runs, args.due, args.due_rate, lead)
    create_seconds = time.monotonic() - created
    with workdir("bench-waiting-") as tmp:
        log = tmp / "processes.log"
        workers = [start_worker(env, log, name=f"wait{n}") for n in range(2)]
        beat = start_beat(env, log, tmp)
        try:
            time.sleep(3)  # start-up
            idle = measure_idle(workers, beat, args.idle)
            woke = "SELECT count(*) FROM automation_run WHERE status = 'succeeded'"
            wait_until(lambda: _scalar(woke) >= args.due, lead + args.due / args.due_rate + 60,
                       "the due runs to finish", 0.5)  # fmt: skip
            lateness = measure_lateness()
        except SystemExit:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            for process in [*workers, beat]:
                stop(process)
    report(args, create_seconds, idle, lateness)


def _scalar(sql: str) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql)
        value = cursor.fetchone()[0]
    return float(value) if value is not None else 0.0


def sleeping_template() -> str:
    """A run brought to sleep by the engine itself; returns its id."""
    import bench.bench_app  # noqa: F401
    from automation.engine import clock, dispatch, registry
    from automation.engine.executor import run_advance
    from automation.engine.runs import run_start

    registry.sync_code_workflows(force=True)

    class Hold:  # nothing to send: this process advances the run itself
        def advance(self, *args: str) -> None: ...

        branch = route = advance

    previous = dispatch.set_backend(Hold())
    try:
        until = (clock.now() + timedelta(days=30)).isoformat()
        run = run_start(workflow="bench-sleep", input={"until": until})
        outcome = run_advance(run.id)
    finally:
        dispatch.set_backend(previous)
    if outcome != "waiting":
        raise SystemExit(f"the template run did not go to sleep ({outcome})")
    return str(run.id)


def _columns(table_name: str, skip: set[str]) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "ORDER BY ordinal_position",
            [table_name],
        )
        return [row[0] for row in cursor.fetchall() if row[0] not in skip]


def clone(template: str, runs: int, due: int, rate: float, lead: float) -> None:
    """Copy the template's rows ``runs`` times: ``due`` copies fall due ``lead`` seconds from
    now at ``rate`` per second, the others in 30 days."""
    from django.db import connection, transaction

    run_cols = _columns("automation_run", {"id", "input"})
    step_cols = _columns("automation_steprecord", {"id", "run_id", "input", "next_attempt_at"})
    timer_cols = _columns("automation_timer", {"id", "run_id", "due_at"})
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_copies ON COMMIT DROP AS SELECT gen_random_uuid() AS id, "
            "CASE WHEN n <= %s THEN clock_timestamp() + make_interval(secs => %s + n / %s) "
            "ELSE clock_timestamp() + interval '30 days' END AS due "
            "FROM generate_series(1, %s) AS n",
            [due, lead, rate, runs - 1],
        )
        cursor.execute(
            f"INSERT INTO automation_run (id, input, {', '.join(run_cols)}) "
            f"SELECT c.id, jsonb_build_object('until', to_json(c.due)), "
            f"{', '.join('r.' + c for c in run_cols)} "
            "FROM bench_copies c, automation_run r WHERE r.id = %s",
            [template],
        )
        cursor.execute(
            f"INSERT INTO automation_steprecord (run_id, input, next_attempt_at, "
            f"{', '.join(step_cols)}) SELECT c.id, jsonb_build_object('until', to_json(c.due)), "
            f"c.due, {', '.join('s.' + c for c in step_cols)} "
            "FROM bench_copies c, automation_steprecord s WHERE s.run_id = %s",
            [template],
        )
        cursor.execute(
            f"INSERT INTO automation_timer (run_id, due_at, {', '.join(timer_cols)}) "
            f"SELECT c.id, c.due, {', '.join('t.' + c for c in timer_cols)} "
            "FROM bench_copies c, automation_timer t WHERE t.run_id = %s",
            [template],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE automation_run, automation_steprecord, automation_timer")


def _rss_and_cpu(pid: int) -> tuple[float, float]:
    """(resident MiB, CPU seconds) of a process and its children."""
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    rss = cpu = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        rss += int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return rss, cpu


def measure_idle(workers: list, beat, seconds: float) -> dict:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    before = [_rss_and_cpu(w.pid)[1] for w in workers] + [_rss_and_cpu(beat.pid)[1]]
    time.sleep(seconds)
    after = [_rss_and_cpu(w.pid) for w in workers] + [_rss_and_cpu(beat.pid)]
    lists = [q for q in client.keys("celery*") if client.type(q) == b"list"]
    worker_cpu = sum(a[1] - b for a, b in zip(after[:-1], before[:-1], strict=True))
    return {
        "waiting": _scalar("SELECT count(*) FROM automation_run WHERE status = 'waiting'"),
        "queued messages": sum(client.llen(q) for q in lists),
        "unacked messages": client.hlen("unacked"),
        "redis MiB": client.info("memory")["used_memory"] / 2**20,
        "workers MiB": sum(rss for rss, _ in after[:-1]),
        "workers CPU %": 100 * worker_cpu / seconds,
        "beat CPU %": 100 * (after[-1][1] - before[-1]) / seconds,
        "database MiB": _scalar("SELECT pg_database_size(current_database())") / 2**20,
    }


def measure_lateness() -> dict[str, list[float]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1000 * extract(epoch FROM t.fired_at - t.due_at), "
            "1000 * extract(epoch FROM s.started_at - t.due_at) FROM automation_timer t "
            "JOIN automation_steprecord s ON s.run_id = t.run_id AND s.step_id = 'woke' "
            "WHERE t.fired_at IS NOT NULL"
        )
        rows = cursor.fetchall()
    return {"fired": [float(r[0]) for r in rows], "step": [float(r[1]) for r in rows]}


def report(args, create_seconds: float, idle: dict, lateness: dict[str, list[float]]) -> None:
    print(f"{args.runs} sleeping runs (copied in {create_seconds:.1f}s), 2 workers + beat")
    print(f"while they wait ({args.idle:g}s measured):")
    print(table(["", "value"], list(idle.items())))
    print()
    print(f"{args.due} timers falling due at {args.due_rate:g}/s among the others:")
    rows = [
        (label, len(v), percentile(v, 50), percentile(v, 99), max(v, default=float("nan")))
        for label, v in (
            ("due -> timer fired", lateness["fired"]),
            ("due -> the run's next step starts", lateness["step"]),
        )
    ]
    print(table(["lateness", "n", "p50 ms", "p99 ms", "max ms"], rows))
    p99 = percentile(lateness["fired"], 99)
    print(
        f"timer lateness p99 {p99:.0f} ms (bar 1000 ms); queued messages while waiting: "
        f"{idle['queued messages'] + idle['unacked messages']:.0f}; workers CPU "
        f"{idle['workers CPU %']:.1f}%"
    )


if __name__ == "__main__":
    main()
