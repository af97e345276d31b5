"""What the engine benchmarks run: a 3-step no-op workflow, a workflow that sleeps, and the
bare-Celery baselines (a 3-task chain, one INSERT per task; a task that records when it started).
Imported by the benchmarks and by their workers (-I bench.bench_app)."""

from __future__ import annotations

import time
import uuid
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
        cursor.execute(f"INSERT INTO {BARE_TABLE} (chain_id, n) VALUES (%s, %s)", [chain_id, n])


@shared_task(name="bench.bare_latency")
def bare_latency(sent: float) -> None:
    started = time.time()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {LATENCY_TABLE} (sent, started) VALUES (%s, %s)",
            [sent, started],
        )


EXECUTIONS_TABLE = "bench_executions"
RECORDED_TABLE = "bench_recorded"
# Every execution of a fault-test step (at-least-once: a killed worker's step runs again), and
# every time a step's result was recorded (exactly once: a trigger writes a row each time a
# journal record becomes "succeeded"; two rows for one step = recorded twice).
FAULT_SQL = (
    f"CREATE TABLE IF NOT EXISTS {EXECUTIONS_TABLE} (id bigserial PRIMARY KEY, run_id uuid, "
    "step_id text, at timestamptz NOT NULL DEFAULT clock_timestamp())",
    f"CREATE TABLE IF NOT EXISTS {RECORDED_TABLE} (id bigserial PRIMARY KEY, run_id uuid, "
    "step_id text, output jsonb, at timestamptz NOT NULL DEFAULT clock_timestamp())",
    f"""CREATE OR REPLACE FUNCTION bench_record() RETURNS trigger AS $$
    BEGIN
      IF NEW.status = 'succeeded' AND (TG_OP = 'INSERT' OR OLD.status <> 'succeeded'
                                      OR OLD.output IS DISTINCT FROM NEW.output) THEN
        INSERT INTO {RECORDED_TABLE} (run_id, step_id, output)
        VALUES (NEW.run_id, NEW.step_id, NEW.output);
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS bench_record ON automation_steprecord",
    "CREATE TRIGGER bench_record AFTER INSERT OR UPDATE ON automation_steprecord "
    "FOR EACH ROW EXECUTE FUNCTION bench_record()",
)


def fault_step(run_id: str, step_id: str, seconds: float) -> dict[str, str]:
    """A step that takes a little time (so kills land mid-step) and logs each execution."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {EXECUTIONS_TABLE} (run_id, step_id) VALUES (%s, %s)",
            [run_id, step_id],
        )
    time.sleep(seconds)
    return {"token": uuid.uuid4().hex}


@workflow("bench-fault", on="bench.fault")
def three_slow_steps(ctx: Any, event: Any) -> None:
    seconds = float(event.data.get("step_seconds", 0.02))
    for step_id in ("one", "two", "three"):
        ctx.step(step_id, fault_step, ctx.run_id, step_id, seconds)
