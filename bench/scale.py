#!/usr/bin/env python3
"""List pages at scale: admin, operator UI (/app/) and API lists with 1,000,000 events and
100,000 runs: p95 response time and queries per page.

One event and one finished run are made by the project itself, then copied in SQL (20 event
types, 30 days of timestamps; runs 90% succeeded, 5% failed, 5% waiting). Each page is
requested --requests times by a signed-in superuser through Django's test client in this
process (the view, the ORM and the templates; no HTTP server in front), after one warm-up.

    .venv/bin/python bench/scale.py [--events 1000000] [--runs 100000] [--requests 20]
    .venv/bin/python bench/scale.py --smoke
"""

from __future__ import annotations

import argparse
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
    table,
    workdir,
)

DB_NAME = "automation_bench_scale"
PAGES = [
    "/admin/events/event/",
    "/admin/events/event/?type=type.7",
    "/admin/automation/run/",
    "/admin/automation/run/?status__exact=failed",
    "/admin/automation/deadletterrun/",
    "/app/",
    "/app/events/",
    "/app/runs/",
    "/app/runs/?status=waiting",
    "/api/events/",
    "/api/runs/",
    "/api/runs/?status=failed",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20, help="per page")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a CI check")
    args = parser.parse_args()
    if args.smoke:
        args.events, args.runs, args.requests = 20_000, 2_000, 3

    with workdir("bench-scale-") as tmp:
        env = project_env(
            recreate_database(PG, DB_NAME), f"{REDIS_HOST}/12", STATIC_ROOT=str(tmp / "static")
        )
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "collectstatic", "--noinput", "-v0")
        setup_django(env)
        started = time.monotonic()
        fill(args.events, args.runs)
        filled = time.monotonic() - started
        results = measure(args.requests)
    report(args, filled, results)


def _columns(table_name: str, skip: set[str]) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "ORDER BY ordinal_position",
            [table_name],
        )
        return [row[0] for row in cursor.fetchall() if row[0] not in skip]


def fill(events: int, runs: int) -> None:
    from django.db import connection

    import bench.bench_app  # noqa: F401
    from automation.engine import dispatch, registry
    from automation.engine.executor import run_advance
    from automation.engine.runs import run_start
    from events.services import emit

    registry.sync_code_workflows(force=True)

    class Hold:
        def advance(self, *args: str) -> None: ...

        branch = route = advance

    dispatch.set_backend(Hold())
    event = emit("bench.noop", {"order": 1, "customer": "c-1"})
    run = run_start(workflow="bench-noop", event=event)
    run_advance(run.id)
    event_cols = _columns("events_event", {"id", "type", "received_at", "idempotency_key"})
    run_cols = _columns("automation_run", {"id", "status", "created_at", "trigger_event_id"})
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO events_event (id, type, received_at, {', '.join(event_cols)}) "
            "SELECT gen_random_uuid(), 'type.' || (n %% 20), now() - n * interval '2.5 seconds', "
            f"{', '.join('e.' + c for c in event_cols)} FROM events_event e, "
            "generate_series(1, %s) AS n WHERE e.id = %s",
            [events - 1, event.id],
        )
        cursor.execute(
            f"INSERT INTO automation_run (id, status, created_at, trigger_event_id, "
            f"{', '.join(run_cols)}) SELECT gen_random_uuid(), CASE WHEN n %% 20 = 0 THEN "
            "'failed' WHEN n %% 20 = 1 THEN 'waiting' ELSE 'succeeded' END, "
            f"now() - n * interval '25 seconds', NULL, {', '.join('r.' + c for c in run_cols)} "
            "FROM automation_run r, generate_series(1, %s) AS n WHERE r.id = %s",
            [runs - 1, run.id],
        )
        cursor.execute("VACUUM ANALYZE events_event")
        cursor.execute("VACUUM ANALYZE automation_run")


def measure(requests: int) -> dict[str, dict[str, float]]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    admin = get_user_model().objects.create_superuser("bench", "bench@example.com", "x" * 20)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(admin)
    results = {}
    for page in PAGES:
        client.get(page)  # warm-up: templates, caches
        timings, queries = [], 0
        for _ in range(requests):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(page)
                timings.append(1000 * (time.perf_counter() - started))
            if response.status_code != 200:
                raise SystemExit(f"{page} answered {response.status_code}")
            queries = len(captured.captured_queries)
        results[page] = {
            "p50": percentile(timings, 50),
            "p95": percentile(timings, 95),
            "queries": queries,
        }
    return results


def report(args, filled: float, results: dict[str, dict[str, float]]) -> None:
    print(
        f"{args.events:,} events and {args.runs:,} runs (copied in {filled:.0f}s), "
        f"{args.requests} requests per page"
    )
    rows = [(page, r["p50"], r["p95"], r["queries"]) for page, r in results.items()]
    print(table(["page", "p50 ms", "p95 ms", "queries"], rows))
    worst = max(results, key=lambda page: results[page]["p95"])
    print(f"slowest page p95 {results[worst]['p95']:.0f} ms (bar 300 ms): {worst}")


if __name__ == "__main__":
    main()
