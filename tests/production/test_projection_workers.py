"""Projections on the production path: real Celery workers on Redis fold the log, several
passes racing on the same projection, one worker killed with kill -9 half-way; every event is
applied exactly once (the example projection counts orders per customer)."""

from __future__ import annotations

import pytest
from celery import Celery
from django.db import transaction

from automation.models import Heartbeat
from events.models import Event, ProjectionCheckpoint
from events.services import emit
from examples.models import CustomerOrders
from tests.processes import celery_worker, kill_hard, project_env, wait_for

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

NAME = "example_customer_orders"
CUSTOMERS = 7


@pytest.fixture
def env(redis_url) -> dict[str, str]:
    return project_env(
        DJANGO_SETTINGS_MODULE="tests.settings",
        CELERY_BROKER_URL=redis_url,
        REDIS_URL=redis_url,
        SWEEP_INTERVAL="1",
        PROJECTION_SETTLE_SECONDS="1",
    )


@pytest.fixture
def broker(redis_url) -> Celery:
    return Celery("test-client", broker=redis_url)


def place_orders(count: int, start: int = 0) -> None:
    with transaction.atomic():
        for n in range(start, start + count):
            emit("example.order.placed", {"customer": f"c{n % CUSTOMERS}", "amount": "1"})


def expected(total: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in range(total):
        counts[f"c{n % CUSTOMERS}"] = counts.get(f"c{n % CUSTOMERS}", 0) + 1
    return counts


def folded() -> dict[str, int]:
    return dict(CustomerOrders.objects.values_list("customer", "orders"))


def caught_up(total: int):
    def check() -> bool:
        checkpoint = ProjectionCheckpoint.objects.filter(name=NAME).first()
        last = Event.objects.order_by("-received_at", "-id").first()
        return checkpoint is not None and last is not None and checkpoint.last_event_id == last.id

    return check


def test_racing_passes_on_two_workers_apply_each_event_once(env, broker, tmp_path):
    total = 400
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    with (
        celery_worker(env, logs[0], concurrency=2, beat=True),
        celery_worker(env, logs[1], concurrency=2),
    ):
        wait_for(Heartbeat.objects.exists, timeout=40, message=f"no worker:\n{logs[0].read_text()}")
        for batch in range(4):
            place_orders(total // 4, start=batch * total // 4)
            for _ in range(8):  # passes racing with beat's and with each other
                broker.send_task("events.project")
        wait_for(
            caught_up(total),
            timeout=90,
            message=f"the projection did not catch up:\n{logs[0].read_text()[-3000:]}",
        )
    assert folded() == expected(total)
    assert ProjectionCheckpoint.objects.get(name=NAME).applied == total
    assert sum(CustomerOrders.objects.values_list("revenue", flat=True)) == total


def test_a_worker_killed_half_way_leaves_nothing_applied_twice_or_missed(env, tmp_path):
    total = 3000
    first, second = tmp_path / "killed.log", tmp_path / "after.log"
    place_orders(total)
    with celery_worker(env, first, concurrency=1, beat=True) as worker:
        wait_for(
            lambda: ProjectionCheckpoint.objects.filter(name=NAME, applied__gt=0).exists(),
            timeout=60,
            message=f"the projection never started:\n{first.read_text()[-3000:]}",
        )
        kill_hard(worker)  # likely in the middle of a batch: its transaction never commits
    partial = ProjectionCheckpoint.objects.get(name=NAME).applied
    assert sum(folded().values()) == partial  # what was committed is exactly what was counted
    with celery_worker(env, second, concurrency=1, beat=True):
        wait_for(
            caught_up(total),
            timeout=120,
            message=f"the projection did not catch up:\n{second.read_text()[-3000:]}",
        )
    assert folded() == expected(total)
    assert ProjectionCheckpoint.objects.get(name=NAME).applied == total
