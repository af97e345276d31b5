"""Short ids: the pages show the random part of a UUIDv7 id (its time prefix is the same for
every id of a minute), with a button that copies the whole id; runs and events are found by that
short id, by a whole id and by correlation id, on the pages and in the API (``?id_prefix=``)."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from automation.lib.ids import BadIdPrefix, id_lookup, short_id, uuid7
from automation.models import Run
from events.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_expenses(workflow_harness, manager):
    """Two runs (and their events) made within the same second: one time prefix."""
    for n, amount in enumerate((420, 90)):
        workflow_harness.emit(
            "example.expense.submitted",
            {"amount": amount, "employee": "erin@example.com"},
            correlation_id=f"order-{n}",
        )
    runs = list(Run.objects.order_by("created_at"))
    events = list(Event.objects.filter(type="example.expense.submitted").order_by("received_at"))
    assert len(runs) == len(events) == 2
    return runs, events


def test_the_short_id_is_the_random_part_not_the_time():
    made_together = [uuid7() for _ in range(50)]
    assert len({str(i)[:8] for i in made_together}) <= 2  # the old short id: all alike
    assert len({short_id(i) for i in made_together}) == 50
    some = uuid.UUID("01a2431b-17de-77fe-9c1e-b242fe9c12b5")
    assert short_id(some) == short_id(str(some)) == "b242fe9c"


@pytest.mark.parametrize("text", ["b24", "b242fe9c12b5f", "zzzz", "order-1", "01a2431b-17de"])
def test_what_is_not_an_id_is_refused_saying_what_to_give(text):
    with pytest.raises(BadIdPrefix, match="4 to 12 hex characters"):
        id_lookup("id", text)


def _runs_found(client, q: str, runs: list[Run]) -> list[Run]:
    page = client.get("/app/runs/", {"q": q})
    assert page.status_code == 200
    return [r for r in runs if f"/app/runs/{r.id}/" in page.content.decode()]


def test_the_runs_page_shows_short_ids_and_finds_runs_by_them(client, manager, two_expenses):
    runs, _ = two_expenses
    client.force_login(manager)
    page = client.get("/app/runs/").content.decode()
    for run in runs:
        assert f">{short_id(run.id)}</a>" in page
        assert f'data-copy="{run.id}"' in page
    first, second = runs
    assert _runs_found(client, short_id(first.id), runs) == [first]
    assert _runs_found(client, short_id(second.id)[:5].upper(), runs) == [second]
    assert _runs_found(client, str(second.id), runs) == [second]
    assert _runs_found(client, second.id.hex[20:], runs) == [second]  # the whole last group
    assert _runs_found(client, "order-0", runs) == [first]
    assert _runs_found(client, str(first.id)[:8], runs) == []  # the time prefix tells nothing


def test_the_run_and_event_pages_copy_the_whole_id(client, manager, two_expenses):
    runs, events = two_expenses
    client.force_login(manager)
    run_page = client.get(f"/app/runs/{runs[0].id}/").content.decode()
    assert f'data-copy="{runs[0].id}" aria-label="Copy the run id {runs[0].id}"' in run_page
    event_page = client.get(f"/app/events/{events[0].id}/").content.decode()
    assert f'data-copy="{events[0].id}"' in event_page


def test_the_events_page_finds_events_by_short_id_and_refuses_a_bad_one(
    client, manager, two_expenses
):
    _, events = two_expenses
    client.force_login(manager)
    first, second = events
    page = client.get("/app/events/", {"id": short_id(second.id)}).content.decode()
    assert f"/app/events/{second.id}/" in page
    assert f"/app/events/{first.id}/" not in page
    assert f">{short_id(second.id)}</a>" in page
    bad = client.get("/app/events/", {"id": "not-an-id"})
    assert bad.status_code == 400
    body = bad.content.decode()
    assert "4 to 12 hex characters" in body
    assert 'role="alert"' in body
    assert f"/app/events/{first.id}/" not in body


def test_the_api_filters_runs_and_events_by_id_prefix(manager, two_expenses):
    runs, events = two_expenses
    api = APIClient()
    api.force_authenticate(manager)
    found = api.get("/api/runs/", {"id_prefix": short_id(runs[1].id)}).json()["results"]
    assert [r["id"] for r in found] == [str(runs[1].id)]
    found = api.get("/api/events/", {"id_prefix": str(events[0].id)}).json()["results"]
    assert [e["id"] for e in found] == [str(events[0].id)]
    found = api.get("/api/events/", {"correlation_id": "order-1"}).json()["results"]
    assert [e["id"] for e in found] == [str(events[1].id)]
    refused = api.get("/api/runs/", {"id_prefix": "order-1"})
    assert refused.status_code == 400
    assert "id_prefix" in refused.json()["error"]["fields"]


@pytest.mark.parametrize("text", ["%", "ab%", "%(x)s", "%s%s"])
@pytest.mark.parametrize("path", ["/api/runs/", "/api/events/"])
def test_a_percent_sign_in_an_id_prefix_is_refused_not_a_server_error(manager, path, text):
    api = APIClient()
    api.force_authenticate(manager)
    refused = api.get(path, {"id_prefix": text})
    assert refused.status_code == 400
    assert text in str(refused.json()["error"]["fields"]["id_prefix"])


def test_outsiders_find_nothing_by_id(client, users, two_expenses):
    runs, events = two_expenses
    client.force_login(users["outsider"])
    assert client.get("/app/runs/", {"q": short_id(runs[0].id)}).status_code == 403
    assert client.get("/app/events/", {"id": short_id(events[0].id)}).status_code == 403
    api = APIClient()
    api.force_authenticate(users["outsider"])
    assert api.get("/api/runs/", {"id_prefix": short_id(runs[0].id)}).status_code == 403
    assert api.get("/api/events/", {"id_prefix": short_id(events[0].id)}).status_code == 403
