"""Pause, resume and rerun from Django admin: the same services, audited in each history."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.models import LogEntry

from automation.models import RunStatus, Workflow

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client, users):
    client.force_login(users["admin"])
    return client


def act(harness, client, model, action, ids):
    return harness._committed(
        client.post,
        f"/admin/automation/{model}/",
        {"action": action, "_selected_action": [str(i) for i in ids]},
    )


def test_pause_and_resume_actions_on_runs(workflow_harness, admin_client_, users):
    waiting = workflow_harness.start("test-control", {"key": "ad1", "nap": "1s"})
    done = workflow_harness.start("test-control", {"key": "ad2", "nap": "1s"})
    workflow_harness.advance_time("1s", drain=False)
    workflow_harness.deliver(done)
    workflow_harness.backend.queue.clear()  # waiting's own wake-up: it is paused below anyway
    assert workflow_harness.refresh(done).status == RunStatus.SUCCEEDED

    act(workflow_harness, admin_client_, "run", "pause", [waiting.id, done.id])
    assert workflow_harness.refresh(waiting).status == RunStatus.PAUSED
    listing = admin_client_.get("/admin/automation/run/?status__exact=paused").content.decode()
    assert f"/admin/automation/run/{waiting.id}/change/" in listing
    assert f"/admin/automation/run/{done.id}/change/" not in listing  # finished: refused
    page = admin_client_.get(f"/admin/automation/run/{waiting.id}/change/").content.decode()
    assert "Paused" in page

    act(workflow_harness, admin_client_, "run", "resume", [waiting.id])
    workflow_harness.drain()
    assert workflow_harness.refresh(waiting).status == RunStatus.SUCCEEDED
    assert LogEntry.objects.filter(object_id=str(waiting.id), user=users["admin"]).count() == 2


def test_the_rerun_action_opens_the_confirmation_and_admin_shows_both_executions(
    workflow_harness, admin_client_
):
    run = workflow_harness.start("test-control", {"key": "ad3", "nap": "1s"})
    workflow_harness.run_until_idle()
    response = act(workflow_harness, admin_client_, "run", "rerun", [run.id])
    assert response.status_code == 302
    assert response["Location"] == f"/app/runs/{run.id}/rerun/"
    workflow_harness._committed(
        admin_client_.post, f"/app/runs/{run.id}/rerun/", {"from_step": "third"}
    )
    workflow_harness.run_until_idle()
    page = admin_client_.get(f"/admin/automation/run/{run.id}/change/").content.decode()
    assert "steps of earlier executions" in page.lower()
    old = re.findall(r'class="field-old_step">\s*<p>([^<]*)</p>', page)
    assert old == ["third"]


def test_pause_and_resume_actions_on_workflows(workflow_harness, admin_client_):
    workflow_harness.start("test-control", {"key": "ad4", "nap": "1s"})
    wf = Workflow.objects.get(name="test-control")
    act(workflow_harness, admin_client_, "workflow", "pause", [wf.pk])
    assert Workflow.objects.get(pk=wf.pk).paused_at is not None
    held = workflow_harness.start("test-control", {"key": "ad5", "nap": "1s"})
    assert workflow_harness.refresh(held).status == RunStatus.PAUSED
    act(workflow_harness, admin_client_, "workflow", "resume", [wf.pk])
    workflow_harness.run_until_idle()
    assert workflow_harness.refresh(held).status == RunStatus.SUCCEEDED
    assert LogEntry.objects.filter(object_id=str(wf.pk)).count() == 2
