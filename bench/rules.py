#!/usr/bin/env python3
"""Routing with event rules next to routing without, measured in the same run.

Throughput: --events events queued first, then one ``celery worker --pool prefork
--concurrency 2`` routes them; events/s from the first routing to the last (the database's
own ``routed_at``). Once with no rule, once with 10 active rules of mixed kinds (two of each:
sequence, absence, threshold, aggregate, anomaly) watching those events and 10,000 live keys
(open partial matches and windows) already in their tables. Every event is seen by two rules.
Both twice: events no workflow wants (routing is all there is: the harshest ratio), and events
that each start a one-step workflow, run by the routing task (routing as it is used).

Latency: with the worker running and a threshold rule (2 events of a key in 1 minute), pairs
of events at a steady --rate per second for --seconds; the time from the event that completes
a pair being received to its derived event being stored (p50/p99). The first --warm-up
seconds are reported apart, as in bench/engine.py.

    .venv/bin/python bench/rules.py [--events 3000] [--repeat 3] [--rate 100] [--seconds 10]
    .venv/bin/python bench/rules.py --smoke     # seconds, for CI: checks it works, not figures

Uses the database automation_bench_rules and Redis DB 12 (both emptied).
"""

from __future__ import annotations

import argparse
import statistics
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
    start_worker,
    stop,
    table,
    wait_until,
    workdir,
)

DB_NAME = "automation_bench_rules"
REDIS_URL = f"{REDIS_HOST}/12"
LIVE_KEYS = 10_000
TYPES = ("bench.a", "bench.b", "bench.c", "bench.d", "bench.e")


def rules() -> list[dict]:
    """Two rules of each kind; the two of a kind watch the same type, so each event is seen by
    two rules."""
    a, b, c, d, e = TYPES
    out = []
    for n in (1, 2):
        out += [
            {"name": f"seq-{n}", "kind": "sequence", "match": [{"event": a}, {"event": b}],
             "correlate": "data.k", "within": "1h", "emit": {"type": f"derived.seq{n}"}},
            {"name": f"abs-{n}", "kind": "absence", "match": [{"event": b}, {"event": a}],
             "correlate": "data.k", "within": "1h", "emit": {"type": f"derived.abs{n}"}},
            {"name": f"thr-{n}", "kind": "threshold", "event": c, "correlate": "data.k",
             "count": 1000, "within": "1h", "emit": {"type": f"derived.thr{n}"}},
            {"name": f"agg-{n}", "kind": "aggregate", "event": d, "correlate": "data.k",
             "value": "data.v", "function": "sum", "every": "1h",
             "emit": {"type": f"derived.agg{n}"}},
            {"name": f"ano-{n}", "kind": "anomaly", "event": e, "correlate": "data.k",
             "every": "1h", "emit": {"type": f"derived.ano{n}"}},
        ]  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000, help="events per round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each (median taken)")
    parser.add_argument("--rate", type=float, default=100.0, help="events/s for the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    parser.add_argument("--warm-up", type=float, default=1.0, help="seconds reported apart")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a CI check")
    args = parser.parse_args()
    if args.smoke:
        args.events, args.repeat, args.rate, args.seconds, args.warm_up = 200, 1, 50.0, 1.0, 0.2

    env = project_env(recreate_database(PG, DB_NAME), REDIS_URL)
    manage(env, "migrate", "--noinput", "-v0")
    setup_django(env)
    with workdir("bench-rules-") as tmp:
        log = tmp / "worker.log"
        results: dict[str, list[float]] = {
            "none": [],
            "rules": [],
            "none+run": [],
            "rules+run": [],
        }
        try:
            for _ in range(args.repeat):
                for name in results:
                    results[name].append(
                        routing_round(
                            env,
                            log,
                            args.events,
                            with_rules=name.startswith("rules"),
                            with_runs=name.endswith("+run"),
                        )
                    )
            latency = latency_run(env, log, args.rate, args.seconds, args.warm_up)
        except SystemExit:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise
    report(args, results, latency)


def _reset() -> None:
    import redis
    from django.db import connection

    redis.Redis.from_url(REDIS_URL).flushdb()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE rules_rule, events_event, automation_run, automation_workflow CASCADE"
        )


def _scalar(sql: str) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql)
        value = cursor.fetchone()[0]
    return float(value) if value is not None else 0.0


def _live_keys() -> None:
    """10,000 open partial matches and windows, spread over the ten rules."""
    from django.utils import timezone

    from rules.models import Rule, RuleKey

    now = timezone.now()
    found = list(Rule.objects.all())
    RuleKey.objects.bulk_create(
        [
            RuleKey(
                rule=found[n % len(found)],
                key=f"live-{n}",
                state={"step": 1, "count": 1, "sum": 1.0, "min": 1.0, "max": 1.0, "history": []},
                opened_at=now,
                due_at=now + timedelta(hours=1),
            )
            for n in range(LIVE_KEYS)
        ],
        batch_size=2000,
    )


def routing_round(
    env: dict[str, str], log: Path, events: int, *, with_rules: bool, with_runs: bool
) -> float:
    from automation.commands import workflow_definition_save
    from events.services import emit
    from rules.services import rule_save

    _reset()
    if with_runs:
        workflow_definition_save(
            definition={
                "name": "bench-subscriber",
                "trigger": {"event": "bench.*"},
                "steps": [{"id": "one", "action": "log", "input": {"message": "hi"}}],
            }
        )
    if with_rules:
        for definition in rules():
            rule_save(definition=definition)
        _live_keys()
    for i in range(events):
        emit(TYPES[i % len(TYPES)], {"k": f"key-{i % 1000}", "v": i})
    worker = start_worker(env, log)
    try:
        routed = "SELECT count(*) FROM events_event WHERE routed_at IS NOT NULL"
        wait_until(lambda: _scalar(routed) >= events, 600, "the events to be routed", 0.2)
    finally:
        stop(worker)
    span = _scalar("SELECT extract(epoch FROM max(routed_at) - min(routed_at)) FROM events_event")
    return events / span


def latency_run(
    env: dict[str, str], log: Path, rate: float, seconds: float, warm_up: float
) -> dict[str, list[float]]:
    from events.services import emit
    from rules.services import rule_save

    _reset()
    rule_save(
        definition={
            "name": "pairs",
            "kind": "threshold",
            "event": "bench.login",
            "correlate": "data.k",
            "count": 2,
            "within": "1m",
            "emit": {"type": "bench.pair"},
        }
    )
    worker = start_worker(env, log)
    sent = 0
    try:
        time.sleep(2)  # the worker's start-up
        interval, count = 1.0 / rate, int(rate * (warm_up + seconds))
        measured_from = time.time() + warm_up
        start = time.monotonic()
        for n in range(count):
            delay = start + n * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            emit("bench.login", {"k": n // 2})
            sent += 1
        pairs = "SELECT count(*) FROM events_event WHERE type = 'bench.pair'"
        wait_until(lambda: _scalar(pairs) >= sent // 2, 120, "the derived events")
    finally:
        stop(worker)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1000 * extract(epoch FROM d.received_at - e.received_at), "
            f"e.received_at >= to_timestamp({measured_from}) FROM events_event d "
            "JOIN events_event e ON e.id::text = d.causation_id WHERE d.type = 'bench.pair'"
        )
        rows = [(float(ms), bool(measured)) for ms, measured in cursor.fetchall()]
    return {
        "measured": [ms for ms, measured in rows if measured],
        "warm-up": [ms for ms, measured in rows if not measured],
    }


def report(args: argparse.Namespace, results: dict[str, list[float]], latency: dict) -> None:
    median = {name: statistics.median(values) for name, values in results.items()}
    print(f"routing throughput: {args.events} events per round, prefork 2, median of {args.repeat}")
    labels = {
        "none": "no workflow wants them: no rules",
        "rules": f"  10 rules (2 per kind), {LIVE_KEYS:,} live keys, each event seen by 2",
        "none+run": "each starts a one-step run: no rules",
        "rules+run": "  the same 10 rules and live keys",
    }
    rows = [
        (label, median[name], ", ".join(f"{v:.0f}" for v in results[name]))
        for name, label in labels.items()
    ]
    print(table(["measurement", "events/s", "rounds"], rows))
    print()
    print(f"threshold rule: completing event received -> derived event stored, {args.rate:g}/s")
    rows = [
        ("measured", *_spread(latency["measured"])),
        ("  warm-up", *_spread(latency["warm-up"])),
    ]
    print(table(["measurement", "n", "p50 ms", "p99 ms"], rows))
    ratio = median["rules"] / median["none"]
    with_runs = median["rules+run"] / median["none+run"]
    p99 = percentile(latency["measured"], 99) if latency["measured"] else float("nan")
    print(
        f"ratio rules/none: {ratio:.2f} routing alone, {with_runs:.2f} with a run per event "
        f"(bar 0.80); threshold derived-event p99 {p99:.1f} ms (bar 50 ms)"
    )


def _spread(values: list[float]) -> tuple[int, float, float]:
    if not values:
        return 0, float("nan"), float("nan")
    return len(values), percentile(values, 50), percentile(values, 99)


if __name__ == "__main__":
    main()
