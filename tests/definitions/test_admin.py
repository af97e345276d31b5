"""Admins edit declarative workflows in Django admin: a JSON editor that validates, a new
immutable version per changed definition, versions with in-flight runs and a diff, and a dry
run against a sample event."""

from __future__ import annotations

import json

import pytest

from automation.commands import workflow_definition_save
from automation.models import Workflow, WorkflowVersion

pytestmark = pytest.mark.django_db

DEFINITION = {
    "name": "greet",
    "trigger": {"event": "user.signed_up", "filter": "trigger.data.total > 0"},
    "steps": [
        {"id": "hello", "action": "log", "input": {"message": "hi {{ trigger.data.name }}"}},
        {
            "id": "big",
            "action": "log",
            "if": "trigger.data.total > 1000",
            "input": {"message": "big"},
        },
    ],
}


@pytest.fixture
def admin(client, users):
    client.force_login(users["admin"])
    return client


def post_definition(client, url, definition, active=True):
    data = {
        "definition": json.dumps(definition),
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
    }
    if active:
        data["active"] = "on"
    return client.post(url, data)


def test_add_page_has_a_json_editor_that_validates_against_the_schema(admin):
    page = admin.get("/admin/automation/workflow/add/").content.decode()
    assert "jsoneditor.min.js" in page
    assert '"parallel_step"' in page  # the schema the editor validates with


def test_saving_a_changed_definition_creates_a_version(admin):
    response = post_definition(admin, "/admin/automation/workflow/add/", DEFINITION)
    assert response.status_code == 302, response.content.decode()[:3000]
    wf = Workflow.objects.get(name="greet")
    assert wf.kind == "declarative"
    change = f"/admin/automation/workflow/{wf.pk}/change/"
    post_definition(admin, change, DEFINITION)
    assert wf.versions.count() == 1  # unchanged: no new version
    edited = {**DEFINITION, "steps": DEFINITION["steps"][:1]}
    post_definition(admin, change, edited)
    assert [v.number for v in wf.versions.order_by("number")] == [1, 2]
    assert wf.latest_version().definition == edited


def test_an_invalid_definition_is_refused_with_its_paths(admin):
    bad = {
        **DEFINITION,
        "steps": [{"id": "hello", "action": "nope"}, {"id": "x", "sleep": "whenever"}],
    }
    response = post_definition(admin, "/admin/automation/workflow/add/", bad)
    page = response.content.decode()
    assert response.status_code == 200
    assert "steps[0].action: unknown action" in page
    assert "steps[1].sleep" in page
    assert not Workflow.objects.filter(name="greet").exists()


def test_version_list_shows_in_flight_runs_and_a_diff(admin, workflow_harness):
    workflow_definition_save(definition={**DEFINITION, "steps": [{"id": "nap", "sleep": "1d"}]})
    workflow_harness.start("greet", {"total": 1})
    workflow_definition_save(definition=DEFINITION)
    wf = Workflow.objects.get(name="greet")
    page = admin.get(f"/admin/automation/workflow/{wf.pk}/change/").content.decode()
    assert "runs in flight" in page
    v2 = WorkflowVersion.objects.get(workflow=wf, number=2)
    detail = admin.get(f"/admin/automation/workflowversion/{v2.pk}/change/").content.decode()
    assert 'class="diff"' in detail
    assert "nap" in detail
    assert "hello" in detail
    v1 = WorkflowVersion.objects.get(workflow=wf, number=1)
    assert admin.get(f"/admin/automation/workflowversion/{v1.pk}/change/").status_code == 200
    assert v1.runs.count() == 1


def test_activate_and_deactivate(admin):
    wf, _, _ = workflow_definition_save(definition=DEFINITION)
    admin.post("/admin/automation/workflow/", {"action": "deactivate", "_selected_action": [wf.pk]})
    wf.refresh_from_db()
    assert wf.active is False
    post_definition(admin, f"/admin/automation/workflow/{wf.pk}/change/", DEFINITION)
    wf.refresh_from_db()
    assert wf.active is True


def test_dry_run_shows_rendered_inputs_and_the_branch_taken(admin):
    wf, _, _ = workflow_definition_save(definition=DEFINITION)
    url = f"/admin/automation/workflow/{wf.pk}/dry-run/"
    assert admin.get(url).status_code == 200
    response = admin.post(url, {"data": json.dumps({"name": "ada", "total": 5}), "fakes": "{}"})
    page = response.content.decode()
    assert "hi ada" in page
    assert "dry-run-skipped" in page
    assert "if trigger.data.total &gt; 1000 was false" in page
    filtered = admin.post(url, {"data": json.dumps({"name": "ada", "total": 0})})
    assert "no run would start" in filtered.content.decode()
    from automation.models import Run

    assert not Run.objects.exists()  # a dry run writes nothing


def test_code_workflows_show_no_editor(admin):
    from automation.engine import registry

    registry.sync_code_workflows(force=True)
    wf = Workflow.objects.get(name="example-onboarding")
    page = admin.get(f"/admin/automation/workflow/{wf.pk}/change/").content.decode()
    assert "jsoneditor" not in page
    assert "Dry run" not in page


APPROVAL_DEFINITION = {
    "name": "expense",
    "trigger": {"event": "expense.submitted"},
    "steps": [
        {
            "id": "managerOk",
            "approval": {
                "title": "Pay {{ trigger.data.amount }}?",
                "assignees": ["user:root"],
                "on_reject": "fail",
            },
        },
        {"id": "reply", "wait_for_event": {"event": "expense.paid", "timeout": "1h"}},
        {"id": "pay", "action": "log", "input": {"message": "paid"}},
    ],
}


@pytest.mark.parametrize(
    ("fakes", "shown"),
    [
        ({"managerOk": {"approved": False}}, "approval &#x27;managerOk&#x27; ended rejected"),
        ({"managerOk": {"approved": True}}, "paid"),
        ({"managerOk": {"decision": "expired"}}, "ended expired"),
        ({"managerOk": {"approved": True}, "reply": {"timed_out": True}}, "timed out"),
        ({}, "paid"),
    ],
)
def test_dry_run_accepts_every_fake_the_help_text_allows(admin, fakes, shown):
    wf, _, _ = workflow_definition_save(definition=APPROVAL_DEFINITION)
    url = f"/admin/automation/workflow/{wf.pk}/dry-run/"
    response = admin.post(url, {"data": json.dumps({"amount": 12}), "fakes": json.dumps(fakes)})
    assert response.status_code == 200
    assert shown in response.content.decode()


@pytest.mark.parametrize(
    ("fakes", "message"),
    [
        ({"managerOk": False}, "managerOk"),
        ({"managerOk": {"approved": "no"}}, "managerOk"),
        ({"managerOk": {"decision": "maybe"}}, "managerOk"),
        ({"managerOk": {"approved": True, "decision": "rejected"}}, "managerOk"),
        ({"reply": ["not", "an", "event"]}, "reply"),
    ],
)
def test_dry_run_refuses_a_fake_of_the_wrong_shape_with_a_form_error(admin, fakes, message):
    wf, _, _ = workflow_definition_save(definition=APPROVAL_DEFINITION)
    url = f"/admin/automation/workflow/{wf.pk}/dry-run/"
    response = admin.post(url, {"data": json.dumps({"amount": 12}), "fakes": json.dumps(fakes)})
    assert response.status_code == 200
    errors = response.context["form"].errors["fakes"]
    assert any(message in error for error in errors), errors
