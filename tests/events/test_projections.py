"""Projections fold the event log into Django models: each event once, in log order, with the
checkpoint moved in the handler's transaction; a failing handler stops only its projection;
rebuild_projection starts over; the lag shows in /metrics and the admin."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from events import projections
from events.models import Event, EventSchema, ProjectionCheckpoint
from events.projections import projection, projections_advance
from events.services import emit
from examples.models import CustomerOrders
from tests.test_metrics import scrape

pytestmark = pytest.mark.django_db

NAME = "example_customer_orders"


@pytest.fixture(autouse=True)
def _settled(settings):
    settings.PROJECTION_SETTLE_SECONDS = 0  # every stored event is settled at once


@pytest.fixture
def fragile():
    """A projection of ``frag.*`` that refuses events without ``ok`` (registered for one test)."""
    seen = []

    @projection(on="frag.*", name="fragile")
    def handler(event):
        CustomerOrders.objects.create(customer=f"frag-{event.data['n']}")
        if not event.data.get("ok"):
            raise ValueError(f"event {event.data['n']} is not ok")
        seen.append(event.data["n"])

    yield seen
    projections._projections.pop("fragile")


def totals() -> dict[str, tuple[int, int, Decimal]]:
    return {
        row.customer: (row.orders, row.cancelled, row.revenue)
        for row in CustomerOrders.objects.all()
    }


def orders() -> None:
    emit("example.order.placed", {"customer": "acme", "amount": "10.50"})
    emit("example.order.placed", {"customer": "acme", "amount": "5"})
    emit("example.order.placed", {"customer": "globex", "amount": "2"})
    emit("example.order.cancelled", {"customer": "acme", "amount": "5"})
    emit("example.other", {"customer": "acme", "amount": "100"})  # not the projection's type


def test_each_event_is_applied_once_and_the_checkpoint_moves_with_it():
    orders()
    assert projections_advance() == 4
    assert totals() == {"acme": (2, 1, Decimal("10.50")), "globex": (1, 0, Decimal("2.00"))}
    checkpoint = ProjectionCheckpoint.objects.get(name=NAME)
    assert checkpoint.applied == 4
    assert checkpoint.last_event_id == Event.objects.filter(type="example.order.cancelled").get().id
    assert projections_advance() == 0  # a second pass (or a redelivered task) applies nothing
    assert totals()["acme"] == (2, 1, Decimal("10.50"))
    emit("example.order.placed", {"customer": "acme", "amount": "1"})
    assert projections_advance() == 1
    assert totals()["acme"] == (3, 1, Decimal("11.50"))


def test_events_younger_than_the_settle_time_wait_for_the_next_pass(settings):
    settings.PROJECTION_SETTLE_SECONDS = 3600
    orders()
    assert projections_advance() == 0
    assert not CustomerOrders.objects.exists()
    behind, _ = projections.lag(projections.get(NAME), None)
    assert behind == 4


def test_a_failing_handler_stops_its_projection_undoes_its_writes_and_says_why(fragile):
    emit("frag.a", {"n": 1, "ok": True})
    emit("frag.a", {"n": 2})
    emit("frag.a", {"n": 3, "ok": True})
    orders()
    projections_advance()
    assert fragile == [1]
    assert set(CustomerOrders.objects.values_list("customer", flat=True)) >= {"acme", "frag-1"}
    assert not CustomerOrders.objects.filter(customer="frag-2").exists()  # undone with the event
    checkpoint = ProjectionCheckpoint.objects.get(name="fragile")
    assert checkpoint.error.startswith("ValueError: event 2 is not ok")
    assert checkpoint.error_event_id == Event.objects.get(data__n=2).id
    assert totals()["acme"] == (2, 1, Decimal("10.50"))  # the other projection went on

    projections_advance()  # retried, still failing: applied nothing more
    assert fragile == [1]
    Event.objects.filter(data__n=2).update(data={"n": 2, "ok": True})  # a fixed event
    projections_advance()
    assert fragile == [1, 2, 3]
    checkpoint.refresh_from_db()
    assert (checkpoint.error, checkpoint.applied) == ("", 3)


def test_handlers_see_events_in_the_latest_shape_of_their_schema():
    EventSchema.objects.create(type="example.order.placed", version=1, schema={})
    emit("example.order.placed", {"customer": "acme", "price": "7"})  # v1 said price
    EventSchema.objects.create(
        type="example.order.placed",
        version=2,
        schema={},
        upcast=[{"rename": {"from": "price", "to": "amount"}}],
    )
    projections_advance()
    assert totals()["acme"] == (1, 0, Decimal("7.00"))


def test_rebuild_projection_empties_the_models_and_folds_the_log_again(capsys):
    orders()
    projections_advance()
    CustomerOrders.objects.filter(customer="acme").update(revenue=Decimal("999"))
    CustomerOrders.objects.create(customer="stale")
    call_command("rebuild_projection", NAME)
    assert "Rebuilt example_customer_orders: applied 4 event(s)." in capsys.readouterr().out
    assert totals() == {"acme": (2, 1, Decimal("10.50")), "globex": (1, 0, Decimal("2.00"))}
    checkpoint = ProjectionCheckpoint.objects.get(name=NAME)
    assert checkpoint.rebuilt_at is not None
    assert checkpoint.applied == 4


def test_rebuild_projection_names_what_is_wrong(fragile, capsys):
    with pytest.raises(CommandError, match="no projection named 'nope'"):
        call_command("rebuild_projection", "nope")
    with pytest.raises(CommandError, match="name a projection"):
        call_command("rebuild_projection")
    emit("frag.a", {"n": 1})
    with pytest.raises(CommandError, match="ValueError: event 1 is not ok"):
        call_command("rebuild_projection", "fragile")
    call_command("rebuild_projection", "--list")
    out = capsys.readouterr().out
    assert "example_customer_orders on example.order.*: 0 event(s) behind" in out
    assert "fragile on frag.*: 1 event(s) behind" in out


def test_the_lag_is_in_metrics_and_in_the_admin(client, users, settings):
    orders()
    projections_advance()
    settings.PROJECTION_SETTLE_SECONDS = 3600
    emit("example.order.placed", {"customer": "acme", "amount": "1"})
    samples = scrape(client)
    label = (("projection", NAME),)
    assert samples[("automation_projection_lag_events", label)] == 1
    assert samples[("automation_projection_lag_seconds", label)] >= 0

    client.force_login(users["admin"])
    page = client.get("/admin/events/projectioncheckpoint/").content.decode()
    assert NAME in page
    checkpoint = ProjectionCheckpoint.objects.get(name=NAME)
    detail = client.get(f"/admin/events/projectioncheckpoint/{checkpoint.pk}/change/")
    assert "example.order.*" in detail.content.decode()


def test_the_admin_pages_of_checkpoints_refuse_outsiders(client, users):
    client.force_login(users["outsider"])
    assert client.get("/admin/events/projectioncheckpoint/").status_code == 302
