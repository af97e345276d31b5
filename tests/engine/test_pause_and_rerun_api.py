"""The pause, resume and rerun API: what an operator's client sees, and what it is refused."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission

from automation.models import Run, RunStatus, StepRecord, Workflow
from tests.engine_app.workflows import executions

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(users):
    operator = users["operator"]
    operator.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_run", "change_run", "view_workflow", "change_workflow"]
        )
    )
    return operator


@pytest.fixture
def api(client, operator, workflow_harness):
    client.force_login(operator)

    def call(method, path, body=None):
        send = getattr(client, method)
        if body is None:
            return workflow_harness._committed(send, path)
        return workflow_harness._committed(send, path, body, content_type="application/json")

    return call


def test_pause_and_resume_a_run_through_the_api(api, workflow_harness, operator):
    run = workflow_harness.start("test-control", {"key": "a1"})
    paused = api("post", f"/api/runs/{run.id}/pause/")
    assert paused.status_code == 202
    assert paused.json()["status"] == "paused"
    assert paused.json()["paused_by"] == "olivia"

    again = api("post", f"/api/runs/{run.id}/pause/")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "not_allowed_now"
    assert "already paused" in again.json()["error"]["message"]

    workflow_harness.advance_time("2h")
    resumed = api("post", f"/api/runs/{run.id}/resume/")
    assert resumed.status_code == 202
    workflow_harness.drain()
    assert api("get", f"/api/runs/{run.id}/").json()["status"] == "succeeded"
    assert api("post", f"/api/runs/{run.id}/resume/").status_code == 409
    history = LogEntry.objects.filter(object_id=str(run.id)).order_by("action_time")
    assert [(e.user, e.change_message) for e in history] == [
        (operator, "Paused the run."),
        (operator, "Resumed the run."),
    ]


def test_the_rerun_preview_names_what_runs_again_and_changes_nothing(api, workflow_harness):
    run = workflow_harness.start("test-control", {"key": "a2", "nap": "1s"})
    workflow_harness.run_until_idle()
    preview = api("get", f"/api/runs/{run.id}/rerun/?from_step=second")
    assert preview.status_code == 200
    body = preview.json()
    assert body["execution"] == 2
    assert [s["id"] for s in body["kept"]] == ["first", "nap"]
    assert [s["id"] for s in body["repeated"]] == ["second", "third"]

    dry = api("post", f"/api/runs/{run.id}/rerun/", {"from_step": "third", "dry_run": True})
    assert dry.status_code == 200
    assert [s["id"] for s in dry.json()["repeated"]] == ["third"]
    assert Run.objects.get(id=run.id).execution == 1
    assert not StepRecord.ledger.filter(run=run, superseded_at__isnull=False).exists()


def test_a_rerun_from_an_unknown_step_is_refused_naming_the_choices(api, workflow_harness):
    run = workflow_harness.start("test-control", {"key": "a3", "nap": "1s"})
    workflow_harness.run_until_idle()
    refused = api("post", f"/api/runs/{run.id}/rerun/", {"from_step": "nope"})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "unknown_step"
    assert error["choices"] == ["first", "nap", "second", "third"]
    missing = api("post", f"/api/runs/{run.id}/rerun/", {})
    assert missing.status_code == 400
    assert Run.objects.get(id=run.id).execution == 1


def test_a_rerun_shows_both_executions_side_by_side(api, workflow_harness):
    run = workflow_harness.start("test-control", {"key": "a4", "nap": "1s"})
    workflow_harness.run_until_idle()
    started = api("post", f"/api/runs/{run.id}/rerun/", {"from_step": "second"})
    assert started.status_code == 202
    assert started.json()["execution"] == 2
    workflow_harness.run_until_idle()
    detail = api("get", f"/api/runs/{run.id}/").json()
    assert detail["status"] == "succeeded"
    assert [s["id"] for s in detail["steps"]] == ["first", "nap", "second", "third"]
    old = {s["id"]: s for s in detail["superseded_steps"]}
    assert sorted(old) == ["second", "third"]
    assert old["second"]["superseded_in"] == 2
    assert old["second"]["output"] == 1
    assert executions("second:a4") == 2


def test_an_active_run_is_not_rerun(api, workflow_harness):
    run = workflow_harness.start("test-control", {"key": "a5"})
    refused = api("post", f"/api/runs/{run.id}/rerun/", {"from_step": "first"})
    assert refused.status_code == 409
    assert "pause it first" in refused.json()["error"]["message"]


def test_pause_and_resume_a_workflow_through_the_api(api, workflow_harness, operator):
    in_flight = workflow_harness.start("test-control", {"key": "w0"})
    paused = api("post", "/api/workflows/test-control/pause/", {})
    assert paused.status_code == 200
    assert paused.json()["paused_by"] == "olivia"
    assert paused.json()["runs"] == 0
    assert api("post", "/api/workflows/test-control/pause/", {}).status_code == 409
    assert api("get", "/api/workflows/test-control/").json()["paused_at"] is not None

    held = workflow_harness.emit("test.control", {"key": "w1", "nap": "1s"})
    run = Run.objects.get(trigger_event_id=held.id)
    assert run.status == RunStatus.PAUSED
    assert workflow_harness.refresh(in_flight).status == RunStatus.WAITING  # it carries on

    resumed = api("post", "/api/workflows/test-control/resume/")
    assert resumed.json() == {**resumed.json(), "runs": 1, "paused_at": None}
    workflow_harness.run_until_idle()
    assert workflow_harness.refresh(run).status == RunStatus.SUCCEEDED
    assert api("post", "/api/workflows/test-control/resume/").status_code == 409
    assert Workflow.objects.get(name="test-control").paused_at is None


def test_pausing_a_workflow_with_its_runs(api, workflow_harness):
    in_flight = workflow_harness.start("test-control", {"key": "w2"})
    paused = api("post", "/api/workflows/test-control/pause/", {"runs": True})
    assert paused.json()["runs"] == 1
    assert workflow_harness.refresh(in_flight).status == RunStatus.PAUSED
    assert api("post", "/api/workflows/test-control/resume/").json()["runs"] == 1
    bad = api("post", "/api/workflows/test-control/pause/", {"runs": "maybe"})
    assert bad.status_code == 400
    assert Workflow.objects.get(name="test-control").paused_at is None


def test_outsiders_cannot_pause_resume_or_rerun(client, users, workflow_harness):
    run = workflow_harness.start("test-control", {"key": "o1"})
    paths = [
        f"/api/runs/{run.id}/pause/",
        f"/api/runs/{run.id}/resume/",
        f"/api/runs/{run.id}/rerun/",
        "/api/workflows/test-control/pause/",
        "/api/workflows/test-control/resume/",
    ]
    assert {client.post(path).status_code for path in paths} == {401}
    client.force_login(users["outsider"])
    assert {client.post(path).status_code for path in paths} == {403}
    assert client.get(f"/api/runs/{run.id}/rerun/?from_step=first").status_code == 403
    assert workflow_harness.refresh(run).status == RunStatus.WAITING
    assert not LogEntry.objects.exists()


def test_paused_runs_are_counted_in_the_metrics(client, workflow_harness, users):
    from tests.test_metrics import scrape

    run = workflow_harness.start("test-control", {"key": "m1"})
    workflow_harness.pause(run, user=users["admin"])
    samples = scrape(client)
    assert samples[("automation_runs_active", (("status", "paused"),))] == 1
    assert samples[("automation_runs_active", (("status", "waiting"),))] == 0
