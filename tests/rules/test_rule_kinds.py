"""Each kind of rule end to end: events are stored and routed, the rule keeps its state in rows,
deadlines and window ends fire on the sweep, and the derived event is stored, routed and linked
to every event that made it. Run on SQLite and on PostgreSQL (DATABASE_URL)."""

from __future__ import annotations

from typing import Any

import pytest

from automation.commands import workflow_definition_save
from automation.models import Run, RunStatus
from events.models import Event
from rules.models import EventCause, RuleEvent, RuleKey
from rules.services import rule_save

pytestmark = pytest.mark.django_db


def derived(event_type: str) -> list[Event]:
    return list(Event.objects.filter(type=event_type).order_by("received_at"))


def causes(event: Event) -> set[Any]:
    return set(EventCause.objects.filter(derived=event).values_list("cause_id", flat=True))


def test_absence_fires_after_its_deadline_through_the_sweep(workflow_harness):
    rule_save(
        definition={
            "name": "unpaid-orders",
            "kind": "absence",
            "match": [{"event": "order.created"}, {"event": "order.paid"}],
            "correlate": "data.order_id",
            "within": "30m",
            "emit": {"type": "order.unpaid", "data": {"order_id": "{{ events[0].data.order_id }}"}},
        }
    )
    unpaid = workflow_harness.emit("order.created", {"order_id": 1})
    paid = workflow_harness.emit("order.created", {"order_id": 2})
    workflow_harness.emit("order.paid", {"order_id": 2})
    workflow_harness.emit("order.paid", {"order_id": 3})  # never created: nothing opens
    assert RuleKey.objects.filter(opened_at__isnull=False).count() == 1

    workflow_harness.advance_time("29m")
    assert derived("order.unpaid") == []
    workflow_harness.advance_time("1m")
    [event] = derived("order.unpaid")
    assert event.data == {"order_id": 1}
    assert event.source == "rule:unpaid-orders"
    assert event.subject == "1"
    assert event.causation_id == str(unpaid.id)
    assert causes(event) == {unpaid.id}
    assert event.routed_at is not None  # routed like any other
    assert not RuleEvent.objects.exists()
    workflow_harness.advance_time("1h")  # fires once, and idle keys are cleared away
    assert len(derived("order.unpaid")) == 1
    assert not RuleKey.objects.exists()
    assert paid.id not in {c for e in derived("order.unpaid") for c in causes(e)}


def test_sequence_emits_when_the_events_come_in_order_within_the_window(workflow_harness):
    rule_save(
        definition={
            "name": "cart-to-refund",
            "kind": "sequence",
            "match": [
                {"event": "cart.checked_out"},
                {"event": "order.refunded", "filter": "event.data.amount > 10"},
            ],
            "correlate": "data.user",
            "within": "1h",
            "emit": {"type": "user.quick_refund", "data": {"user": "{{ key }}"}},
        }
    )
    first = workflow_harness.emit("cart.checked_out", {"user": "ada"})
    workflow_harness.emit("order.refunded", {"user": "ada", "amount": 5})  # filtered out
    second = workflow_harness.emit("order.refunded", {"user": "ada", "amount": 50})
    workflow_harness.emit("order.refunded", {"user": "bob", "amount": 50})  # out of order
    [event] = derived("user.quick_refund")
    assert event.data == {"user": "ada"}
    assert causes(event) == {first.id, second.id}

    workflow_harness.emit("cart.checked_out", {"user": "cy"})
    workflow_harness.advance_time("61m")  # too late: the partial match is dropped
    workflow_harness.emit("order.refunded", {"user": "cy", "amount": 50})
    assert len(derived("user.quick_refund")) == 1


def test_threshold_emits_once_per_window_and_starts_a_workflow(workflow_harness):
    workflow_definition_save(
        definition={
            "name": "lock-account",
            "trigger": {"event": "account.suspicious"},
            "steps": [
                {"id": "note", "action": "log", "input": {"message": "lock {{ trigger.data.key }}"}}
            ],
        }
    )
    rule_save(
        definition={
            "name": "failed-logins",
            "kind": "threshold",
            "event": "login.failed",
            "correlate": "data.user",
            "count": 3,
            "within": "10m",
            "emit": {"type": "account.suspicious"},
        }
    )
    logins = [workflow_harness.emit("login.failed", {"user": "ada"}) for _ in range(2)]
    workflow_harness.advance_time("11m")  # the first two leave the window
    logins = [workflow_harness.emit("login.failed", {"user": "ada"}) for _ in range(3)]
    workflow_harness.emit("login.failed", {"user": "bob"})
    [event] = derived("account.suspicious")
    assert event.data == {"key": "ada", "count": 3}
    assert causes(event) == {login.id for login in logins}
    assert Run.objects.get(trigger_event=event).status == RunStatus.SUCCEEDED
    workflow_harness.emit("login.failed", {"user": "ada"})  # a new window starts counting
    assert len(derived("account.suspicious")) == 1


def test_aggregate_emits_the_figure_per_key_per_window(workflow_harness):
    rule_save(
        definition={
            "name": "hourly-sales",
            "kind": "aggregate",
            "event": "order.paid",
            "correlate": "data.shop",
            "value": "data.amount",
            "function": "sum",
            "every": "1h",
            "emit": {"type": "sales.hourly", "data": {"shop": "{{ key }}", "total": "{{ value }}"}},
        }
    )
    workflow_harness.advance_time("1h")  # windows are aligned on the hour; start in a fresh one
    paid = [
        workflow_harness.emit("order.paid", {"shop": "north", "amount": amount})
        for amount in (10, 15.5)
    ]
    workflow_harness.emit("order.paid", {"shop": "south", "amount": 7})
    bad = workflow_harness.emit("order.paid", {"shop": "south", "amount": "lots"})
    assert "not a number" in Event.objects.get(pk=bad.pk).route_errors[0]
    workflow_harness.advance_time("1h")
    totals = {e.data["shop"]: e.data["total"] for e in derived("sales.hourly")}
    assert totals == {"north": 25.5, "south": 7}
    north = next(e for e in derived("sales.hourly") if e.data["shop"] == "north")
    assert causes(north) == {event.id for event in paid}


def test_anomaly_learns_the_rate_and_flags_a_spike_and_a_drop(workflow_harness):
    rule_save(
        definition={
            "name": "signup-rate",
            "kind": "anomaly",
            "event": "user.signed_up",
            "every": "1m",
            "sensitivity": 3,
            "warmup": 5,
            "emit": {"type": "signups.anomaly"},
        }
    )
    workflow_harness.advance_time("1m")
    for _ in range(6):  # six ordinary minutes of about ten signups
        for _ in range(10):
            workflow_harness.emit("user.signed_up", {})
        workflow_harness.advance_time("1m")
    assert derived("signups.anomaly") == []
    for _ in range(40):  # a spike
        workflow_harness.emit("user.signed_up", {})
    workflow_harness.advance_time("1m")
    [spike] = derived("signups.anomaly")
    assert spike.data["observed"] == 40
    assert spike.data["expected"] == 10
    assert spike.data["score"] > 3
    assert len(causes(spike)) == 40
    workflow_harness.advance_time("1m")  # a minute with none at all: a drop to zero
    drop = derived("signups.anomaly")[-1]
    assert drop.data["observed"] == 0
    assert drop.data["score"] < -3


def test_an_event_a_rule_cannot_count_says_why_on_its_page(workflow_harness):
    rule_save(
        definition={
            "name": "big-refunds",
            "kind": "threshold",
            "event": "order.refunded",
            "filter": "event.data.amount > 100",
            "correlate": "data.user",
            "count": 2,
            "within": "1h",
            "emit": {"type": "refunds.many"},
        }
    )
    no_key = workflow_harness.emit("order.refunded", {"amount": 500})
    bad_data = workflow_harness.emit("order.refunded", {"user": "ada", "amount": "lots"})
    small = workflow_harness.emit("order.refunded", {"user": "ada", "amount": 5})
    assert Event.objects.get(pk=no_key.pk).route_errors == [
        "rule big-refunds: the event has no data.user to correlate on; it was not counted"
    ]
    assert "rule big-refunds: filter:" in Event.objects.get(pk=bad_data.pk).route_errors[0]
    assert Event.objects.get(pk=small.pk).route_errors == []
    assert not RuleKey.objects.exists()  # nothing the rule could use made a row


def test_a_changed_rule_starts_afresh_and_a_switched_off_rule_sees_nothing(workflow_harness):
    definition = {
        "name": "failed-logins",
        "kind": "threshold",
        "event": "login.failed",
        "count": 2,
        "within": "1h",
        "emit": {"type": "account.suspicious"},
    }
    rule_save(definition=definition)
    workflow_harness.emit("login.failed", {})
    assert RuleEvent.objects.count() == 1
    rule_save(definition={**definition, "count": 3})
    assert not RuleKey.objects.exists()  # counted under the old definition: dropped
    _, changed = rule_save(definition={**definition, "count": 3}, active=False)
    assert changed is False
    for _ in range(5):
        workflow_harness.emit("login.failed", {})
    assert derived("account.suspicious") == []
    assert not RuleKey.objects.exists()
