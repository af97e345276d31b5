"""IDOR: knowing an object's id gives no access to it. An approval is decided only by its
assignees (or people allowed to decide any); runs and events are read only with their view
permission and operated only with the change permission; a 403 changes nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from approvals.models import Approval
from automation.models import Run
from events.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def managers():
    return Group.objects.get_or_create(name="managers")[0]


@pytest.fixture
def manager(django_user_model, managers):
    user = django_user_model.objects.create_user("maria", password="pw")
    user.groups.add(managers)
    return user


@pytest.fixture
def director(django_user_model):
    """Assigned to other approvals (another group), and allowed to follow runs and events."""
    user = django_user_model.objects.create_user("dora", password="pw")
    user.groups.add(Group.objects.get_or_create(name="directors")[0])
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_run", "view_event"]))
    return user


@pytest.fixture
def expense(workflow_harness, manager):
    workflow_harness.emit("example.expense.submitted", {"amount": 90, "employee": "e@x.com"})
    return Approval.objects.get(run__workflow__name="example-expense-approval")


def assert_undecided(approval: Approval) -> None:
    approval.refresh_from_db()
    assert approval.status == "pending"
    assert approval.decided_by is None


@pytest.mark.parametrize("who", ["outsider", "operator", "director"])
def test_someone_not_assigned_cannot_read_or_decide_an_approval(
    client, expense, users, director, who
):
    client.force_login(director if who == "director" else users[who])
    assert client.get(f"/api/approvals/{expense.pk}/").status_code == 403
    assert client.get(f"/app/approvals/{expense.pk}/").status_code == 403
    api = client.post(
        f"/api/approvals/{expense.pk}/decide/", {"decision": "approve"}, "application/json"
    )
    assert api.status_code == 403
    page = client.post(f"/app/approvals/{expense.pk}/decide/", {"decision": "approve"})
    assert page.status_code == 403
    assert_undecided(expense)
    assert str(expense.pk) not in client.get("/api/approvals/?scope=all").content.decode()


def test_an_approvals_title_is_not_in_a_strangers_inbox(client, expense, users):
    client.force_login(users["outsider"])
    for page in ["/app/approvals/", "/app/approvals/?scope=all", "/app/approvals/?status="]:
        assert expense.title not in client.get(page).content.decode()


def test_runs_need_view_run_to_be_read(client, expense, users):
    run = Run.objects.get()
    client.force_login(users["outsider"])
    for url in ["/api/runs/", f"/api/runs/{run.pk}/", "/app/runs/", f"/app/runs/{run.pk}/"]:
        assert client.get(url).status_code == 403, url


def test_runs_need_change_run_to_be_cancelled_or_retried(client, expense, director):
    run = Run.objects.get()
    client.force_login(director)  # may read runs, not operate them
    assert client.get(f"/api/runs/{run.pk}/").status_code == 200
    for action in ["cancel", "retry"]:
        response = client.post(f"/api/runs/{run.pk}/{action}/", {}, "application/json")
        assert response.status_code == 403, action
    assert Run.objects.get().status == run.status


def test_event_pages_need_view_event(client, expense, users):
    """The events API's read access is pinned by tests/security/test_authorization_matrix.py."""
    event = Event.objects.get()
    client.force_login(users["outsider"])
    assert client.get("/app/events/").status_code == 403
    assert client.get(f"/app/events/{event.pk}/").status_code == 403
    replay = client.post(f"/api/events/{event.pk}/replay/", {}, "application/json")
    assert replay.status_code == 403
    assert Event.objects.count() == 1
