"""Idempotency keys sent through the API belong to the client who sent them: another client
using the same key (guessed or by chance) stores an event of its own and never makes a genuine
event a "duplicate"; the answer to one's own duplicate names the stored event and shows its
body only to those who may read events (events.view_event)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from events.models import Event

pytestmark = pytest.mark.django_db


def poster(django_user_model, name: str, *codenames: str) -> Client:
    user = django_user_model.objects.create_user(name, password="pw")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["add_event", *codenames]))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice(django_user_model) -> Client:
    return poster(django_user_model, "alice")


@pytest.fixture
def bob(django_user_model) -> Client:
    return poster(django_user_model, "bob")


def plain(client: Client, key: str, data: dict[str, Any]) -> Any:
    body = {"type": "order.placed", "data": data, "idempotency_key": key}
    return client.post("/api/events/", json.dumps(body), "application/json")


def cloudevent(client: Client, id: str, data: dict[str, Any]) -> Any:
    document = {"specversion": "1.0", "id": id, "source": "https://erp.example.com",
                "type": "order.placed", "data": data}  # fmt: skip
    return client.post("/api/events/", json.dumps(document), "application/cloudevents+json")


@pytest.mark.parametrize("send", [plain, cloudevent])
def test_another_clients_key_never_turns_a_genuine_event_into_a_duplicate(send, alice, bob):
    squat = send(bob, "order-42", {"card": "4111 1111 1111 1111"})
    assert squat.status_code == 202
    genuine = send(alice, "order-42", {"total": 5})
    assert genuine.status_code == 202, genuine.content
    assert genuine.json()["duplicate"] is False
    assert "4111" not in genuine.content.decode()
    stored = Event.objects.get(pk=genuine.json()["id"])
    assert (stored.actor.username, stored.data) == ("alice", {"total": 5})
    assert Event.objects.count() == 2


@pytest.mark.parametrize("send", [plain, cloudevent])
def test_ones_own_duplicate_names_the_event_without_its_body(send, alice):
    first = send(alice, "order-42", {"card": "4111"})
    again = send(alice, "order-42", {"card": "4111"})
    assert again.status_code == 202
    assert again.json() == {"id": first.json()["id"], "duplicate": True}
    assert Event.objects.count() == 1


def test_ones_own_duplicate_shows_the_body_to_a_reader_of_events(django_user_model):
    reader = poster(django_user_model, "rita", "view_event")
    first = plain(reader, "order-42", {"total": 5})
    again = plain(reader, "order-42", {"total": 5})
    assert again.json()["duplicate"] is True
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["data"] == {"total": 5}


@pytest.mark.parametrize("source", ["api", "API", "cli"])
def test_a_cloudevent_cannot_claim_the_api_or_cli_source(source, alice):
    document = {"specversion": "1.0", "id": "x-1", "source": source, "type": "order.placed"}
    refused = alice.post("/api/events/", json.dumps(document), "application/cloudevents+json")
    assert refused.status_code == 400, refused.content
    assert refused.json()["error"]["field"] == "source"
    assert not Event.objects.exists()
