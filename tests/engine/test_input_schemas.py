"""Workflow input schemas: checked when the definition is saved (a bad schema is a definition
error by path), and when a person or client starts a run (API, run_workflow, the Start run
form): an input that breaks it is refused naming each path, and nothing is started. Runs
started by events are not checked."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError

from automation.commands import workflow_definition_save
from automation.definitions.validation import InvalidDefinition, validate
from automation.engine import inputs
from automation.engine.errors import WorkflowError
from automation.engine.registry import workflow
from automation.engine.runs import run_start
from automation.models import Run

pytestmark = pytest.mark.django_db

SCHEMA = {
    "type": "object",
    "required": ["email", "plan"],
    "properties": {
        "email": {"type": "string", "format": "email", "description": "Who to welcome."},
        "plan": {"enum": ["free", "pro"]},
        "seats": {"type": "integer", "minimum": 1},
        "trial": {"type": "boolean"},
    },
    "additionalProperties": False,
}
DEFINITION = {
    "name": "welcome",
    "input_schema": SCHEMA,
    "trigger": {"event": "user.signed_up"},
    "steps": [{"id": "hello", "action": "log", "input": {"message": "hi {{ input.email }}"}}],
}


@workflow("input-schema-code", input_schema={"type": "object", "required": ["sku"]})
def coded(ctx, event):
    return {}


@pytest.fixture
def starter(users):
    user = users["operator"]
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_workflow", "add_run", "view_run"])
    )
    return user


@pytest.fixture
def welcome():
    wf, _, _ = workflow_definition_save(definition=DEFINITION)
    return wf


def test_a_bad_schema_is_a_definition_error_at_its_path():
    errors = validate({**DEFINITION, "input_schema": {"type": "object", "required": "email"}})
    assert [(e.path, "not a valid JSON Schema" in e.message) for e in errors] == [
        ("input_schema.required", True)
    ]
    wrong_type = validate({**DEFINITION, "input_schema": {"type": "array"}})
    assert [e.path for e in wrong_type] == ["input_schema.type"]
    big = {"type": "object", "description": "x" * (inputs.MAX_SCHEMA_BYTES + 1)}
    assert "at most" in validate({**DEFINITION, "input_schema": big})[0].message
    with pytest.raises(InvalidDefinition):
        workflow_definition_save(definition={**DEFINITION, "input_schema": {"type": 3}})
    assert not Run.objects.exists()


def test_a_code_workflow_with_a_bad_schema_is_refused_when_registered():
    with pytest.raises(WorkflowError, match="input_schema"):
        workflow("input-schema-bad", input_schema={"type": "nonsense"})(lambda ctx, event: {})


def test_the_api_refuses_an_input_naming_each_path_and_starts_nothing(client, starter, welcome):
    client.force_login(starter)
    bad = client.post(
        "/api/workflows/welcome/runs/",
        {"input": {"plan": "gold", "seats": 0, "extra": 1}},
        "application/json",
    )
    assert bad.status_code == 400
    body = bad.json()["error"]
    assert body["code"] == "invalid_input"
    paths = {problem["path"] for problem in body["errors"]}
    assert {"input.email", "input.plan", "input.seats", "input"} <= paths
    assert not Run.objects.exists()
    good = client.post(
        "/api/workflows/welcome/runs/",
        {"input": {"email": "ada@example.com", "plan": "pro"}},
        "application/json",
    )
    assert good.status_code == 202
    assert Run.objects.get().input == {"email": "ada@example.com", "plan": "pro"}


def test_the_api_shows_the_input_schema(client, starter, welcome):
    client.force_login(starter)
    assert client.get("/api/workflows/welcome/").json()["input_schema"] == SCHEMA
    run_start(workflow="input-schema-code", input={"sku": "A1"})  # registers its row
    coded_detail = client.get("/api/workflows/input-schema-code/").json()
    assert coded_detail["input_schema"] == {"type": "object", "required": ["sku"]}


def test_outsiders_cannot_start_runs(client, users, welcome):
    url = "/api/workflows/welcome/runs/"
    assert client.post(url, {"input": {}}, "application/json").status_code in (401, 403)
    client.force_login(users["outsider"])
    assert client.post(url, {"input": {}}, "application/json").status_code == 403
    assert not Run.objects.exists()


def test_run_workflow_refuses_a_bad_input(welcome):
    with pytest.raises(CommandError, match=r"input\.email: is required"):
        call_command("run_workflow", "welcome", "--input", '{"plan": "pro"}', "--no-follow")
    assert not Run.objects.exists()
    out = StringIO()
    call_command(
        "run_workflow",
        "welcome",
        "--input",
        '{"email": "a@b.c", "plan": "free"}',
        "--no-follow",
        stdout=out,
    )
    assert "Started run" in out.getvalue()


def test_code_workflows_check_their_schema_and_events_are_not_checked(welcome):
    with pytest.raises(inputs.InvalidInput) as refused:
        run_start(workflow="input-schema-code", input={}, check_input=True)
    assert refused.value.errors == [("input.sku", "is required")]
    assert run_start(workflow="input-schema-code", input={"sku": "A1"}, check_input=True)
    # Application code and events are not checked (an event is the trigger, not an input).
    assert run_start(workflow="welcome", input={"anything": True})


def test_the_start_form_has_a_field_per_property(client, starter, welcome):
    client.force_login(starter)
    page = client.get("/app/workflows/welcome/").content.decode()
    assert '<label for="id_in_email">email <span class="muted">(required)</span></label>' in page
    assert "Who to welcome." in page
    assert '<select name="in_plan"' in page
    assert ">pro</option>" in page
    assert 'type="number" name="in_seats"' in page
    assert 'type="checkbox" name="in_trial"' in page
    assert "<summary>JSON instead</summary>" in page


def test_the_start_form_shows_errors_under_each_field_and_starts_nothing(client, starter, welcome):
    client.force_login(starter)
    response = client.post("/app/workflows/welcome/start/", {"in_seats": "0"})
    assert response.status_code == 400
    page = response.content.decode()
    email = page.split('for="id_in_email"')[1].split("</div>")[0]
    assert "is required." in email
    seats = page.split('for="id_in_seats"')[1].split("</div>")[0]
    assert "0 is less than the minimum of 1." in seats
    assert not Run.objects.exists()
    started = client.post(
        "/app/workflows/welcome/start/",
        {"in_email": "ada@example.com", "in_plan": "1", "in_seats": "3", "in_trial": "on"},
    )
    assert started.status_code == 302
    assert Run.objects.get().input == {
        "email": "ada@example.com",
        "plan": "pro",
        "seats": 3,
        "trial": True,
    }


def test_the_json_fallback_is_checked_against_the_same_schema(client, starter, welcome):
    client.force_login(starter)
    refused = client.post(
        "/app/workflows/welcome/start/", {"use_json": "on", "input": '{"email": 5}'}
    )
    assert refused.status_code == 400
    assert "input.email: 5 is not of type" in refused.content.decode()
    assert not Run.objects.exists()
    started = client.post(
        "/app/workflows/welcome/start/",
        {"use_json": "on", "input": '{"email": "a@b.c", "plan": "free"}'},
    )
    assert started.status_code == 302
    assert Run.objects.get().input == {"email": "a@b.c", "plan": "free"}


def test_other_shapes_get_the_json_textarea_only(client, starter):
    nested = {
        **DEFINITION,
        "input_schema": {"type": "object", "properties": {"items": {"type": "array"}}},
    }
    workflow_definition_save(definition=nested)
    client.force_login(starter)
    page = client.get("/app/workflows/welcome/").content.decode()
    assert 'name="in_items"' not in page
    assert "Input (JSON)" in page
    assert "JSON instead" not in page
