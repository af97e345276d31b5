"""GitHub signs the body only (no timestamp, not the delivery id): a captured, validly signed
request must not become a new event when replayed with a new or missing X-GitHub-Delivery.
Before, each replay with a new delivery id (or none) stored a new event and started its runs.
"""

from __future__ import annotations

import pytest

from events.models import Event
from events.webhooks import webhook_endpoint_create
from tests.events.signing import body_of, github_headers

pytestmark = pytest.mark.django_db

PUSH = {"ref": "refs/heads/main", "after": "4b1f0c2", "commits": []}


@pytest.fixture
def captured(client):
    """A genuine delivery, already accepted: (post, body, its headers, its answer)."""
    _, secret = webhook_endpoint_create(slug="gh", scheme="github")
    body = body_of(PUSH)
    headers = github_headers(secret, body, event="push", delivery="72d3162e-0001")

    def post(headers: dict[str, str]):
        return client.post(
            "/hooks/gh/", data=body, content_type="application/json", headers=headers
        )

    first = post(headers)
    assert first.status_code == 202, first.content
    return post, secret, headers, first.json()


def test_a_replay_with_a_new_delivery_id_is_a_duplicate_of_the_first(captured):
    post, _, headers, first = captured
    for n in range(3):
        response = post({**headers, "X-GitHub-Delivery": f"forged-{n}"})
        assert response.status_code == 202, response.content
        assert response.json() == {"event_id": first["event_id"], "duplicate": True}
    assert Event.objects.count() == 1


def test_a_replay_without_a_delivery_id_is_401(captured):
    post, _, headers, _ = captured
    del headers["X-GitHub-Delivery"]
    response = post(headers)
    assert response.status_code == 401, response.content
    assert "X-GitHub-Delivery" in response.json()["error"]["message"]
    assert Event.objects.count() == 1


def test_a_first_delivery_without_a_delivery_id_is_401_and_stores_nothing(client):
    _, secret = webhook_endpoint_create(slug="gh", scheme="github")
    body = body_of(PUSH)
    headers = github_headers(secret, body)
    del headers["X-GitHub-Delivery"]
    response = client.post(
        "/hooks/gh/", data=body, content_type="application/json", headers=headers
    )
    assert response.status_code == 401
    assert Event.objects.count() == 0


def test_a_redelivery_from_github_is_a_duplicate_and_new_pushes_are_new_events(captured, client):
    post, secret, headers, first = captured
    assert post(headers).json() == {"event_id": first["event_id"], "duplicate": True}
    body = body_of({**PUSH, "after": "9c0ffee"})
    response = client.post(
        "/hooks/gh/",
        data=body,
        content_type="application/json",
        headers=github_headers(secret, body, event="push", delivery="72d3162e-0002"),
    )
    assert response.json()["duplicate"] is False
    assert Event.objects.count() == 2
    # The delivery id is kept with the event, for tracing it back to GitHub's delivery log.
    assert Event.objects.get(id=first["event_id"]).headers["x-github-delivery"] == "72d3162e-0001"
