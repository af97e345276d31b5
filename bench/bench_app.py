"""What the engine benchmark runs: a 3-step no-op workflow, and the bare-Celery baseline (a
3-task chain, one INSERT per task). Imported by the benchmark and by its workers (-I)."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import connection

from automation import workflow

BARE_TABLE = "bench_bare_row"


def noop() -> None:
    return None


@workflow("bench-noop", on="bench.noop")
def three_noops(ctx: Any, event: Any) -> None:
    ctx.step("one", noop)
    ctx.step("two", noop)
    ctx.step("three", noop)


@shared_task(name="bench.bare_step")
def bare_step(chain_id: int, n: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {BARE_TABLE} (chain_id, n) VALUES (%s, %s)", [chain_id, n])  # noqa: S608
