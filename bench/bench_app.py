"""What the engine benchmarks run: a 3-step no-op workflow, a workflow that sleeps, and the
bare-Celery baselines (a 3-task chain, one INSERT per task; a task that records when it started).
Imported by the benchmarks and by their workers (-I bench.bench_app)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from celery import shared_task
from django.db import connection

from automation import workflow

BARE_TABLE = "bench_bare_row"
LATENCY_TABLE = "bench_bare_latency"
TABLES_SQL = (
    f"CREATE TABLE IF NOT EXISTS {BARE_TABLE} (id bigserial PRIMARY KEY, chain_id int, n int, "
    "at timestamptz NOT NULL DEFAULT clock_timestamp())",
    f"CREATE TABLE IF NOT EXISTS {LATENCY_TABLE} (id bigserial PRIMARY KEY, "
    "sent double precision NOT NULL, started double precision NOT NULL)",
)


def noop() -> None:
    return None


@workflow("bench-noop", on="bench.noop")
def three_noops(ctx: Any, event: Any) -> None:
    ctx.step("one", noop)
    ctx.step("two", noop)
    ctx.step("three", noop)


@workflow("bench-sleep", on="bench.sleep")
def sleeps(ctx: Any, event: Any) -> None:
    """Sleeps until ``event.data["until"]`` (ISO 8601), then one step: the waiting bench."""
    ctx.sleep_until("nap", datetime.fromisoformat(event.data["until"]))
    ctx.step("woke", noop)


@shared_task(name="bench.bare_step")
def bare_step(chain_id: int, n: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {BARE_TABLE} (chain_id, n) VALUES (%s, %s)", [chain_id, n])  # noqa: S608


@shared_task(name="bench.bare_latency")
def bare_latency(sent: float) -> None:
    started = time.time()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {LATENCY_TABLE} (sent, started) VALUES (%s, %s)",  # noqa: S608
            [sent, started],
        )
