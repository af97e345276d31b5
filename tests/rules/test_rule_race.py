"""Two routing workers (and two sweeps) deciding for the same rule window at the same moment:
each works in its own thread and transaction, committed as workers do, and the window fires
exactly once. Run on SQLite and on PostgreSQL (DATABASE_URL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection

from automation.engine import clock
from automation.engine.durations import parse_duration
from events import publisher
from events.models import Event
from events.routing import event_route
from events.services import emit
from rules import evaluate, kinds
from rules.models import EventCause, RuleKey
from rules.services import rule_save

pytestmark = pytest.mark.django_db(transaction=True)
ROUNDS = 4


@pytest.fixture(autouse=True)
def routed_by_hand() -> Iterator[list[Any]]:
    """Keep the "route event X" messages: the test routes each event itself, in threads."""
    sent: list[Any] = []
    previous = publisher.set_router(sent.append)
    yield sent
    publisher.set_router(previous)


@pytest.fixture(autouse=True)
def slow_decisions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Widen the window between reading a key's events and deciding, where two workers without
    the row lock would both see the window complete."""
    real_held, real_count = kinds.KeyState.held, kinds.KeyState.held_count

    def slow_held(self: kinds.KeyState) -> list[Any]:
        found = real_held(self)
        time.sleep(0.05)
        return found

    def slow_count(self: kinds.KeyState) -> int:
        found = real_count(self)
        time.sleep(0.05)
        return found

    monkeypatch.setattr(kinds.KeyState, "held", slow_held)
    monkeypatch.setattr(kinds.KeyState, "held_count", slow_count)


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    yield
    clock.reset()


def together(work: Callable[[Any], Any], items: list[Any]) -> None:
    """``work(item)`` for each item in a thread of its own, all released at once."""
    barrier = threading.Barrier(len(items))
    failures: list[BaseException] = []

    def run(item: Any) -> None:
        try:
            barrier.wait(timeout=10)
            work(item)
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures


def test_two_workers_completing_one_threshold_window_emit_one_event():
    rule_save(
        definition={
            "name": "raced",
            "kind": "threshold",
            "event": "login.failed",
            "correlate": "data.user",
            "count": 3,
            "within": "10m",
            "emit": {"type": "account.suspicious"},
        }
    )
    for n in range(ROUNDS):  # odd rounds: a key no event had before, both create its row
        events = [emit("login.failed", {"user": f"u{n}"}) for _ in range(4)]
        for event in events[:2]:
            event_route(event_id=event.id)
        together(lambda event: event_route(event_id=event.id), events[2:])
        [fired] = Event.objects.filter(type="account.suspicious", subject=f"u{n}")
        assert EventCause.objects.filter(derived=fired).count() == 3
    assert Event.objects.filter(type="account.suspicious").count() == ROUNDS


def test_two_workers_opening_one_sequence_key_open_one_partial_match():
    rule_save(
        definition={
            "name": "raced-sequence",
            "kind": "sequence",
            "match": [{"event": "a.happened"}, {"event": "b.happened"}],
            "correlate": "data.k",
            "within": "1h",
            "emit": {"type": "a.then.b"},
        }
    )
    for n in range(ROUNDS):
        firsts = [emit("a.happened", {"k": n}) for _ in range(2)]
        together(lambda event: event_route(event_id=event.id), firsts)
        assert RuleKey.objects.get(key=str(n)).state == {"step": 1}
        event_route(event_id=emit("b.happened", {"k": n}).id)
    assert Event.objects.filter(type="a.then.b").count() == ROUNDS


def test_two_sweeps_racing_on_a_due_absence_fire_it_once():
    rule_save(
        definition={
            "name": "raced-absence",
            "kind": "absence",
            "match": [{"event": "order.created"}, {"event": "order.paid"}],
            "correlate": "data.order_id",
            "within": "5m",
            "emit": {"type": "order.unpaid"},
        }
    )
    for n in range(ROUNDS):
        event_route(event_id=emit("order.created", {"order_id": n}).id)
    clock.advance(parse_duration("6m"))
    together(lambda _: evaluate.rules_sweep(), [1, 2])
    unpaid = Event.objects.filter(type="order.unpaid")
    assert sorted(e.subject for e in unpaid) == [str(n) for n in range(ROUNDS)]
