"""The events API: POST (JSON and CloudEvents), list and filters, detail with runs, replay, and
webhook endpoint management."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.v1.event import CloudEvent
from django.contrib.auth.models import Permission
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from automation.models import Run, Workflow, WorkflowVersion
from events.models import Event, EventSchema, WebhookEndpoint
from events.services import emit
from events.webhooks import webhook_endpoint_create
from tests.events.signing import body_of, standard_webhooks_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(users):
    """The operator with what ingest and the event lists need (not replay)."""
    users["operator"].user_permissions.add(
        *Permission.objects.filter(codename__in=["view_event", "add_event"])
    )
    client = APIClient()
    token = Token.objects.create(user=users["operator"])
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def admin_api(users):
    client = APIClient()
    client.force_authenticate(users["admin"])
    return client


def post_json(api, payload, path="/api/events/"):
    return api.post(path, data=json.dumps(payload), content_type="application/json")


def refused(response, status: int, code: str, mentions: str = ""):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert mentions.lower() in error["message"].lower()
    assert Event.objects.count() == 0


# --- POST /api/events/ ----------------------------------------------------------------------


def test_post_event_answers_202_with_the_stored_event(api):
    response = post_json(
        api,
        {
            "type": "order.created",
            "data": {"id": 1},
            "subject": "order-1",
            "correlation_id": "c-1",
            "idempotency_key": "k-1",
        },
    )
    assert response.status_code == 202, response.content
    body = response.json()
    event = Event.objects.get()
    assert body["id"] == str(event.id)
    assert body["duplicate"] is False
    assert (body["type"], body["data"], body["subject"]) == ("order.created", {"id": 1}, "order-1")
    assert (event.source, event.correlation_id, event.idempotency_key) == ("api", "c-1", "k-1")


def test_same_idempotency_key_twice_is_one_event(api):
    first = post_json(api, {"type": "order.created", "data": {}, "idempotency_key": "k"})
    second = post_json(api, {"type": "order.created", "data": {}, "idempotency_key": "k"})
    assert second.json()["duplicate"] is True
    assert second.json()["id"] == first.json()["id"]
    assert Event.objects.count() == 1


@pytest.mark.django_db
def test_a_duplicate_emitted_inside_a_transaction_leaves_it_usable():
    with transaction.atomic():
        first = emit("order.created", {"n": 1}, idempotency_key="k")
        again = emit("order.created", {"n": 2}, idempotency_key="k")
        other = emit("order.created", {"n": 3})  # the transaction still works
    assert again.id == first.id
    assert sorted(e.data["n"] for e in Event.objects.all()) == [1, 3]
    assert Event.objects.get(id=other.id).occurred_at is not None


def test_anonymous_post_is_401(client):
    response = client.post(
        "/api/events/", {"type": "a.b", "data": {}}, content_type="application/json"
    )
    assert response.status_code == 401
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "mentions"),
    [
        ({"data": {}}, "type"),
        ({"type": "a.b"}, "data"),
        ({"type": "a.b", "data": [1]}, "data"),
        ({"type": "bad type", "data": {}}, "type"),
        ({"type": "a.b", "data": {}, "payload": {}}, "payload"),
        ({"type": "a.b", "data": {}, "subject": "x" * 201}, "subject"),
    ],
)
def test_invalid_events_are_400_naming_the_field(api, payload, mentions):
    refused(post_json(api, payload), 400, "invalid_event", mentions)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{nope", "malformed_json"),
        (b"[]", "not_an_object"),
        (b'{"a":' * 80 + b"1" + b"}" * 80, "too_deep"),
    ],
)
def test_malformed_bodies_are_400(api, body, code):
    refused(api.generic("POST", "/api/events/", body, content_type="application/json"), 400, code)


def test_unsupported_content_type_is_415(api):
    response = api.generic("POST", "/api/events/", b"type=a.b", content_type="text/plain")
    refused(response, 415, "unsupported_content_type")


def test_body_over_the_limit_is_413(api, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1024
    refused(post_json(api, {"type": "a.b", "data": {"x": "y" * 2000}}), 413, "body_too_large")


def test_data_failing_its_schema_is_400_naming_the_path(api):
    EventSchema.objects.create(
        type="order.created",
        schema={"type": "object", "properties": {"total": {"type": "number"}}},
    )
    response = post_json(api, {"type": "order.created", "data": {"total": "ten"}})
    refused(response, 400, "invalid_event", "data.total")
    assert response.json()["error"]["field"] == "data.total"


def test_the_highest_schema_version_applies(api):
    EventSchema.objects.create(type="a.b", version=1, schema={"required": ["old"]})
    EventSchema.objects.create(type="a.b", version=2, schema={"required": ["new"]})
    assert post_json(api, {"type": "a.b", "data": {"new": 1}}).status_code == 202
    assert post_json(api, {"type": "a.b", "data": {"old": 1}}).status_code == 400


# --- CloudEvents ------------------------------------------------------------------------------


def cloud_event(**attributes):
    base = {"id": "ce-1", "source": "/billing", "type": "invoice.paid", "specversion": "1.0"}
    return CloudEvent(attributes={**base, **attributes}, data={"amount": 3})


def send(api, message):
    headers = {key.lower(): value for key, value in message.headers.items()}
    content_type = headers.pop("content-type", "")
    extra = {"HTTP_" + key.upper().replace("-", "_"): value for key, value in headers.items()}
    return api.generic("POST", "/api/events/", message.body, content_type=content_type, **extra)


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_cloudevents_are_stored_with_source_id_as_idempotency_key(api, mode):
    convert = ce_http.to_structured_event if mode == "structured" else ce_http.to_binary_event
    event = cloud_event(subject="inv-1", correlationid="corr-9")
    first = send(api, convert(event))
    second = send(api, convert(event))
    assert first.status_code == 202, first.content
    assert second.json()["duplicate"] is True
    stored = Event.objects.get()
    assert (stored.type, stored.source, stored.idempotency_key) == (
        "invoice.paid",
        "/billing",
        "ce-1",
    )
    assert (stored.subject, stored.correlation_id, stored.data) == (
        "inv-1",
        "corr-9",
        {"amount": 3},
    )


def test_binary_cloudevent_with_json_content_type(api):
    event = cloud_event(datacontenttype="application/json")
    assert send(api, ce_http.to_binary_event(event)).status_code == 202


@pytest.mark.parametrize("attribute", ["id", "source", "type", "specversion"])
def test_structured_cloudevent_missing_an_attribute_is_400_naming_it(api, attribute):
    message = ce_http.to_structured_event(cloud_event())
    document = json.loads(message.body)
    del document[attribute]
    response = api.generic(
        "POST", "/api/events/", json.dumps(document), content_type="application/cloudevents+json"
    )
    refused(response, 400, "missing_attribute", f"'{attribute}'")


@pytest.mark.parametrize("attribute", ["id", "source", "type"])
def test_binary_cloudevent_missing_an_attribute_is_400_naming_it(api, attribute):
    message = ce_http.to_binary_event(cloud_event())
    del message.headers[f"ce-{attribute}"]
    refused(send(api, message), 400, "missing_attribute", f"ce-{attribute}")


def test_cloudevent_with_another_specversion_is_400(api):
    document = json.loads(ce_http.to_structured_event(cloud_event()).body)
    document["specversion"] = "0.3"
    response = api.generic(
        "POST", "/api/events/", json.dumps(document), content_type="application/cloudevents+json"
    )
    refused(response, 400, "unsupported_specversion", "1.0")


def test_binary_cloudevent_with_non_json_data_is_415(api):
    message = ce_http.to_binary_event(cloud_event())
    message.headers["content-type"] = "text/plain"
    refused(send(api, message), 415, "unsupported_content_type")


# --- GET /api/events/ and /api/events/<id>/ -----------------------------------------------


def test_list_filters_by_type_source_correlation_and_time(api):
    emit("order.created", {"n": 1}, correlation_id="c1")
    emit("order.paid", {"n": 2}, source="shop")
    old = emit("user.created", {"n": 3})
    Event.objects.filter(id=old.id).update(received_at=timezone.now() - timedelta(days=2))

    def types(query):
        response = api.get("/api/events/", query)
        assert response.status_code == 200, response.content
        return sorted(item["type"] for item in response.json()["results"])

    assert types({"type": "order.created"}) == ["order.created"]
    assert types({"type": "order.*"}) == ["order.created", "order.paid"]
    assert types({"source": "shop"}) == ["order.paid"]
    assert types({"correlation_id": "c1"}) == ["order.created"]
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert types({"received_after": since}) == ["order.created", "order.paid"]
    assert types({"received_before": since}) == ["user.created"]


def test_list_is_paginated_newest_first(api):
    for n in range(5):
        emit("tick", {"n": n})
    page = api.get("/api/events/", {"page_size": 2}).json()
    assert [item["data"]["n"] for item in page["results"]] == [4, 3]
    page = api.get(page["next"]).json()
    assert [item["data"]["n"] for item in page["results"]] == [2, 1]


def test_list_with_a_bad_time_is_400(api):
    response = api.get("/api/events/", {"received_after": "yesterday"})
    assert response.status_code == 400
    assert "received_after" in response.json()["error"]["message"]


def test_detail_lists_the_runs_the_event_started(api):
    event = emit("order.created", {})
    workflow = Workflow.objects.create(name="fulfil", kind="code")
    version = WorkflowVersion.objects.create(workflow=workflow, number=1, checksum="x")
    run = Run.objects.create(workflow=workflow, version=version, trigger_event=event)
    body = api.get(f"/api/events/{event.id}/").json()
    assert body["id"] == str(event.id)
    assert body["runs"] == [
        {
            "id": str(run.id),
            "workflow": "fulfil",
            "status": "pending",
            "created_at": body["runs"][0]["created_at"],
        }
    ]


def test_detail_of_an_unknown_event_is_404(api):
    assert api.get("/api/events/0190a0a0-0000-7000-8000-000000000000/").status_code == 404


# --- Replay -----------------------------------------------------------------------------------


def test_replay_stores_a_copy_caused_by_the_original(admin_api):
    original = emit("order.created", {"id": 5}, idempotency_key="once", correlation_id="c")
    response = admin_api.post(f"/api/events/{original.id}/replay/")
    assert response.status_code == 202, response.content
    copy = Event.objects.get(id=response.json()["id"])
    assert copy.id != original.id
    assert (copy.type, copy.data, copy.correlation_id) == ("order.created", {"id": 5}, "c")
    assert copy.causation_id == str(original.id)
    assert copy.idempotency_key is None


def test_replay_needs_the_permission(api, users):
    original = emit("order.created", {})
    assert api.post(f"/api/events/{original.id}/replay/").status_code == 403
    users["operator"].user_permissions.add(Permission.objects.get(codename="replay_event"))
    assert api.post(f"/api/events/{original.id}/replay/").status_code == 202


# --- /api/webhooks/ ---------------------------------------------------------------------------


def test_create_endpoint_shows_the_secret_once_and_it_verifies(admin_api, client):
    response = admin_api.post(
        "/api/webhooks/", {"slug": "shop", "scheme": "standard_webhooks"}, format="json"
    )
    assert response.status_code == 201, response.content
    secret = response.json()["secret"]
    assert secret.startswith("whsec_")
    assert response.json()["url"].endswith("/hooks/shop/")
    listing = admin_api.get("/api/webhooks/").json()["results"]
    assert [item["slug"] for item in listing] == ["shop"]
    assert "secret" not in listing[0]
    body = body_of({"type": "a.b", "data": {}})
    hook = client.post(
        "/hooks/shop/",
        body,
        content_type="application/json",
        headers=standard_webhooks_headers(secret, body),
    )
    assert hook.status_code == 202, hook.content


def test_create_endpoint_with_bad_configuration_is_400_naming_fields(admin_api):
    response = admin_api.post(
        "/api/webhooks/",
        {"slug": "x", "scheme": "standard_webhooks", "secret": "nope", "type_from": "fixed"},
        format="json",
    )
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"secret", "type_value"}
    assert not WebhookEndpoint.objects.exists()


def test_stripe_endpoint_takes_the_dashboards_secret(admin_api):
    response = admin_api.post(
        "/api/webhooks/", {"slug": "s", "scheme": "stripe", "secret": "whsec_abc"}, format="json"
    )
    assert response.json()["secret"] == "whsec_abc"


def test_a_stripe_endpoint_without_the_dashboards_secret_is_refused(admin_api):
    response = admin_api.post("/api/webhooks/", {"slug": "s", "scheme": "stripe"}, format="json")
    assert response.status_code == 400
    assert "paste it from the dashboard" in str(response.json()["error"]["fields"]["secret"])
    assert not WebhookEndpoint.objects.exists()


def test_rotate_returns_a_new_secret_and_keeps_the_old_for_the_grace(admin_api):
    endpoint, old = webhook_endpoint_create(slug="gh", scheme="github")
    response = admin_api.post("/api/webhooks/gh/rotate/", {"grace_seconds": 60}, format="json")
    assert response.status_code == 200, response.content
    endpoint.refresh_from_db()
    assert endpoint.secret == response.json()["secret"] != old
    assert endpoint.previous_secret == old
    assert endpoint.previous_secret_expires_at > timezone.now()


def test_webhook_management_is_for_staff_with_permissions(api, users):
    assert api.get("/api/webhooks/").status_code == 403
    assert (
        api.post("/api/webhooks/", {"slug": "x", "scheme": "none"}, format="json").status_code
        == 403
    )
    webhook_endpoint_create(slug="gh", scheme="github")
    assert api.post("/api/webhooks/gh/rotate/", {}, format="json").status_code == 403


def test_a_value_postgresql_cannot_store_is_400_not_500(api):
    from django.db import connection

    response = api.generic(
        "POST",
        "/api/events/",
        b'{"type": "a.b", "data": {"text": "nul\\u0000"}}',
        content_type="application/json",
    )
    if connection.vendor == "postgresql":
        refused(response, 400, "unstorable_value")
    else:
        assert response.status_code == 202


def test_event_list_query_count_does_not_grow_with_the_page(api, django_assert_num_queries):
    for n in range(20):
        emit("tick", {"n": n})
    # The token, the one permission it needs, the page (with each event's actor joined).
    with django_assert_num_queries(3):
        assert len(api.get("/api/events/").json()["results"]) == 20


def test_binary_cloudevent_header_values_are_percent_decoded(api):
    message = ce_http.to_binary_event(cloud_event(subject="café 100%"))
    assert send(api, message).status_code == 202
    assert Event.objects.get().subject == "café 100%"


def test_a_browser_session_posts_events_with_its_csrf_token(django_user_model):
    from django.test import Client

    user = django_user_model.objects.create_user("browser", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="add_event"))
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/admin/login/")  # any page sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    body = {"type": "browser.clicked", "data": {"button": "save"}}
    without = browser.post("/api/events/", body, content_type="application/json")
    assert without.status_code == 403  # CSRF protects session requests
    ok = browser.post("/api/events/", body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert ok.status_code == 202, ok.content
    assert ok.json()["type"] == "browser.clicked"
