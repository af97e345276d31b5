"""The operator UI from the outside: who sees which page, and what each page shows."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group

from approvals.models import Approval
from automation.models import Run
from events.models import Event

pytestmark = pytest.mark.django_db


def test_anonymous_users_are_sent_to_the_login_form(client):
    for path in ["/app/", "/app/approvals/", "/app/runs/", "/app/events/"]:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith(f"/app/login/?next={path}")
    form = client.get("/app/login/").content.decode()
    assert 'name="username"' in form
    assert 'name="password"' in form


def test_an_operator_signs_in_with_the_form_and_lands_on_the_dashboard(client, manager):
    page = client.get("/app/login/")
    assert page.status_code == 200
    response = client.post("/app/login/", {"username": "maria", "password": "pw"})
    assert response.status_code == 302
    assert response["Location"] == "/app/"
    dashboard = client.get("/app/")
    assert dashboard.status_code == 200
    assert "Approvals waiting" in dashboard.content.decode()


def test_a_wrong_password_says_so_and_signs_nobody_in(client, manager):
    response = client.post("/app/login/", {"username": "maria", "password": "nope"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()
    assert client.get("/app/").status_code == 302


def test_people_who_only_approve_start_at_their_inbox(client, users):
    client.force_login(users["outsider"])
    assert client.get("/app/")["Location"] == "/app/approvals/"
    assert client.get("/app/runs/").status_code == 403
    assert client.get("/app/events/").status_code == 403


def test_the_inbox_shows_my_groups_approvals_and_hides_them_from_others(
    client, expense, manager, users
):
    client.force_login(manager)
    page = client.get("/app/approvals/").content.decode()
    assert "Expense of 420 by erin@example.com" in page
    assert f"/app/approvals/{expense.id}/" in page
    client.force_login(users["outsider"])
    page = client.get("/app/approvals/").content.decode()
    assert "Expense of 420" not in page
    assert "all caught up" in page
    assert client.get(f"/app/approvals/{expense.id}/").status_code == 403
    assert (
        client.post(f"/app/approvals/{expense.id}/decide/", {"decision": "approve"}).status_code
        == 403
    )
    assert Approval.objects.get(pk=expense.pk).status == "pending"


def test_the_approval_page_shows_the_context_and_decides_the_run(
    client, workflow_harness, expense, manager
):
    client.force_login(manager)
    page = client.get(f"/app/approvals/{expense.id}/").content.decode()
    assert "erin@example.com" in page
    assert "420" in page
    assert 'value="approve"' in page
    response = client.post(
        f"/app/approvals/{expense.id}/decide/",
        {"decision": "approve", "comment": "within budget"},
        follow=True,
    )
    assert "Approved. The run continues." in response.content.decode()
    workflow_harness.run_until_idle()
    run = Run.objects.get(workflow__name="example-expense-approval")
    assert run.status == "succeeded"
    assert run.output == {"decision": "approved", "comment": "within budget"}
    page = client.get(f"/app/approvals/{expense.id}/").content.decode()
    assert 'value="approve"' not in page
    assert "within budget" in page


def test_a_second_decision_from_the_page_changes_nothing(client, expense, manager, users):
    client.force_login(manager)
    client.post(f"/app/approvals/{expense.id}/decide/", {"decision": "reject"})
    response = client.post(
        f"/app/approvals/{expense.id}/decide/", {"decision": "approve"}, follow=True
    )
    assert "Nothing changed" in response.content.decode()
    assert Approval.objects.get(pk=expense.pk).status == "rejected"


def test_the_runs_list_filters_and_links_to_the_run_timeline(client, expense, manager):
    client.force_login(manager)
    run = Run.objects.get(workflow__name="example-expense-approval")
    page = client.get("/app/runs/?status=waiting").content.decode()
    assert f"/app/runs/{run.id}/" in page
    assert f"/app/runs/{run.id}/" not in client.get("/app/runs/?status=failed").content.decode()
    timeline = client.get(f"/app/runs/{run.id}/").content.decode()
    assert 'data-step="approve"' in timeline
    assert "Cancel run" in timeline


def test_a_live_refresh_returns_only_the_fragment(client, expense, manager):
    client.force_login(manager)
    run = Run.objects.get(workflow__name="example-expense-approval")
    fragment = client.get(f"/app/runs/{run.id}/?fragment=1", HTTP_HX_REQUEST="true")
    body = fragment.content.decode()
    assert body.lstrip().startswith('<div id="run-live"')
    assert "<html" not in body


def test_cancel_from_the_run_page_needs_the_permission(client, workflow_harness, expense, users):
    run = Run.objects.get(workflow__name="example-expense-approval")
    client.force_login(users["operator"])
    assert client.post(f"/app/runs/{run.id}/cancel/").status_code == 403
    client.force_login(users["admin"])
    client.post(f"/app/runs/{run.id}/cancel/")
    workflow_harness.run_until_idle()
    assert Run.objects.get(pk=run.pk).status == "cancelled"
    assert Approval.objects.get(pk=expense.pk).status == "cancelled"


def test_the_event_page_lists_the_runs_it_started(client, expense, manager):
    client.force_login(manager)
    event = Event.objects.get(type="example.expense.submitted")
    assert f"/app/events/{event.id}/" in client.get("/app/events/").content.decode()
    page = client.get(f"/app/events/{event.id}/").content.decode()
    assert "example-expense-approval" in page
    assert "erin@example.com" in page


def test_list_pages_page_by_keyset_without_counting(client, workflow_harness, manager):
    for n in range(55):
        workflow_harness.emit("example.nothing", {"n": n})
    client.force_login(manager)
    first = client.get("/app/events/").context["page"]
    assert len(first.items) == 50
    assert first.older
    second = client.get(f"/app/events/?before={first.older}").context["page"]
    assert len(second.items) == 5
    assert second.older is None
    assert not {e.id for e in first.items} & {e.id for e in second.items}


def test_list_pages_use_a_fixed_number_of_queries(
    client, workflow_harness, manager, django_assert_max_num_queries
):
    for n in range(30):
        workflow_harness.emit("example.expense.submitted", {"amount": n, "employee": "e@x.com"})
    client.force_login(manager)
    for path in ["/app/runs/", "/app/approvals/", "/app/events/", "/app/"]:
        with django_assert_max_num_queries(12):
            assert client.get(path).status_code == 200


def test_a_new_installation_has_an_operators_group_for_the_ui(client, django_user_model):
    from django.contrib.auth.models import Group

    operators = Group.objects.get(name="operators")
    assert set(operators.permissions.values_list("codename", flat=True)) == {
        "view_run",
        "change_run",
        "view_event",
    }
    olga = django_user_model.objects.create_user("olga", password="pw")
    olga.groups.add(operators)
    client.force_login(olga)
    assert client.get("/app/").status_code == 200
    assert client.get("/app/runs/").status_code == 200
    assert client.get("/app/events/").status_code == 200


def test_earlier_attempts_list_only_the_attempts_before_the_last(client, workflow_harness, manager):
    client.force_login(manager)
    refused = workflow_harness.start("test-non-retryable")
    retried = workflow_harness.start("test-retry")
    workflow_harness.run_until_idle()
    once = client.get(f"/app/runs/{refused.id}/").content.decode()
    assert "Earlier attempts" not in once  # one attempt: its error is the step's error
    thrice = client.get(f"/app/runs/{retried.id}/").content.decode()
    assert "Earlier attempts (2)" in thrice
    assert ">#1<" in thrice
    assert ">#2<" in thrice
    assert ">#3<" not in thrice


def test_the_run_page_says_what_started_a_run_without_an_event_or_a_user(client, manager):
    from io import StringIO

    from django.core.management import call_command

    from automation.engine.runs import run_start

    client.force_login(manager)
    call_command("run_workflow", "test-noop", "--no-follow", stdout=StringIO())
    from_cli = Run.objects.get(workflow__name="test-noop")
    from_code = run_start(workflow="test-noop")
    started_by = re.compile(r"<dt>Started by</dt><dd>([^<]*)</dd>")
    cli_page = client.get(f"/app/runs/{from_cli.id}/").content.decode()
    assert started_by.search(cli_page).group(1) == "Command line (run_workflow)"
    code_page = client.get(f"/app/runs/{from_code.id}/").content.decode()
    assert started_by.search(code_page).group(1) == "Application code"


def test_the_run_page_says_what_a_run_waits_for_once(client, workflow_harness, manager):
    Group.objects.create(name="sm-approvers")
    client.force_login(manager)
    run = workflow_harness.start("sm-approval", {"key": "k1"})
    page = client.get(f"/app/runs/{run.id}/").content.decode()
    assert "Waiting in &#x27;ok&#x27; for an approval" in page
    assert "Waiting for waiting" not in page
