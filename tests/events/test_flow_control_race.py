"""Two routing workers deciding for the same flow-control key at the same moment: each routes
its own event in its own thread and transaction (committed, as workers do), and the limit
holds, the debounce opens one run. Run on SQLite and on PostgreSQL (DATABASE_URL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from automation.commands import workflow_definition_save
from automation.engine import dispatch
from automation.models import FlowKey, Run, RunStatus, Timer, TriggerOutcome
from events import publisher
from events.routing import event_route
from events.services import emit

pytestmark = pytest.mark.django_db(transaction=True)
ROUNDS = 4


class _Recorder:
    """Keeps the messages instead of sending them: only the routing is under test."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []

    def advance(self, run_id: str, priority: int = 0) -> None:
        self.sent.append(("advance", (run_id,)))

    def branch(self, run_id: str, step_id: str) -> None:
        self.sent.append(("branch", (run_id, step_id)))

    def route(self, event_id: str) -> None:
        self.sent.append(("route", (event_id,)))


@pytest.fixture(autouse=True)
def slow_decisions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Widen the window between reading a key's state and writing it, where two workers
    without the row lock would both see room under the limit."""
    from automation.engine import flow

    real_times = flow._times

    def slow_times(values: list[str]) -> Any:
        time.sleep(0.05)
        return real_times(values)

    monkeypatch.setattr(flow, "_times", slow_times)
    real_again_later = flow.run_start_again_later

    def slow_again_later(**kwargs: Any) -> bool:
        time.sleep(0.05)
        return real_again_later(**kwargs)

    monkeypatch.setattr(flow, "run_start_again_later", slow_again_later)


@pytest.fixture(autouse=True)
def recorder() -> Iterator[_Recorder]:
    backend = _Recorder()
    previous = dispatch.set_backend(backend)
    previous_router = publisher.set_router(backend.route)
    yield backend
    dispatch.set_backend(previous)
    publisher.set_router(previous_router)


def declare(**trigger: Any) -> None:
    workflow_definition_save(
        definition={
            "name": "raced",
            "trigger": {"event": "order.updated", **trigger},
            "steps": [{"id": "note", "action": "log", "input": {"message": "hi"}}],
        }
    )


def route_together(event_ids: list[Any]) -> None:
    """Route each event in a thread of its own, all released at once."""
    barrier = threading.Barrier(len(event_ids))
    failures: list[BaseException] = []

    def work(event_id: Any) -> None:
        try:
            barrier.wait(timeout=10)
            event_route(event_id=event_id)
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(event_id,)) for event_id in event_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures


def test_two_workers_racing_on_a_new_rate_limit_key_start_one_run():
    declare(rate_limit={"key": "trigger.data.customer", "limit": 1, "period": "1h"})
    for n in range(ROUNDS):  # each round a key no event had before: both create its row
        events = [emit("order.updated", {"customer": f"c{n}"}) for _ in range(2)]
        route_together([event.id for event in events])
        outcomes = TriggerOutcome.objects.filter(event__in=events)
        assert sorted(o.outcome for o in outcomes) == ["skipped", "started"]
        assert Run.objects.filter(trigger_event__in=events).count() == 1
    assert FlowKey.objects.count() == ROUNDS


def test_two_workers_racing_on_a_known_rate_limit_key_pass_it_once():
    declare(rate_limit={"key": "trigger.data.customer", "limit": 2, "period": "1h"})
    event_route(event_id=emit("order.updated", {"customer": "acme"}).id)
    events = [emit("order.updated", {"customer": "acme"}) for _ in range(2)]
    route_together([event.id for event in events])
    outcomes = TriggerOutcome.objects.filter(event__in=events)
    assert sorted(o.outcome for o in outcomes) == ["skipped", "started"]
    assert Run.objects.count() == 2


def test_two_workers_racing_on_a_debounce_key_open_one_run():
    declare(debounce={"key": "trigger.data.order_id", "period": "5s"})
    for n in range(ROUNDS):
        events = [emit("order.updated", {"order_id": n, "i": i}) for i in range(2)]
        route_together([event.id for event in events])
        if n % 2:  # and a third on the open run, against a fourth
            more = [emit("order.updated", {"order_id": n, "i": i}) for i in (2, 3)]
            route_together([event.id for event in more])
            events += more
        outcomes = list(TriggerOutcome.objects.filter(event__in=events))
        assert {o.outcome for o in outcomes} == {"debounced"}
        assert len({o.run_id for o in outcomes}) == 1  # both ended up in the one run
        run = Run.objects.get(id=outcomes[0].run_id)
        assert run.status == RunStatus.WAITING
        # It runs with the event routed last.
        last = max(outcomes, key=lambda o: o.created_at)
        assert run.trigger_event_id == last.event_id
        assert Timer.objects.filter(run=run, fired_at__isnull=True).count() == 1
    assert Run.objects.count() == ROUNDS


def test_two_workers_racing_on_a_throttle_key_delay_the_second():
    declare(throttle={"key": "trigger.data.customer", "limit": 1, "period": "1m"})
    for n in range(ROUNDS):
        events = [emit("order.updated", {"customer": f"c{n}"}) for _ in range(2)]
        route_together([event.id for event in events])
        outcomes = TriggerOutcome.objects.filter(event__in=events)
        assert sorted(o.outcome for o in outcomes) == ["delayed", "started"]
        runs = Run.objects.filter(trigger_event__in=events)
        assert sorted(run.status for run in runs) == ["pending", "waiting"]


def test_two_workers_racing_on_a_batch_key_fill_one_batch():
    declare(batch={"key": "trigger.data.tenant", "max_size": 3, "timeout": "1m"})
    for n in range(ROUNDS):
        events = [emit("order.updated", {"tenant": f"t{n}", "i": i}) for i in range(3)]
        event_route(event_id=events[0].id)  # opens the batch
        route_together([event.id for event in events[1:]])  # the two that fill it
        outcomes = list(TriggerOutcome.objects.filter(event__in=events))
        assert {o.outcome for o in outcomes} == {"batched"}
        assert len({o.run_id for o in outcomes}) == 1
        run = Run.objects.get(id=outcomes[0].run_id)
        assert run.status == RunStatus.PENDING  # full: released at once, exactly once
        assert Timer.objects.filter(run=run, fired_at__isnull=True).count() == 0
    assert Run.objects.count() == ROUNDS
    assert not FlowKey.objects.filter(run__isnull=False).exists()  # every batch closed
