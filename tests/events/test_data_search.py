"""Searching events by the text inside their data: on the events page (the *Text in the data*
box) and in the API (``GET /api/events/?q=``), with its bounds (length, words, a time limit),
on SQLite and on PostgreSQL (``DATABASE_URL``)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from automation.lib.db import QueryTooSlow, statement_timeout
from events import selectors
from events.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def events():
    """Three expenses: their words are at different depths, one as a number."""
    made = {
        "berlin": {
            "employee": {"name": "Erin Lopez", "email": "erin.lopez@example.com"},
            "items": [{"what": "Printer paper for the Berlin office", "amount": 42}],
        },
        "paris": {"employee": {"name": "Pierre Dubois"}, "note": "Train to Paris", "amount": 1250},
        "keys": {"berlin_office": True, "city": "Lyon"},  # "berlin" only in a key
    }
    return {
        name: Event.objects.create(type="expense.submitted", source="api", data=data)
        for name, data in made.items()
    }


def test_a_word_anywhere_in_the_values_finds_the_event(events):
    berlin = {str(events["berlin"].id)}
    with selectors.search_time_limit("berlin"):
        assert {str(e.id) for e in selectors.data_search(Event.objects.all(), "berlin")} == berlin
        # Case does not matter, nor depth; numbers are values too; a key is not.
        for text in ("BERLIN", "Printer", "erin.lopez@example.com", "Erin"):
            ids = {str(e.id) for e in selectors.data_search(Event.objects.all(), text)}
            assert ids == berlin, text
        assert selectors.data_search(Event.objects.all(), "1250").get() == events["paris"]


def test_every_word_must_match_and_word_starts_are_enough(events):
    search = selectors.data_search
    assert search(Event.objects.all(), "train paris").get() == events["paris"]
    assert search(Event.objects.all(), "Pier Dub").get() == events["paris"]
    assert not search(Event.objects.all(), "train berlin").exists()
    # Keys are not searched: "city" is one, "Lyon" its value.
    assert not search(Event.objects.all(), "city").exists()
    assert search(Event.objects.all(), "lyon").get() == events["keys"]


@pytest.mark.parametrize("text", ["50%", "a_b", "o'brien", "back\\slash", "x' OR '1'='1", "a:*|b"])
def test_punctuation_and_sql_are_plain_text(events, text):
    Event.objects.create(type="odd", source="api", data={"text": f"see {text} here"})
    Event.objects.create(type="odd", source="api", data={"text": "see nothing here"})
    matched = list(selectors.data_search(Event.objects.all(), text))
    assert all(text in e.data["text"] for e in matched)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("ab", "3 to 200 characters"),
        ("x" * 201, "3 to 200 characters"),
        ("a b c d e f g h i", "8 words"),
    ],
)
def test_a_search_too_short_too_long_or_too_wide_is_refused(text, problem):
    with pytest.raises(selectors.BadFilter, match=problem):
        selectors.data_search(Event.objects.all(), text)


def slow_query() -> str:
    """A statement that takes seconds on either database."""
    if connection.vendor == "postgresql":
        return "SELECT pg_sleep(5)"
    return (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
        "SELECT count(*) FROM n"
    )


def test_a_search_past_its_time_limit_is_stopped_and_says_how_to_narrow_it(settings, events):
    settings.SEARCH_TIMEOUT_MS = 100
    with (
        pytest.raises(selectors.SearchTooSlow, match="narrow it") as refused,
        selectors.search_time_limit("berlin"),
        connection.cursor() as cursor,
    ):
        cursor.execute(slow_query())
    assert refused.value.status == 400
    # The connection is usable afterwards, and the limit does not outlive the search.
    assert Event.objects.count() == 3
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == "0"


def test_the_time_limit_is_lifted_after_a_search_that_finished(events):
    with statement_timeout(60_000):
        assert Event.objects.count() == 3
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == "0"
            cursor.execute("SHOW enable_indexscan")
            assert cursor.fetchone()[0] == "on"
    with pytest.raises(QueryTooSlow), statement_timeout(100), connection.cursor() as cursor:
        cursor.execute(slow_query())


def test_postgresql_serves_the_search_from_its_index(events):
    if connection.vendor != "postgresql":
        pytest.skip("the GIN index is PostgreSQL's; SQLite reads every event")
    Event.objects.bulk_create(
        Event(type="filler", source="api", data={"city": "Lyon", "n": n}) for n in range(5000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE events_event")
    with selectors.search_time_limit("nothere"):
        newest = selectors.data_search(Event.objects.all(), "nothere").order_by("-id")[:51]
        plan = newest.explain()
    assert "event_data_search_idx" in plan


# --- The events page --------------------------------------------------------------------------


@pytest.fixture
def viewer(users):
    users["operator"].user_permissions.add(*Permission.objects.filter(codename="view_event"))
    return users["operator"]


def test_the_events_page_searches_the_data(client, viewer, events):
    client.force_login(viewer)
    page = client.get("/app/events/", {"q": "berlin"})
    assert page.status_code == 200
    html = page.content.decode()
    assert f"/app/events/{events['berlin'].id}/" in html
    assert f"/app/events/{events['paris'].id}/" not in html
    assert 'name="q" value="berlin"' in html


def test_the_events_page_refuses_a_short_search_saying_what_to_give(client, viewer, events):
    client.force_login(viewer)
    page = client.get("/app/events/", {"q": "be"})
    assert page.status_code == 400
    html = page.content.decode()
    assert "3 to 200 characters" in html
    assert "/app/events/" + str(events["berlin"].id) not in html


def test_the_search_combines_with_the_other_filters(client, viewer, events):
    order = Event.objects.create(
        type="order.created", source="api", data={"city": "Berlin"}, correlation_id="order-7"
    )
    client.force_login(viewer)
    for filters in ({"type": "order.*"}, {"correlation_id": "order-7"}):
        html = client.get("/app/events/", {"q": "berlin", **filters}).content.decode()
        assert f"/app/events/{order.id}/" in html
        assert f"/app/events/{events['berlin'].id}/" not in html


# --- The API ----------------------------------------------------------------------------------


@pytest.fixture
def api(users):
    users["operator"].user_permissions.add(*Permission.objects.filter(codename="view_event"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=users['operator'])}")
    return client


def test_the_api_searches_the_data_with_q(api, events):
    answer = api.get("/api/events/", {"q": "erin lopez"})
    assert answer.status_code == 200
    assert [e["id"] for e in answer.json()["results"]] == [str(events["berlin"].id)]
    both = api.get("/api/events/", {"q": "expense"}).json()["results"]
    assert both == []  # the type is no data: only the data is searched


def test_the_api_combines_q_with_correlation_id(api, events):
    Event.objects.create(
        type="order.created", source="api", data={"city": "Berlin"}, correlation_id="order-7"
    )
    answer = api.get("/api/events/", {"q": "berlin", "correlation_id": "order-7"}).json()
    assert [e["data"] for e in answer["results"]] == [{"city": "Berlin"}]


@pytest.mark.parametrize(
    ("text", "problem"),
    [("ab", "at least 3"), ("x" * 201, "at most 200"), ("a b c d e f g h i", "8 words")],
)
def test_the_api_refuses_a_bad_search_naming_q(api, events, text, problem):
    answer = api.get("/api/events/", {"q": text})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid"
    assert problem in " ".join(error["fields"]["q"])


def test_searching_needs_the_view_permission(users, events):
    client = APIClient()
    assert client.get("/api/events/", {"q": "berlin"}).status_code in (401, 403)
    client.force_authenticate(users["outsider"])
    assert client.get("/api/events/", {"q": "berlin"}).status_code == 403


# --- One search box for runs and events (/app/search/) ----------------------------------------


@pytest.fixture
def order(workflow_harness):
    """An expense with a correlation id: its event and the run it started."""
    from automation.models import Run

    workflow_harness.emit(
        "example.expense.submitted",
        {"amount": 420, "employee": "erin@example.com", "note": "Lisbon offsite"},
        correlation_id="order-1042",
    )
    return Run.objects.get(correlation_id="order-1042"), Event.objects.get(
        correlation_id="order-1042"
    )


def test_the_search_page_finds_runs_and_events_by_correlation_id_and_short_id(client, users, order):
    from automation.lib.ids import short_id

    run, event = order
    users["operator"].user_permissions.add(
        *Permission.objects.filter(codename__in=["view_event", "view_run"])
    )
    client.force_login(users["operator"])
    for q in ("order-1042", short_id(run.id)):
        html = client.get("/app/search/", {"q": q}).content.decode()
        assert f"/app/runs/{run.id}/" in html, q
    for q in ("order-1042", short_id(event.id), "lisbon"):
        html = client.get("/app/search/", {"q": q}).content.decode()
        assert f"/app/events/{event.id}/" in html, q
    html = client.get("/app/search/", {"q": "lisbon"}).content.decode()
    assert f"/app/runs/{run.id}/" not in html  # the words are the event's, not a run id
    assert "No run has this id" in html


def test_the_search_page_shows_each_kind_only_to_those_who_may_see_it(client, users, order):
    run, event = order
    users["operator"].user_permissions.add(*Permission.objects.filter(codename="view_event"))
    client.force_login(users["operator"])
    html = client.get("/app/search/", {"q": "order-1042"}).content.decode()
    assert f"/app/events/{event.id}/" in html
    assert f"/app/runs/{run.id}/" not in html
    assert 'id="runs-h"' not in html
    client.force_login(users["outsider"])
    assert client.get("/app/search/", {"q": "order-1042"}).status_code == 403


def test_a_search_too_short_for_the_data_still_matches_ids(client, users, order):
    short = Event.objects.create(type="t", source="api", correlation_id="ab", data={"x": "ab"})
    users["operator"].user_permissions.add(*Permission.objects.filter(codename="view_event"))
    client.force_login(users["operator"])
    page = client.get("/app/search/", {"q": "ab"})
    assert page.status_code == 200
    html = page.content.decode()
    assert f"/app/events/{short.id}/" in html
    assert f"/app/events/{order[1].id}/" not in html
