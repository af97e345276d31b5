"""Admin: the event log, its detail page with the causation chain, and webhook secrets shown
once on creation and rotation."""

from __future__ import annotations

import pytest

from automation.models import Run, Workflow, WorkflowVersion
from events.models import Event, WebhookEndpoint
from events.services import emit
from events.webhooks import webhook_endpoint_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, users):
    client.force_login(users["admin"])
    return client


def test_event_list_filters_by_type_source_and_correlation(admin_client):
    emit("order.created", {}, correlation_id="c-1")
    emit("order.paid", {}, source="shop")
    page = admin_client.get("/admin/events/event/", {"type": "order.paid"}).content.decode()
    assert "order.paid" in page
    assert "order.created" not in page
    page = admin_client.get("/admin/events/event/", {"source": "shop"}).content.decode()
    assert "order.paid" in page
    assert "order.created" not in page
    page = admin_client.get("/admin/events/event/", {"correlation_id": "c-1"}).content.decode()
    assert "order.created" in page
    assert "order.paid" not in page
    page = admin_client.get(
        "/admin/events/event/", {"received_at__gte": "2000-01-01 00:00:00+00:00"}
    )
    assert page.status_code == 200


def test_event_detail_is_read_only_with_pretty_json_and_the_causation_chain(admin_client):
    event = emit("order.created", {"id": 7})
    Event.objects.filter(id=event.id).update(
        headers={"user-agent": "GitHub-Hookshot", "x-hub-signature-256": "sha256=secret"}
    )
    workflow = Workflow.objects.create(name="fulfil", kind="code")
    version = WorkflowVersion.objects.create(workflow=workflow, number=1, checksum="x")
    run = Run.objects.create(workflow=workflow, version=version, trigger_event=event)
    emitted = emit("order.shipped", {}, causation_id=str(run.id))
    page = admin_client.get(f"/admin/events/event/{event.id}/change/").content.decode()
    assert "&quot;id&quot;: 7" in page  # pretty-printed JSON
    assert "GitHub-Hookshot" in page
    assert "sha256=secret" not in page
    assert str(run.id) in page
    assert "fulfil" in page
    assert str(emitted.id) in page  # the event its run emitted
    assert 'name="_save"' not in page  # read-only


def test_adding_an_endpoint_shows_the_generated_secret_once(admin_client):
    response = admin_client.post(
        "/admin/events/webhookendpoint/add/",
        {"slug": "shop", "scheme": "standard_webhooks", "active": "on"},
    )
    assert response.status_code == 200, response.content
    endpoint = WebhookEndpoint.objects.get(slug="shop")
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    change_page = admin_client.get(f"/admin/events/webhookendpoint/{endpoint.pk}/change/")
    assert endpoint.secret not in change_page.content.decode()


def test_adding_a_stripe_endpoint_takes_the_pasted_secret(admin_client):
    admin_client.post(
        "/admin/events/webhookendpoint/add/",
        {
            "slug": "stripe",
            "scheme": "stripe",
            "initial_secret": "whsec_fromstripe",
            "active": "on",
        },
    )
    assert WebhookEndpoint.objects.get(slug="stripe").secret == "whsec_fromstripe"


def test_rotate_secret_action_shows_the_new_secret_once(admin_client):
    endpoint, old = webhook_endpoint_create(slug="gh", scheme="github")
    response = admin_client.post(
        "/admin/events/webhookendpoint/",
        {"action": "rotate_secret", "_selected_action": [endpoint.pk]},
    )
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert endpoint.previous_secret == old
    page = response.content.decode()
    assert endpoint.secret in page
    assert old not in page


def test_schema_and_bridge_admin_pages_render(admin_client):
    for path in ("/admin/events/eventschema/add/", "/admin/events/signalbridge/add/"):
        assert admin_client.get(path).status_code == 200


def _schedule_form(**overrides):
    form = {
        "name": "daily",
        "regtask": "events.emit_scheduled",
        "task": "",
        "enabled": "on",
        "interval": "",
        "crontab": "",
        "solar": "",
        "clocked": "",
        "args": "[]",
        "kwargs": '{"type": "report.due", "data": {"kind": "daily"}}',
        "priority": "",
        "headers": "{}",
    }
    return {**form, **overrides}


@pytest.mark.parametrize(
    ("kwargs", "mentions"),
    [
        ('{"data": {}}', "type"),
        ('{"type": "report due"}', "type"),
        ('{"type": "a.b", "data": [1]}', "data"),
        ('{"type": "a.b", "payload": {}}', "payload"),
    ],
)
def test_a_schedule_with_bad_kwargs_is_refused_in_admin(admin_client, kwargs, mentions):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    response = admin_client.post(
        "/admin/django_celery_beat/periodictask/add/",
        _schedule_form(interval=every.pk, kwargs=kwargs),
    )
    assert response.status_code == 200  # the form again, with the error
    assert "events.emit_scheduled:" in response.content.decode()
    assert mentions in response.content.decode()
    assert not PeriodicTask.objects.filter(name="daily").exists()


def test_a_valid_schedule_is_saved_in_admin(admin_client):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    response = admin_client.post(
        "/admin/django_celery_beat/periodictask/add/", _schedule_form(interval=every.pk)
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert PeriodicTask.objects.get(name="daily").task == "events.emit_scheduled"


def test_event_list_past_the_exact_count_limit_still_pages(admin_client, monkeypatch):
    from automation.lib.paging import LargeTablePaginator

    monkeypatch.setattr(LargeTablePaginator, "EXACT_UP_TO", 3)
    monkeypatch.setattr("events.admin.EventAdmin.list_per_page", 2)
    for n in range(6):
        emit("order.created", {"n": n})
    first = admin_client.get("/admin/events/event/")
    assert first.status_code == 200
    assert first.context["cl"].result_count >= 4  # estimated once over the limit
    assert len(first.context["cl"].result_list) == 2
    second = admin_client.get("/admin/events/event/", {"p": 2})
    assert second.status_code == 200
    assert len(second.context["cl"].result_list) == 2
    # Under the limit the count is exact.
    exact = admin_client.get("/admin/events/event/", {"type": "order.paid"})
    assert exact.context["cl"].result_count == 0
