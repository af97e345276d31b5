"""JSON that parses but that no database can store: lone surrogates, NaN, Infinity, 1e999.

Each is refused with a 400 that names the value's path, before anything is stored, by the
webhooks, the events API and every other API body (run inputs, definitions, approvals), on
SQLite and PostgreSQL alike. Before, a lone surrogate was stored on SQLite and then broke every
events page listing it, and NaN was mistaken for a duplicate delivery (500 or a false 503).
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from approvals.models import Approval
from automation.commands import workflow_definition_save
from automation.lib import jsonsafe
from automation.models import Run, Workflow
from events import webhooks
from events.models import Event

pytestmark = pytest.mark.django_db

HOSTILE = {
    "lone surrogate": (b'"\\ud800"', "surrogate"),
    "low surrogate": (b'"a\\udfffb"', "surrogate"),
    "NaN": (b"NaN", "NaN"),
    "Infinity": (b"Infinity", "inf"),
    "-Infinity": (b"-Infinity", "inf"),
    "1e999": (b"1e999", "inf"),
}


@pytest.fixture
def admin_api(users) -> APIClient:
    client = APIClient()
    client.force_authenticate(users["admin"])
    return client


def _event_body(value: bytes) -> bytes:
    return b'{"type": "order.created", "data": {"items": [1, {"note": ' + value + b"}]}}"


def _refused_naming_the_path(response, path: str, mentions: str) -> None:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert path in error["message"], error
    assert mentions.lower() in error["message"].lower(), error
    assert "insert" not in error["message"].lower()  # never SQL
    assert Event.objects.count() == 0


@pytest.mark.parametrize(("value", "mentions"), HOSTILE.values(), ids=HOSTILE.keys())
def test_a_webhook_with_an_unstorable_value_is_400_naming_its_path(client, value, mentions):
    webhooks.webhook_endpoint_create(slug="lan", scheme="none")
    body = b'{"type": "order.created", "items": [1, {"note": ' + value + b"}]}"
    response = client.post("/hooks/lan/", data=body, content_type="application/json")
    _refused_naming_the_path(response, "items[1].note", mentions)
    assert response.json()["error"]["code"] == "unstorable_value"


@pytest.mark.parametrize(("value", "mentions"), HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("idempotency_key", ["", "delivery-1"])
def test_the_events_api_refuses_an_unstorable_value_with_400(
    admin_api, value, mentions, idempotency_key
):
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    response = admin_api.generic(
        "POST", "/api/events/", _event_body(value), content_type="application/json", **headers
    )
    _refused_naming_the_path(response, "data.items[1].note", mentions)
    assert "Retry-After" not in response


def test_a_structured_cloudevent_with_a_lone_surrogate_is_400(admin_api):
    body = (
        b'{"specversion": "1.0", "id": "1", "source": "crm", "type": "a.b", '
        b'"data": {"name": "\\ud83d"}}'
    )
    response = admin_api.generic(
        "POST", "/api/events/", body, content_type="application/cloudevents+json"
    )
    _refused_naming_the_path(response, "data.name", "surrogate")


def test_a_lone_surrogate_in_a_key_is_refused(admin_api):
    body = b'{"type": "a.b", "data": {"ok": {"\\udc00": 1}}}'
    response = admin_api.generic("POST", "/api/events/", body, content_type="application/json")
    _refused_naming_the_path(response, "data.ok", "surrogate")


def test_the_events_pages_keep_working_after_a_hostile_delivery(client, users):
    webhooks.webhook_endpoint_create(slug="lan", scheme="none")
    client.post("/hooks/lan/", data=_event_body(b'"\\ud800"'), content_type="application/json")
    fine = b'{"type": "a.b", "x": "fine"}'
    client.post("/hooks/lan/", data=fine, content_type="application/json")
    client.force_login(users["admin"])
    assert client.get("/app/events/").status_code == 200
    assert APIClient().get("/healthz").status_code == 200
    admin_api = APIClient()
    admin_api.force_authenticate(users["admin"])
    listed = admin_api.get("/api/events/")
    assert listed.status_code == 200
    assert [event["type"] for event in listed.json()["results"]] == ["a.b"]


# --- every other JSON body of the API ---------------------------------------------------------

DEFINITION = {
    "name": "greet",
    "trigger": {"event": "user.created"},
    "steps": [{"id": "hello", "action": "log", "input": {"message": "hi"}}],
}


@pytest.mark.parametrize(("value", "mentions"), HOSTILE.values(), ids=HOSTILE.keys())
def test_run_input_with_an_unstorable_value_is_400_and_starts_nothing(
    admin_api, users, value, mentions
):
    workflow_definition_save(definition=DEFINITION, user=users["admin"])
    body = b'{"input": {"who": [' + value + b"]}}"
    response = admin_api.generic(
        "POST", "/api/workflows/greet/runs/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert "input.who[0]" in error["message"]
    assert mentions.lower() in error["message"].lower()
    assert Run.objects.count() == 0


def test_a_definition_with_a_lone_surrogate_is_400_and_saves_nothing(admin_api):
    body = (
        b'{"definition": {"name": "greet", "trigger": {"event": "user.created"}, "steps": '
        b'[{"id": "hello", "action": "log", "input": {"message": "\\ud800"}}]}}'
    )
    response = admin_api.generic("POST", "/api/workflows/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "definition.steps[0].input.message" in response.json()["error"]["message"]
    assert not Workflow.objects.filter(name="greet").exists()


def test_an_approval_comment_with_a_lone_surrogate_is_400_and_decides_nothing(
    admin_api, workflow_harness
):
    Group.objects.create(name="managers")  # the example workflow asks them
    workflow_harness.emit("example.expense.submitted", {"amount": 90, "employee": "e@x.com"})
    approval = Approval.objects.get(run__workflow__name="example-expense-approval")
    response = admin_api.generic(
        "POST",
        f"/api/approvals/{approval.id}/decide/",
        b'{"decision": "approve", "comment": "fine \\ud800"}',
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    assert "comment" in response.json()["error"]["message"]
    approval.refresh_from_db()
    assert approval.status == Approval.Status.PENDING


def test_the_admin_refuses_a_lone_surrogate_in_a_definition(client, users):
    client.force_login(users["admin"])
    text = (
        '{"name": "greet", "trigger": {"event": "user.created"}, "steps": '
        '[{"id": "hello", "action": "log", "input": {"message": "\\ud800"}}]}'
    )
    response = client.post(
        "/admin/automation/workflow/add/",
        {"definition": text, "active": "on", "versions-TOTAL_FORMS": "0",
         "versions-INITIAL_FORMS": "0"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "steps[0].input.message" in response.content.decode()
    assert "lone surrogate" in response.content.decode()
    assert not Workflow.objects.filter(name="greet").exists()


# --- bodies that are not UTF-8 ----------------------------------------------------------------

#: Each would smuggle a lone surrogate past a check that reads only escapes in UTF-8 text: the
#: surrogate encoded raw (UTF-8 cannot hold it), or an escape in a UTF-16/UTF-32 body.
NOT_UTF8 = {
    "raw encoded surrogate": lambda text: text.replace("\\ud800", "\ud800").encode(
        "utf-8", "surrogatepass"
    ),
    "UTF-16": lambda text: text.encode("utf-16"),
    "UTF-32": lambda text: text.encode("utf-32"),
}


def _refused_as_not_utf8(response) -> None:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "malformed_json", error
    assert "utf-8" in error["message"].lower(), error
    assert Event.objects.count() == 0


@pytest.mark.parametrize("encode", NOT_UTF8.values(), ids=NOT_UTF8.keys())
def test_a_webhook_body_that_is_not_utf8_is_400(client, encode):
    webhooks.webhook_endpoint_create(slug="lan", scheme="none")
    body = encode('{"type": "order.created", "note": "\\ud800"}')
    response = client.post("/hooks/lan/", data=body, content_type="application/json")
    _refused_as_not_utf8(response)


@pytest.mark.parametrize("encode", NOT_UTF8.values(), ids=NOT_UTF8.keys())
def test_an_events_api_body_that_is_not_utf8_is_400(admin_api, encode):
    body = encode('{"type": "order.created", "data": {"note": "\\ud800"}}')
    response = admin_api.generic("POST", "/api/events/", body, content_type="application/json")
    _refused_as_not_utf8(response)


@pytest.mark.parametrize("encode", NOT_UTF8.values(), ids=NOT_UTF8.keys())
def test_binary_cloudevent_data_that_is_not_utf8_is_400(admin_api, encode):
    headers = {
        "HTTP_CE_SPECVERSION": "1.0",
        "HTTP_CE_ID": "1",
        "HTTP_CE_SOURCE": "crm",
        "HTTP_CE_TYPE": "a.b",
    }
    body = encode('{"note": "\\ud800"}')
    response = admin_api.generic(
        "POST", "/api/events/", body, content_type="application/json", **headers
    )
    _refused_as_not_utf8(response)


# --- the parser itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"\\udc00": 1}', "\\udc00"),
        ('{"data": {"ok": {"\\ud800x": 1}}}', "data.ok.\\ud800x"),
        ('{"data": [{"\\udfff": {"y": 2}}]}', "data[0].\\udfff"),
    ],
)
def test_a_key_with_a_lone_surrogate_is_named_by_its_own_path(text, path):
    with pytest.raises(jsonsafe.UnstorableJSON) as refused:
        jsonsafe.loads(text)
    assert refused.value.path == path
    assert "key" in refused.value.problem


@pytest.mark.parametrize(
    "number",
    ["1e999", "1E+400", "-2.5e0309", "1" * 400, "1" * 400 + ".5", "1" * 250 + "e99"],
)
def test_every_spelling_of_a_number_too_large_for_a_double_is_refused(number):
    document = '{"a": [' + number + "]}"
    if "." not in number and "e" not in number.lower():
        assert jsonsafe.loads(document) == {"a": [int(number)]}  # an integer stays exact
        return
    with pytest.raises(jsonsafe.UnstorableJSON) as refused:
        jsonsafe.loads(document)
    assert refused.value.path == "a[0]"


def test_large_finite_numbers_are_kept():
    assert jsonsafe.loads(b'{"a": 1e308, "b": -1.5e-999, "c": 12345678901234567890.5}') == {
        "a": 1e308,
        "b": -0.0,
        "c": 12345678901234567890.5,
    }
