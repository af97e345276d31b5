"""Untrusted headers, attributes, cursors and URLs get a 4xx that says what is wrong, never a 500:
a Stripe timestamp too large for a date, a CloudEvent ``time`` that is not a real instant, a
well-formed but meaningless cursor, a non-numeric id in an admin URL, an incomplete admin form.
"""

from __future__ import annotations

import base64
import json

import pytest
from rest_framework.test import APIClient

from events.models import Event, WebhookEndpoint
from events.services import emit
from events.webhooks import webhook_endpoint_create
from tests.events.signing import body_of, stripe_signature

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api(users) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(users["admin"])
    return client


@pytest.fixture
def admin_client(client, users):
    client.raise_request_exception = False
    client.force_login(users["admin"])
    return client


@pytest.mark.parametrize("timestamp", ["99999999999999999999", "-99999999999999999999", "9" * 400])
def test_a_stripe_timestamp_too_large_for_a_date_is_401(client, timestamp):
    _, secret = webhook_endpoint_create(slug="stripe", scheme="stripe")
    body = body_of({"id": "evt_1", "type": "invoice.paid", "data": {"object": {}}})
    signature = stripe_signature(secret, body).split(",")[1]
    response = client.post(
        "/hooks/stripe/",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": f"t={timestamp},{signature}"},
    )
    assert response.status_code == 401, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_signature"
    assert "timestamp" in error["message"]
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    "time",
    [
        "2026-13-45T00:00:00Z",  # no 13th month
        "2026-02-30T10:00:00Z",  # no 30 February
        "2026-01-01T25:61:00Z",
        "2026-01-01T10:00:00+99:00",  # an offset of 99 hours
        "99999-01-01T00:00:00Z",
    ],
)
@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_a_cloudevent_time_that_is_no_instant_is_400(admin_api, time, mode):
    attributes = {"specversion": "1.0", "id": "1", "source": "crm", "type": "a.b", "time": time}
    if mode == "structured":
        response = admin_api.generic(
            "POST",
            "/api/events/",
            json.dumps({**attributes, "data": {}}),
            content_type="application/cloudevents+json",
        )
    else:
        headers = {f"ce-{name}": value for name, value in attributes.items()}
        response = admin_api.generic(
            "POST", "/api/events/", b"{}", content_type="application/json", headers=headers
        )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_attribute"
    assert "'time'" in error["message"]
    assert Event.objects.count() == 0


def _cursor(position: str) -> str:
    return base64.b64encode(f"p={position}".encode()).decode()


@pytest.mark.parametrize("path", ["/api/runs/", "/api/events/", "/api/approvals/"])
@pytest.mark.parametrize(
    "cursor",
    [
        "cD1nYXJiYWdl",  # p=garbage
        _cursor("2026-99-99"),
        _cursor("1e999"),
        base64.b64encode(b"o=99999999999999999999999&p=x").decode(),
    ],
)
def test_a_meaningless_cursor_is_400_naming_it(admin_api, path, cursor):
    emit("order.created", {"n": 1})
    response = admin_api.get(path, {"cursor": cursor})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["fields"]["cursor"] == ["Invalid cursor; use the next or previous link."]


def test_a_real_cursor_still_pages(admin_api):
    for n in range(3):
        emit("order.created", {"n": n})
    first = admin_api.get("/api/events/", {"page_size": 2}).json()
    second = admin_api.get(first["next"]).json()
    assert [event["data"]["n"] for event in first["results"] + second["results"]] == [2, 1, 0]


def test_the_admin_dry_run_of_a_non_numeric_id_is_404(admin_client):
    response = admin_client.get("/admin/automation/workflow/abc/dry-run/")
    assert response.status_code == 404


def test_the_admin_refuses_a_webhook_endpoint_without_a_scheme_with_a_form_error(admin_client):
    response = admin_client.post(
        "/admin/events/webhookendpoint/add/",
        {"slug": "shop", "scheme": "", "type_from": "body", "type_value": "type", "active": "on"},
    )
    assert response.status_code == 200, response.content[:500]
    assert "This field is required" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()
