"""An API client cannot pass its event off as a signed webhook delivery (or a signal, a
schedule, a run, application code), nor take the idempotency key of a delivery still to come:
sources the server writes are refused with 400 naming ``source``, and dedupe keys of different
origins never meet."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from events.models import Event
from events.webhooks import webhook_endpoint_create
from tests.events.signing import body_of, standard_webhooks_headers, stripe_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def poster(django_user_model) -> Client:
    """A user allowed to post events: what the attacker has."""
    user = django_user_model.objects.create_user("mallory", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="add_event"))
    client = Client()
    client.force_login(user)
    return client


def cloudevent(client: Client, source: str, id: str, type: str = "payment.succeeded") -> dict:
    document = {"specversion": "1.0", "id": id, "source": source, "type": type, "data": {"x": 1}}
    return client.post("/api/events/", json.dumps(document), "application/cloudevents+json")


def test_a_cloudevent_claiming_a_stripe_webhook_is_refused_and_the_real_delivery_is_stored(
    poster, client
):
    _, secret = webhook_endpoint_create(slug="pay", scheme="stripe")
    forged = cloudevent(poster, "webhook:pay", "evt_future")
    assert forged.status_code == 400, forged.content
    assert forged.json()["error"]["field"] == "source"
    assert "written by the server" in forged.json()["error"]["message"]
    assert not Event.objects.exists()

    body = body_of({"id": "evt_future", "type": "payment.succeeded", "data": {"amount": 5}})
    genuine = client.post(
        "/hooks/pay/", body, "application/json", headers=stripe_headers(secret, body)
    )
    assert genuine.status_code == 202, genuine.content
    assert genuine.json()["duplicate"] is False
    event = Event.objects.get()
    assert (event.source, event.idempotency_key) == ("webhook:pay", "evt_future")
    assert event.data["data"] == {"amount": 5}  # the genuine body, not the forged one


@pytest.mark.parametrize(
    "source",
    ["webhook:shop", "Webhook:shop", " webhook:shop", "signal:auth.User", "schedule:nightly",
     "run:0190a0a0-0000-7000-8000-000000000000", "app"],
)  # fmt: skip
def test_sources_the_server_writes_are_refused_in_structured_and_binary_mode(poster, source):
    assert cloudevent(poster, source, "id-1").status_code == 400
    binary = poster.post(
        "/api/events/",
        json.dumps({"x": 1}),
        "application/json",
        headers={"ce-specversion": "1.0", "ce-id": "id-2", "ce-source": source, "ce-type": "a.b"},
    )
    assert binary.status_code == 400, binary.content
    assert binary.json()["error"]["field"] == "source"
    assert not Event.objects.exists()


def test_an_api_event_never_takes_a_webhook_deliverys_idempotency_key(poster, client):
    _, secret = webhook_endpoint_create(slug="shop", scheme="standard_webhooks")
    assert cloudevent(poster, "https://erp.example.com", "msg_1").status_code == 202
    body = body_of({"type": "order.created", "data": {"id": 1}})
    headers = standard_webhooks_headers(secret, body, msg_id="msg_1")
    genuine = client.post("/hooks/shop/", body, "application/json", headers=headers)
    assert (genuine.status_code, genuine.json()["duplicate"]) == (202, False)
    assert Event.objects.filter(idempotency_key="msg_1").count() == 2


def test_a_cloudevent_cannot_claim_to_be_caused_by_a_run(poster):
    """The causation id says which run or event caused this one ("emitted by" on its page);
    only the server writes it."""
    run_id = "0190a0a0-0000-7000-8000-000000000000"
    document = {"specversion": "1.0", "id": "c-1", "source": "erp", "type": "a.b",
                "causationid": run_id}  # fmt: skip
    structured = poster.post("/api/events/", json.dumps(document), "application/cloudevents+json")
    headers = {"ce-specversion": "1.0", "ce-id": "c-2", "ce-source": "erp", "ce-type": "a.b"}
    binary = poster.post(
        "/api/events/", "{}", "application/json", headers={**headers, "ce-causationid": run_id}
    )
    for refused in (structured, binary):
        assert refused.status_code == 400, refused.content
        assert refused.json()["error"]["field"] == "causationid"
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "source",
    ["\uff57\uff45\uff42\uff48\uff4f\uff4f\uff4b:shop",  # full-width "webhook"
     "webhook\u200b:shop", "web\u00adhook:shop", "WEBHOOK:SHOP",
     "webhook:shop\x00", "caf\u00e9 system", "two words"],
)  # fmt: skip
def test_a_source_must_be_a_printable_ascii_uri_reference(poster, source):
    """Look-alikes of a server source (full-width letters, invisible characters) and anything
    that is not a URI reference, as CloudEvents requires, are refused."""
    refused = cloudevent(poster, source, "id-1")
    assert refused.status_code == 400, refused.content
    assert refused.json()["error"]["field"] == "source"
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "source", ["https://erp.example.com/orders", "/billing", "urn:uuid:6e8bc430", "erp-7"]
)
def test_uri_reference_sources_are_accepted(poster, source):
    assert cloudevent(poster, source, "id-1").status_code == 202
