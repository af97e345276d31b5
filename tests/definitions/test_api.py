"""The workflows API: create, edit (a changed definition is a new version), start runs, the
JSON Schema and the action registry; nothing invalid is saved."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from automation.models import Run, Workflow, WorkflowVersion

pytestmark = pytest.mark.django_db

DEFINITION = {
    "name": "greet",
    "trigger": {"event": "user.signed_up"},
    "steps": [{"id": "hello", "action": "log", "input": {"message": "hi {{ input.name }}"}}],
}


@pytest.fixture
def editor(users):
    editor = users["operator"]
    editor.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_workflow", "add_workflow", "change_workflow", "add_run"]
        )
    )
    return editor


def test_create_edit_and_list(client, editor):
    client.force_login(editor)
    created = client.post("/api/workflows/", {"definition": DEFINITION}, "application/json")
    assert created.status_code == 201, created.json()
    assert created.json()["version"] == 1
    same = client.put("/api/workflows/greet/", {"definition": DEFINITION}, "application/json")
    assert (same.json()["version"], same.json()["version_created"]) == (1, False)
    changed = {**DEFINITION, "steps": [{**DEFINITION["steps"][0], "input": {"message": "yo"}}]}
    edited = client.put("/api/workflows/greet/", {"definition": changed}, "application/json")
    assert (edited.json()["version"], edited.json()["version_created"]) == (2, True)
    detail = client.get("/api/workflows/greet/").json()
    assert detail["definition"] == changed
    assert [(v["number"], v["in_flight"]) for v in detail["versions"]] == [(2, 0), (1, 0)]
    names = [w["name"] for w in client.get("/api/workflows/").json()["results"]]
    assert "greet" in names
    assert "example-onboarding" in names  # code workflows are listed too
    again = client.post("/api/workflows/", {"definition": DEFINITION}, "application/json")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "exists")


def test_an_invalid_definition_is_400_naming_each_path_and_saves_nothing(client, editor):
    client.force_login(editor)
    bad = {**DEFINITION, "steps": [{"id": "hello", "action": "nope", "input": {}}]}
    response = client.post("/api/workflows/", {"definition": bad}, "application/json")
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "invalid_definition"
    assert body["errors"][0]["path"] == "steps[0].action"
    assert not Workflow.objects.filter(name="greet").exists()
    client.post("/api/workflows/", {"definition": DEFINITION}, "application/json")
    injected = {
        **DEFINITION,
        "steps": [{"id": "hello", "action": "log", "input": {"message": "{{ ''.__class__ }}"}}],
    }
    response = client.put("/api/workflows/greet/", {"definition": injected}, "application/json")
    assert response.json()["error"]["errors"][0]["path"] == "steps[0].input.message"
    renamed = client.put(
        "/api/workflows/greet/", {"definition": {**DEFINITION, "name": "other"}}, "application/json"
    )
    assert renamed.json()["error"]["errors"] == [
        {"path": "name", "message": "this workflow is 'greet'; names cannot change"}
    ]
    assert WorkflowVersion.objects.filter(workflow__name="greet").count() == 1


def test_code_workflows_cannot_be_edited_through_the_api(client, editor):
    client.force_login(editor)
    response = client.put(
        "/api/workflows/example-onboarding/",
        {"definition": {**DEFINITION, "name": "example-onboarding"}},
        "application/json",
    )
    assert (response.status_code, response.json()["error"]["code"]) == (409, "code_workflow")


def test_start_a_run_with_input(client, editor, workflow_harness):
    client.force_login(editor)
    client.post("/api/workflows/", {"definition": DEFINITION}, "application/json")
    response = workflow_harness._committed(
        client.post, "/api/workflows/greet/runs/", {"input": {"name": "ada"}}, "application/json"
    )
    assert response.status_code == 202
    workflow_harness.drain()
    run = Run.objects.get(id=response.json()["id"])
    assert workflow_harness.result(run)["hello"]["message"] == "hi ada"
    assert run.started_by == editor
    Workflow.objects.filter(name="greet").update(active=False)
    inactive = client.post("/api/workflows/greet/runs/", {}, "application/json")
    assert (inactive.status_code, inactive.json()["error"]["code"]) == (409, "not_startable")


def test_schema_and_actions(client, users):
    client.force_login(users["outsider"])
    schema = client.get("/api/workflows/schema/").json()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert "parallel_step" in schema["definitions"]
    actions = {a["name"]: a for a in client.get("/api/actions/").json()}
    assert actions["http.request"]["input_schema"]["required"] == ["url"]
    assert "example.create-user" in actions


def test_permissions_are_checked(client, users):
    client.force_login(users["outsider"])
    assert client.get("/api/workflows/").status_code == 403
    post = client.post("/api/workflows/", {"definition": DEFINITION}, "application/json")
    assert post.status_code == 403
    assert client.post("/api/workflows/example-onboarding/runs/", {}).status_code == 403
    client.logout()
    assert client.get("/api/workflows/schema/").status_code == 401
