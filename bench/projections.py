#!/usr/bin/env python3
"""Projection folding throughput next to the same handler without the machinery, same run.

The example projection (examples/projections.py: orders and revenue per customer) folds N
stored ``example.order.placed`` events on PostgreSQL, 500 per transaction:

- bare:       the handler called on each event in log order, one transaction per 500 events,
              nothing else (what a hand-written management command would do);
- projection: ``rebuild_projection``: the same, plus a savepoint per event (a failing event is
              undone alone), the checkpoint locked and moved in each transaction;
- upcast:     the same rebuild with the events stored under v1 of a schema whose v2 renames,
              moves and defaults a field (three declarative steps per event).

    .venv/bin/python bench/projections.py [--events 20000] [--rounds 3]

Needs PostgreSQL (BENCH_PG; it creates and drops automation_bench_projections). The last line
is the ratio projection / bare (and upcast / bare).
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
    drop_database,
    manage,
    project_env,
    recreate_database,
    setup_django,
    table,
)

DB_NAME = "automation_bench_projections"
NAME = "example_customer_orders"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="seconds, for CI: no figures")
    args = parser.parse_args()
    if args.smoke:
        args.events, args.rounds = 500, 1
    url = recreate_database(PG, DB_NAME)
    env = project_env(url, "redis://127.0.0.1:6379/12", EXAMPLES="true")
    try:
        manage(env, "migrate", "--noinput", "-v0")
        setup_django(env)
        report(measure(args.events, args.rounds), args.events)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(PG, DB_NAME)


def store(count: int, *, version: int | None) -> None:
    from django.utils import timezone

    from events.models import Event

    start = timezone.now() - timedelta(hours=1)
    field = "price" if version == 1 else "amount"
    Event.objects.bulk_create(
        Event(
            type="example.order.placed",
            source="bench",
            data={"customer": f"c{n % 100}", field: "1.5"},
            received_at=start + timedelta(microseconds=n),
            schema_version=version,
        )
        for n in range(count)
    )


def bare(batch: int = 500) -> None:
    from django.db import transaction

    from events.models import Event
    from examples.models import CustomerOrders
    from examples.projections import example_customer_orders

    CustomerOrders.objects.all().delete()
    events = Event.objects.filter(type="example.order.placed").order_by("received_at", "id")
    last = None
    while True:
        page = events if last is None else events.filter(received_at__gt=last)
        rows = list(page[:batch])
        if not rows:
            return
        with transaction.atomic():
            for event in rows:
                example_customer_orders(event)
        last = rows[-1].received_at


def timed(fn, count: int) -> float:
    began = time.perf_counter()
    fn()
    return count / (time.perf_counter() - began)


def measure(count: int, rounds: int) -> dict[str, list[float]]:
    from django.conf import settings

    from events import projections, schemas
    from events.models import Event, EventSchema
    from examples.models import CustomerOrders

    settings.PROJECTION_SETTLE_SECONDS = 0
    rates: dict[str, list[float]] = {"bare": [], "projection": [], "upcast": []}
    store(count, version=None)
    for _ in range(rounds):
        rates["bare"].append(timed(bare, count))
        rates["projection"].append(timed(lambda: projections.projection_rebuild(NAME), count))
    expected = CustomerOrders.objects.get(customer="c0").orders
    assert expected == count // 100 + (1 if count % 100 else 0), "the fold lost events"
    Event.objects.all().delete()
    EventSchema.objects.create(type="example.order.placed", version=1, schema={})
    store(count, version=1)
    EventSchema.objects.create(
        type="example.order.placed",
        version=2,
        schema={},
        compatibility="none",
        upcast=[
            {"rename": {"from": "price", "to": "amount"}},
            {"move": {"from": "customer", "to": "who.customer"}},
            {"move": {"from": "who.customer", "to": "customer"}},
            {"default": {"path": "currency", "value": "EUR"}},
        ],
    )
    schemas.cache_clear()
    for _ in range(rounds):
        rates["upcast"].append(timed(lambda: projections.projection_rebuild(NAME), count))
    assert CustomerOrders.objects.get(customer="c0").revenue > 0, "the upcast lost amounts"
    return rates


def report(rates: dict[str, list[float]], count: int) -> None:
    median = {name: statistics.median(values) for name, values in rates.items()}
    rows = [(name, f"{median[name]:.0f}", f"{median[name] / median['bare']:.2f}") for name in rates]
    print(f"{count} events, median of the rounds (events/s)")
    print(table(["fold", "events/s", "vs bare"], rows))
    print(
        f"projection / bare = {median['projection'] / median['bare']:.2f}; "
        f"upcast / bare = {median['upcast'] / median['bare']:.2f}"
    )


if __name__ == "__main__":
    main()
