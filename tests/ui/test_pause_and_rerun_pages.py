"""The run and workflow pages' pause, resume and rerun: buttons, the rerun confirmation page
listing what runs again, and refusals shown to the operator with nothing changed."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission

from automation.models import Run, RunStatus, StepRecord, Workflow
from tests.engine_app.workflows import executions

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(users, client):
    operator = users["operator"]
    operator.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_run", "change_run", "view_workflow", "change_workflow"]
        )
    )
    client.force_login(operator)
    return operator


def post(harness, client, path, data=None):
    return harness._committed(client.post, path, data or {})


def test_pause_and_resume_from_the_run_page(client, operator, workflow_harness):
    run = workflow_harness.start("test-control", {"key": "u1", "nap": "1s"})
    page = client.get(f"/app/runs/{run.id}/").content.decode()
    assert f'action="/app/runs/{run.id}/pause/"' in page

    response = post(workflow_harness, client, f"/app/runs/{run.id}/pause/")
    assert response.status_code == 302
    page = client.get(f"/app/runs/{run.id}/").content.decode()
    assert 'data-status="paused"' in page
    assert "Paused by olivia" in page
    assert f'action="/app/runs/{run.id}/resume/"' in page

    workflow_harness.advance_time("1h")
    assert workflow_harness.refresh(run).status == RunStatus.PAUSED
    post(workflow_harness, client, f"/app/runs/{run.id}/resume/")
    workflow_harness.drain()
    assert workflow_harness.refresh(run).status == RunStatus.SUCCEEDED
    refused = client.post(f"/app/runs/{run.id}/pause/", follow=True).content.decode()
    assert "has finished" in refused


def test_the_rerun_page_shows_what_runs_again_before_anything_happens(
    client, operator, workflow_harness
):
    run = workflow_harness.start("test-control", {"key": "u2", "nap": "1s"})
    workflow_harness.run_until_idle()
    page = client.get(f"/app/runs/{run.id}/").content.decode()
    assert f'href="/app/runs/{run.id}/rerun/"' in page

    confirm = client.get(f"/app/runs/{run.id}/rerun/?from_step=second").content.decode()
    repeated = confirm.split('id="rerun-repeated"')[1].split("</ul>")[0]
    assert re.findall(r'<span class="mono">([^<]+)</span>', repeated) == ["second", "third"]
    assert Run.objects.get(id=run.id).execution == 1  # looking changes nothing

    response = post(workflow_harness, client, f"/app/runs/{run.id}/rerun/", {"from_step": "second"})
    assert response.status_code == 302
    workflow_harness.run_until_idle()
    run = workflow_harness.refresh(run)
    assert (run.status, run.execution, executions("first:u2")) == (RunStatus.SUCCEEDED, 2, 1)
    page = client.get(f"/app/runs/{run.id}/").content.decode()
    assert 'id="superseded-steps"' in page
    assert "replaced by execution 2" in page


def test_a_rerun_page_refuses_an_unknown_step_or_an_active_run(client, operator, workflow_harness):
    done = workflow_harness.start("test-control", {"key": "u3", "nap": "1s"})
    workflow_harness.run_until_idle()
    unknown = client.post(f"/app/runs/{done.id}/rerun/", {"from_step": "nope"})
    assert unknown.status_code == 400
    assert "choose one of: first, nap, second, third" in unknown.content.decode()
    assert client.post(f"/app/runs/{done.id}/rerun/", {}).status_code == 400

    active = workflow_harness.start("test-control", {"key": "u4"})
    refused = client.post(f"/app/runs/{active.id}/rerun/", {"from_step": "first"})
    assert refused.status_code == 409
    assert "pause it first" in refused.content.decode()
    assert not StepRecord.ledger.filter(superseded_at__isnull=False).exists()


def test_pause_and_resume_from_the_workflow_page(client, operator, workflow_harness):
    workflow_harness.start("test-control", {"key": "u5", "nap": "1s"})
    page = client.get("/app/workflows/test-control/").content.decode()
    assert 'action="/app/workflows/test-control/pause/"' in page
    post(workflow_harness, client, "/app/workflows/test-control/pause/")
    page = client.get("/app/workflows/test-control/").content.decode()
    assert 'id="workflow-paused"' in page
    assert "by olivia" in page

    held = workflow_harness.start("test-control", {"key": "u6", "nap": "1s"})
    assert workflow_harness.refresh(held).status == RunStatus.PAUSED
    resumed = post(workflow_harness, client, "/app/workflows/test-control/resume/")
    assert resumed.status_code == 302
    workflow_harness.run_until_idle()
    assert workflow_harness.refresh(held).status == RunStatus.SUCCEEDED
    assert Workflow.objects.get(name="test-control").paused_at is None


def test_people_without_the_permission_see_no_buttons_and_are_refused(
    client, users, workflow_harness
):
    viewer = users["outsider"]
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_run", "view_workflow"])
    )
    client.force_login(viewer)
    run = workflow_harness.start("test-control", {"key": "u7"})
    page = client.get(f"/app/runs/{run.id}/").content.decode()
    assert "/pause/" not in page
    assert "/pause/" not in client.get("/app/workflows/test-control/").content.decode()
    assert client.post(f"/app/runs/{run.id}/pause/").status_code == 403
    assert client.get(f"/app/runs/{run.id}/rerun/").status_code == 403
    assert client.post("/app/workflows/test-control/pause/").status_code == 403
    assert workflow_harness.refresh(run).status == RunStatus.WAITING
