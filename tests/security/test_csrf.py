"""CSRF: a browser session's state-changing POSTs need the CSRF token, wherever they go: the
operator UI, the API under session authentication, the admin and the sign-in form. Without it
they are refused with 403 and nothing changes. (Webhooks and token-authenticated API calls
carry no cookies, so they need none: see tests/events.)"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from approvals.models import Approval
from events.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(django_user_model):
    user = django_user_model.objects.create_user("maria", password="pw")
    user.groups.add(Group.objects.get_or_create(name="managers")[0])
    return user


@pytest.fixture
def expense(workflow_harness, manager):
    workflow_harness.emit("example.expense.submitted", {"amount": 90, "employee": "e@x.com"})
    return Approval.objects.get(run__workflow__name="example-expense-approval")


def browser(user=None) -> Client:
    """A client that checks CSRF tokens as a real browser request is checked."""
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    return client


def csrf_token(client: Client, page: str) -> str:
    client.get(page)  # any page sets the CSRF cookie
    return client.cookies["csrftoken"].value


def test_deciding_in_the_app_without_a_token_is_403(expense, manager):
    client = browser(manager)
    url = f"/app/approvals/{expense.pk}/decide/"
    assert client.post(url, {"decision": "approve"}).status_code == 403
    assert Approval.objects.get(pk=expense.pk).status == "pending"
    token = csrf_token(client, f"/app/approvals/{expense.pk}/")
    response = client.post(url, {"decision": "approve", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Approval.objects.get(pk=expense.pk).status == "approved"


def test_deciding_through_the_api_with_a_session_and_no_token_is_403(expense, manager):
    client = browser(manager)
    url = f"/api/approvals/{expense.pk}/decide/"
    body = {"decision": "approve"}
    assert client.post(url, body, content_type="application/json").status_code == 403
    assert Approval.objects.get(pk=expense.pk).status == "pending"
    token = csrf_token(client, "/app/approvals/")
    ok = client.post(url, body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert ok.status_code == 200


def test_a_token_from_another_session_is_refused(expense, manager, users):
    stranger = browser(users["outsider"])
    foreign = csrf_token(stranger, "/app/approvals/")
    client = browser(manager)
    response = client.post(
        f"/app/approvals/{expense.pk}/decide/",
        {"decision": "approve", "csrfmiddlewaretoken": foreign},
    )
    assert response.status_code == 403
    assert Approval.objects.get(pk=expense.pk).status == "pending"


def test_posting_events_with_a_session_and_no_token_is_403(users):
    client = browser(users["admin"])
    body = {"type": "order.created", "data": {}}
    assert client.post("/api/events/", body, content_type="application/json").status_code == 403
    assert not Event.objects.exists()


def test_admin_changes_without_a_token_are_403(users, django_user_model):
    client = browser(users["admin"])
    outsider = users["outsider"]
    response = client.post(
        f"/admin/auth/user/{outsider.pk}/change/",
        {"username": "oscar", "is_superuser": "on", "is_staff": "on", "is_active": "on"},
    )
    assert response.status_code == 403
    outsider.refresh_from_db()
    assert not outsider.is_superuser
    assert client.post("/admin/auth/group/add/", {"name": "intruders"}).status_code == 403
    assert not Group.objects.filter(name="intruders").exists()


@pytest.mark.parametrize("path", ["/app/login/", "/admin/login/"])
def test_signing_in_without_a_token_is_403(users, path):
    """Login CSRF: a page elsewhere must not sign a victim into an attacker's account."""
    client = browser()
    response = client.post(path, {"username": "oscar", "password": "oscar-pass"})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_signing_out_is_a_post_with_a_token(manager):
    client = browser(manager)
    assert client.post("/app/logout/").status_code == 403
    assert client.get("/app/approvals/").status_code == 200  # still signed in
