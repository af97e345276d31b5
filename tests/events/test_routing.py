"""Routing: one event starts every subscribed workflow exactly once (routed twice, concurrently,
or by the sweep), and a signed webhook runs workflows end to end in the real server process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from automation.models import Run, RunStatus, Workflow, WorkflowVersion
from events.models import Event
from events.routing import event_route, events_route_unrouted
from events.services import emit
from events.tasks import route_events
from events.webhooks import webhook_endpoint_create
from tests.events.servers import post
from tests.events.signing import body_of, standard_webhooks_headers
from tests.processes import ROOT, project_env, running_server, stop, wait_for


def subscribe(name: str, pattern: str, condition: str = "") -> Workflow:
    workflow = Workflow.objects.create(name=name, kind=Workflow.Kind.DECLARATIVE)
    WorkflowVersion.objects.create(
        workflow=workflow,
        number=1,
        checksum=name,
        definition={"name": name, "trigger": {"event": pattern}, "steps": []},
        trigger_event=pattern,
        trigger_filter=condition,
    )
    return workflow


@pytest.fixture
def subscribers(db):
    return {
        "exact": subscribe("shop-fulfil", "shop.order.created"),
        "wildcard": subscribe("shop-audit", "shop.order.*"),
        "filtered-out": subscribe("shop-vip", "shop.order.created", "trigger.data.total > 100"),
        "other": subscribe("shop-welcome", "shop.user.created"),
    }


def started(event: Event) -> list[str]:
    return sorted(Run.objects.filter(trigger_event=event).values_list("workflow__name", flat=True))


@pytest.mark.django_db
def test_an_event_starts_each_matching_workflow_once_even_when_routed_twice(subscribers):
    event = emit("shop.order.created", {"total": 50})
    assert event_route(event_id=event.id) == 2
    assert event_route(event_id=event.id) == 0
    assert started(event) == ["shop-audit", "shop-fulfil"]
    event.refresh_from_db()
    assert event.routed_at is not None


@pytest.mark.django_db
def test_a_duplicate_delivery_routes_nothing_new(subscribers, client):
    _, secret = webhook_endpoint_create(slug="shop", scheme="standard_webhooks")
    body = body_of({"type": "shop.order.created", "data": {"total": 500}})
    headers = standard_webhooks_headers(secret, body, msg_id="msg_once")
    first = client.post("/hooks/shop/", body, content_type="application/json", headers=headers)
    event_route(event_id=first.json()["event_id"])
    second = client.post("/hooks/shop/", body, content_type="application/json", headers=headers)
    assert second.json()["duplicate"] is True
    event_route(event_id=second.json()["event_id"])
    assert Run.objects.count() == 3  # fulfil, audit and vip (total > 100), once each


@pytest.mark.django_db
def test_the_sweep_routes_events_whose_dispatch_was_lost(subscribers):
    event = emit("shop.order.created", {"total": 1})
    Event.objects.filter(id=event.id).update(received_at=timezone.now() - timedelta(minutes=1))
    assert events_route_unrouted() == 1
    assert started(event) == ["shop-audit", "shop-fulfil"]
    assert events_route_unrouted() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_routing_starts_each_workflow_once(subscribers):
    event = emit("shop.order.created", {"total": 1})
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def route() -> None:
        try:
            barrier.wait()
            event_route(event_id=event.id)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=route) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert started(event) == ["shop-audit", "shop-fulfil"]


@pytest.mark.django_db(transaction=True)
def test_a_signed_webhook_runs_the_event_chain_in_the_real_server(tmp_path):
    """example-payment is started by the webhook, emits example.payment.captured (caused by its
    run), which starts example-shipping: all inside `manage.py serve`'s own worker."""
    _, secret = webhook_endpoint_create(slug="orders", scheme="standard_webhooks")
    body = body_of({"type": "example.order.confirmed", "data": {"orderId": "o-1", "amount": 9}})
    headers = {"Content-Type": "application/json", **standard_webhooks_headers(secret, body)}
    with running_server(project_env(EXAMPLES="true"), tmp_path / "server.log") as server:
        status, raw = post(f"{server.url}/hooks/orders/", body, headers)
        assert status == 202, raw
        _, raw_again = post(f"{server.url}/hooks/orders/", body, headers)
        assert json.loads(raw_again)["duplicate"] is True
        shipped = wait_for(
            lambda: Run.objects.filter(
                workflow__name="example-shipping", status=RunStatus.SUCCEEDED
            ).first(),
            timeout=30,
            message=f"the event chain did not finish:\n{server.output()[-3000:]}",
        )
    payment = Run.objects.get(workflow__name="example-payment")
    assert str(payment.trigger_event_id) == json.loads(raw)["event_id"]
    assert payment.status == RunStatus.SUCCEEDED
    captured = shipped.trigger_event
    assert captured.type == "example.payment.captured"
    assert captured.causation_id == str(payment.id)
    assert Run.objects.filter(workflow__name="example-payment").count() == 1


@pytest.mark.django_db(transaction=True)
def test_outbox_mode_publishes_nothing_and_the_router_process_routes(
    subscribers, settings, tmp_path
):
    settings.EVENTS_ROUTING = "outbox"
    log = (tmp_path / "router.log").open("w")
    router = subprocess.Popen(
        [sys.executable, "manage.py", "route_events"],
        cwd=ROOT,
        env=project_env(EVENTS_ROUTING="outbox"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        event = emit("shop.order.created", {"total": 1})
        wait_for(
            lambda: len(started(event)) == 2,
            timeout=20,
            message=f"the router did not route:\n{(tmp_path / 'router.log').read_text()}",
        )
    finally:
        stop(router, sig=signal.SIGTERM)
    assert router.returncode == 0
    assert started(event) == ["shop-audit", "shop-fulfil"]


@pytest.mark.django_db
def test_outbox_mode_leaves_no_grace_to_a_dispatch_that_never_comes(subscribers, settings):
    settings.EVENTS_ROUTING = "outbox"
    event = emit("shop.order.created", {"total": 1})
    assert events_route_unrouted() == 1
    assert started(event) == ["shop-audit", "shop-fulfil"]


@pytest.mark.django_db
def test_one_message_routes_every_event_that_piled_up_and_a_broken_one_stops_none(
    subscribers, caplog
):
    first = emit("shop.order.created", {"total": 1})
    second = emit("shop.user.created", {})
    assert route_events(["not-an-event-id", str(first.id), str(second.id)]) == 3
    assert started(first) == ["shop-audit", "shop-fulfil"]
    assert started(second) == ["shop-welcome"]
    assert "routing event not-an-event-id failed" in caplog.text
