"""Attacks on the session's new features: signals, pause and rerun, rules, the schema registry,
delegation, search. Each test is one attempt and what the product answers: a 4xx naming the
problem with nothing stored, or the attempt leading nowhere."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from approvals.models import Delegation
from automation.engine import registry
from automation.models import Run, Signal, Workflow
from events.models import Event, EventSchema

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    registry.sync_code_workflows(force=True)


@pytest.fixture
def admin_api(users) -> APIClient:
    client = APIClient()
    client.force_authenticate(users["admin"])
    return client


def _nested_schema(levels: int) -> dict:
    schema: dict = {"type": "object", "properties": {"x": {"type": "string"}}}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


# --- unbounded recursion inside a request ----------------------------------------------------


@pytest.mark.parametrize("levels", [40, 150])
def test_a_schema_nested_too_deep_is_a_400_not_a_500(admin_api, levels):
    """jsonschema's check and the compatibility walk recurse per level: 150 levels of
    properties overflowed Python's stack (500). The API's parser refuses such a body; the
    registry refuses a schema deeper than an event may be (EVENTS_MAX_JSON_DEPTH) from anywhere
    (the admin too)."""
    body = {"type": "order.created", "schema": _nested_schema(levels)}
    response = admin_api.post("/api/schemas/", json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert "deep" in (
        " ".join(error["fields"]["schema"]) if "fields" in error else error["message"]
    )
    assert not EventSchema.objects.exists()


def test_a_nested_schema_of_reasonable_depth_is_still_saved(admin_api):
    body = {"type": "order.created", "schema": _nested_schema(20)}
    response = admin_api.post("/api/schemas/", json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content


def test_signal_data_nested_too_deep_is_a_400_with_nothing_stored(admin_api, workflow_harness):
    """900 levels parsed, then storing the signal (json.dumps) overflowed the stack: a 500."""
    run = workflow_harness.start("test-signal")
    deep = "[" * 900 + "]" * 900
    response = admin_api.post(
        f"/api/runs/{run.id}/signals/",
        '{"name": "go", "data": {"a": ' + deep + "}}",
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    assert "levels deep" in response.json()["error"]["message"]
    assert not Signal.objects.exists()


def test_signal_data_of_ordinary_depth_is_taken(admin_api, workflow_harness):
    run = workflow_harness.start("test-signal", drain=False)
    nested = "[" * 40 + "1" + "]" * 40
    response = admin_api.post(
        f"/api/runs/{run.id}/signals/",
        '{"name": "go", "data": {"a": ' + nested + "}}",
        content_type="application/json",
    )
    assert response.status_code == 202, response.content


def test_signal_data_from_the_run_page_nested_too_deep_is_a_400(client, users, workflow_harness):
    """The run page's form parses its own JSON: 900 levels reached the database (a 500)."""
    run = workflow_harness.start("test-signal", drain=False)
    client.force_login(users["admin"])
    data = '{"a": ' + "[" * 900 + "]" * 900 + "}"
    response = client.post(f"/app/runs/{run.id}/signals/", {"name": "go", "data": data})
    assert response.status_code == 400
    assert "levels" in response.content.decode()
    assert not Signal.objects.exists()


# --- text no database can store (a NUL character) --------------------------------------------


def test_a_nul_in_signal_data_is_a_400_with_nothing_stored(client, users, workflow_harness):
    """PostgreSQL's jsonb refuses \\u0000: the run page answered 500 there."""
    run = workflow_harness.start("test-signal", drain=False)
    client.force_login(users["admin"])
    response = client.post(
        f"/app/runs/{run.id}/signals/", {"name": "go", "data": '{"a": "x\\u0000y"}'}
    )
    assert response.status_code in (302, 400)
    if response.status_code == 400:  # PostgreSQL
        assert "refused" in response.content.decode()
        assert not Signal.objects.exists()


@pytest.mark.parametrize("url", ["/app/search/", "/app/runs/", "/app/events/", "/api/runs/"])
def test_a_search_for_a_nul_character_is_answered_not_a_500(client, users, url):
    client.force_login(users["admin"])
    response = client.get(url, {"q": "ab\x00cd"})
    assert response.status_code in (200, 400)


@pytest.mark.parametrize("query", ["search.customer=a%00b", "attr=customer%3Da%00b"])
@pytest.mark.parametrize("url", ["/app/runs/", "/api/runs/"])
def test_a_search_attribute_with_a_nul_character_is_a_400(client, users, url, query):
    client.force_login(users["admin"])
    response = client.get(f"{url}?{query}")
    if url.startswith("/api/") and query.startswith("attr"):
        assert response.status_code == 200  # the API has no attr parameter
    else:
        assert response.status_code == 400
        assert "NUL" in response.content.decode()


# --- CSRF on the new forms of the operator UI -------------------------------------------------


def test_the_new_app_forms_refuse_a_post_without_the_csrf_token(users, workflow_harness):
    """Delegation, signals, pause, resume, rerun, activate and test events: a cross-site form
    (a session cookie, no token) is refused with 403 and changes nothing."""
    run = workflow_harness.start("test-signal", drain=False)
    later = "2099-01-01T00:00"
    Delegation.objects.create(
        user=users["admin"],
        delegate=users["operator"],
        starts_at="2098-01-01T00:00Z",
        ends_at="2098-02-01T00:00Z",
        created_at="2026-01-01T00:00Z",
    )
    mine = Delegation.objects.get()
    posts = [
        (
            "/app/approvals/delegation/",
            {"delegate": "olivia", "starts_at": later, "ends_at": later},
        ),
        (f"/app/approvals/delegation/{mine.pk}/end/", {}),
        (f"/app/runs/{run.id}/signals/", {"name": "go", "data": "{}"}),
        (f"/app/runs/{run.id}/pause/", {}),
        (f"/app/runs/{run.id}/resume/", {}),
        (f"/app/runs/{run.id}/rerun/", {"from_step": "first"}),
        ("/app/workflows/test-signal/pause/", {}),
        ("/app/workflows/test-signal/deactivate/", {}),
        ("/app/workflows/test-signal/send-event/", {"type": "a.b", "data": "{}"}),
    ]
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(users["admin"])
    for url, body in posts:
        assert browser.post(url, body).status_code == 403, url
    assert Delegation.objects.count() == 1
    assert not Signal.objects.exists()
    assert Run.objects.get(id=run.id).status == "pending"
    workflow = Workflow.objects.get(name="test-signal")
    assert workflow.active
    assert workflow.paused_at is None


@pytest.mark.parametrize(
    "url",
    [
        "/api/schemas/",
        "/api/events/01a243fc-8012-7f29-b233-42c416bb8d2c/replay/",
        "/api/webhooks/",
    ],
)
def test_a_body_too_deep_for_the_json_parser_is_a_400(admin_api, url):
    """These views took DRF's plain JSONParser, which lets the parser's RecursionError
    through: 100,000 nested arrays were a 500."""
    body = "[" * 100_000 + "]" * 100_000
    response = admin_api.post(url, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert not EventSchema.objects.exists()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ('{"a": NaN}', "cannot be stored"),
        ('{"a": 1e999}', "cannot be stored"),
        ('{"a": "\\ud800"}', "cannot be stored"),
        ('{"a": ' + "[" * 300 + "]" * 300 + "}", "levels deep"),
    ],
)
def test_the_workflow_pages_test_event_refuses_unstorable_data(client, users, data, says):
    """The form parsed its own JSON: NaN and 1e999 failed SQLite's JSON check, a lone
    surrogate PostgreSQL's jsonb, 300 levels json.dumps; each was a 500."""
    client.force_login(users["admin"])
    response = client.post("/app/workflows/test-signal/send-event/", {"type": "a.b", "data": data})
    assert response.status_code == 400
    assert says in response.content.decode()
    assert not Event.objects.exists()
