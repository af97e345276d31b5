"""The workflows pages: the list (status, latest runs), a workflow's page (versions, latest
runs) and "Start run" with JSON input, allowed to the same people as the API."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from automation.commands import workflow_definition_save
from automation.lib.ids import short_id
from automation.models import Run, Workflow

pytestmark = pytest.mark.django_db

DEFINITION = {
    "name": "greet",
    "description": "Says hello.",
    "trigger": {"event": "greet.requested"},
    "steps": [{"id": "hello", "action": "log", "input": {"message": "hi"}}],
}


def _user(django_user_model, name: str, *codenames: str):
    user = django_user_model.objects.create_user(name, f"{name}@example.com", "pw")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def greet(workflow_harness):
    workflow_definition_save(definition=DEFINITION)
    changed = {**DEFINITION, "steps": [{**DEFINITION["steps"][0], "input": {"message": "hey"}}]}
    workflow, _, created = workflow_definition_save(definition=changed)
    assert created  # a second version
    workflow_harness.start("greet", {"who": "erin"})
    return workflow


@pytest.fixture
def starter(django_user_model):
    return _user(django_user_model, "stan", "view_workflow", "add_run", "view_run")


def test_the_list_shows_status_version_and_latest_runs(client, greet, starter):
    run = Run.objects.get(workflow=greet)
    client.force_login(starter)
    page = client.get("/app/workflows/").content.decode()
    row = page.split('data-workflow="greet"')[1].split("</tr>")[0]
    assert 'href="/app/workflows/greet/"' in row
    assert "Active" in row
    assert "v2" in row
    assert "greet.requested" in row
    assert f'href="/app/runs/{run.id}/"' in row
    assert short_id(run.id) in row
    assert 'href="/app/workflows/"' in page  # in the nav


def test_the_workflow_page_lists_versions_runs_and_the_start_form(client, greet, starter):
    client.force_login(starter)
    page = client.get("/app/workflows/greet/").content.decode()
    assert "v2" in page
    assert "v1" in page
    assert "Says hello." in page
    assert short_id(Run.objects.get(workflow=greet).id) in page
    assert 'id="start-form"' in page


def test_starting_a_run_from_the_page_records_who_and_opens_it(client, greet, starter):
    client.force_login(starter)
    response = client.post(
        "/app/workflows/greet/start/", {"input": '{"who": "maria"}', "correlation_id": "c-1"}
    )
    run = Run.objects.get(correlation_id="c-1")
    assert response.status_code == 302
    assert response["Location"] == f"/app/runs/{run.id}/"
    assert run.input == {"who": "maria"}
    assert run.started_by == starter
    assert run.workflow == greet


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("{who: maria}", "This is not JSON"),
        ('["maria"]', "must be a JSON object"),
        ("", "This field is required"),
        ('{"amount": NaN}', "cannot be stored"),
        ('{"name": "\\ud800"}', "cannot be stored"),
    ],
)
def test_bad_input_is_shown_again_and_starts_nothing(client, greet, starter, given, says):
    client.force_login(starter)
    before = Run.objects.count()
    response = client.post("/app/workflows/greet/start/", {"input": given})
    assert response.status_code == 400
    page = response.content.decode()
    assert says in page
    assert 'class="field-error" role="alert"' in page
    assert Run.objects.count() == before


def test_an_inactive_workflow_says_so_and_starts_nothing(client, greet, starter):
    Workflow.objects.filter(pk=greet.pk).update(active=False)
    client.force_login(starter)
    assert "This workflow is inactive" in client.get("/app/workflows/greet/").content.decode()
    before = Run.objects.count()
    response = client.post("/app/workflows/greet/start/", {"input": "{}"})
    assert response.status_code == 409
    assert "activate it to start runs" in response.content.decode()
    assert Run.objects.count() == before


def test_an_unknown_workflow_is_404(client, starter):
    client.force_login(starter)
    assert client.get("/app/workflows/nope/").status_code == 404
    assert client.post("/app/workflows/nope/start/", {"input": "{}"}).status_code == 404


def test_people_who_may_only_look_get_no_start_form(client, greet, django_user_model):
    viewer = _user(django_user_model, "vera", "view_workflow")
    client.force_login(viewer)
    page = client.get("/app/workflows/greet/").content.decode()
    assert 'id="start-form"' not in page
    assert f"/app/runs/{Run.objects.get(workflow=greet).id}/" not in page  # no view_run
    before = Run.objects.count()
    assert client.post("/app/workflows/greet/start/", {"input": "{}"}).status_code == 403
    assert Run.objects.count() == before


def test_outsiders_see_no_workflow_and_start_nothing(client, greet, users):
    client.force_login(users["outsider"])
    before = Run.objects.count()
    assert client.get("/app/workflows/").status_code == 403
    assert client.get("/app/workflows/greet/").status_code == 403
    assert client.post("/app/workflows/greet/start/", {"input": "{}"}).status_code == 403
    assert Run.objects.count() == before
    assert 'href="/app/workflows/"' not in client.get("/app/approvals/").content.decode()
    client.logout()
    assert client.get("/app/workflows/")["Location"].startswith("/app/login/")
    assert client.post("/app/workflows/greet/start/", {"input": "{}"}).status_code == 302
    assert Run.objects.count() == before
