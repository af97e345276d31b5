"""`manage.py demo`: the quick start's approval in the browser, by one command, run twice."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

from approvals.models import Approval
from automation.models import Run, Workflow
from events.models import Event

pytestmark = pytest.mark.django_db

PASSWORD = re.compile(r"with password '([^']+)'")


def demo(workflow_harness, django_capture_on_commit_callbacks) -> str:
    """Run the command as a user would, deliver the work it queued; its printed password."""
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo", stdout=out)
    workflow_harness.drain()
    match = PASSWORD.search(out.getvalue())
    assert match, out.getvalue()
    return match[1]


def test_demo_makes_an_approval_the_printed_approver_can_decide_in_the_browser(
    workflow_harness, django_capture_on_commit_callbacks, client
):
    password = demo(workflow_harness, django_capture_on_commit_callbacks)

    approver = get_user_model().objects.get(username="demo-approver")
    assert approver.groups.filter(name="managers").exists()
    approval = Approval.objects.get()
    assert approval.status == Approval.Status.PENDING
    assert approval.run.workflow.name == "declarative-expense-approval"
    signed_in = client.post("/app/login/", {"username": "demo-approver", "password": password})
    assert signed_in.status_code == 302, signed_in.content
    page = client.get(f"/app/approvals/{approval.pk}/")
    assert page.status_code == 200
    assert "Expense of 90 by demo-employee@example.com" in page.content.decode()


def test_demo_run_twice_duplicates_nothing_and_prints_working_credentials(
    workflow_harness, django_capture_on_commit_callbacks
):
    first = demo(workflow_harness, django_capture_on_commit_callbacks)
    second = demo(workflow_harness, django_capture_on_commit_callbacks)

    assert get_user_model().objects.filter(username="demo-approver").count() == 1
    assert Group.objects.filter(name="managers").count() == 1
    workflow = Workflow.objects.get(name="declarative-expense-approval")
    assert workflow.versions.count() == 1
    assert Event.objects.filter(type="example.declared.expense.submitted").count() == 1
    assert Run.objects.filter(workflow=workflow).count() == 1
    assert Approval.objects.count() == 1
    # Each run sets a new password: the one printed last is the one that works.
    approver = get_user_model().objects.get(username="demo-approver")
    assert approver.check_password(second)
    assert not approver.check_password(first)
