"""Queries: read-only handlers over a run's state, asked through the API and the run page,
bounded in time and size, with errors that say what went wrong."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from automation import workflow
from automation.engine import registry
from automation.engine.errors import WorkflowError
from automation.models import Run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    registry.sync_code_workflows(force=True)


@pytest.fixture
def viewer(users, client):
    viewer = users["operator"]
    viewer.user_permissions.add(Permission.objects.get(codename="view_run"))
    client.force_login(viewer)
    return viewer


def _ask(client, run, name, **params):
    return client.get(f"/api/runs/{run.id}/queries/{name}/", params)


def test_a_query_answers_from_the_runs_current_state(client, viewer, workflow_harness):
    run = workflow_harness.start("test-signal")
    response = _ask(client, run, "progress")
    assert response.status_code == 200
    assert response.json() == {"query": "progress", "result": {"status": "waiting", "taken": []}}
    from automation.engine.signalling import signal_send

    signal_send(run_id=run.id, name="go", data={"n": 1})
    workflow_harness.drain()
    assert _ask(client, run, "progress").json()["result"]["taken"] == ["first"]
    answer = _ask(client, run, "step-output", step="first").json()["result"]
    assert answer["data"] == {"n": 1}


def test_the_queries_of_a_run_are_listed(client, viewer, workflow_harness):
    run = workflow_harness.start("test-signal")
    listed = client.get(f"/api/runs/{run.id}/queries/").json()["queries"]
    by_name = {q["name"]: q for q in listed}
    assert sorted(by_name) == ["broken", "huge", "meddle", "progress", "slow", "step-output"]
    assert by_name["progress"]["description"] == "Which signals the run has taken so far."
    assert by_name["step-output"]["parameters"] == ["step"]


def test_a_query_cannot_change_the_run(client, viewer, workflow_harness):
    run = workflow_harness.start("test-signal")
    response = _ask(client, run, "meddle")
    assert response.status_code == 500
    assert "does not support item assignment" in response.json()["error"]["message"]
    assert Run.objects.get(id=run.id).status == "waiting"


def test_errors_say_what_went_wrong(client, viewer, workflow_harness, settings):
    run = workflow_harness.start("test-signal", {"query_sleep": 2, "query_bytes": 5000})
    unknown = _ask(client, run, "nope")
    assert unknown.status_code == 404
    assert "has no query 'nope'" in unknown.json()["error"]["message"]
    assert "broken, huge, meddle, progress" in unknown.json()["error"]["message"]
    bad_param = _ask(client, run, "progress", limit=3)
    assert bad_param.status_code == 400
    assert "takes no parameter limit" in bad_param.json()["error"]["message"]
    broken = _ask(client, run, "broken")
    assert broken.status_code == 500
    assert broken.json()["error"] == {
        "code": "query_failed",
        "message": "query 'broken' failed: KeyError: 'no-such-key'",
    }
    settings.AUTOMATION_QUERY_TIMEOUT = 0.2
    slow = _ask(client, run, "slow")
    assert slow.status_code == 504
    assert slow.json()["error"]["code"] == "query_timeout"
    settings.AUTOMATION_QUERY_MAX_BYTES = 1000
    huge = _ask(client, run, "huge")
    assert huge.status_code == 500
    assert huge.json()["error"]["code"] == "query_too_large"
    missing = client.get("/api/runs/0190a000-0000-7000-8000-000000000000/queries/progress/")
    assert missing.status_code == 404


def test_outsiders_cannot_ask(client, users, workflow_harness):
    run = workflow_harness.start("test-signal")
    assert _ask(client, run, "progress").status_code in (401, 403)
    client.force_login(users["outsider"])
    assert _ask(client, run, "progress").status_code == 403
    assert client.get(f"/api/runs/{run.id}/queries/").status_code == 403
    assert client.get(f"/app/runs/{run.id}/queries/progress/").status_code == 403


def test_a_query_needs_a_workflow_and_a_good_name():
    with pytest.raises(WorkflowError, match="takes a @workflow function"):
        workflow.query(lambda run: None)
    with pytest.raises(WorkflowError, match="query name 'Bad Name'"):
        workflow.query("test-signal", name="Bad Name")(lambda run: None)


def test_the_run_page_lists_queries_and_shows_an_answer(client, viewer, workflow_harness):
    run = workflow_harness.start("test-signal")
    page = client.get(f"/app/runs/{run.id}/").content.decode()
    assert 'id="run-queries"' in page
    assert f"/app/runs/{run.id}/queries/progress/" in page
    answer = client.get(f"/app/runs/{run.id}/queries/progress/")
    assert answer.status_code == 200
    assert 'data-query="progress"' in answer.content.decode()
    assert "&quot;waiting&quot;" in answer.content.decode()
    failed = client.get(f"/app/runs/{run.id}/queries/broken/")
    assert failed.status_code == 500
    assert "KeyError" in failed.content.decode()
