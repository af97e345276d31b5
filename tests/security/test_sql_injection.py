"""SQL injection through list filters, search, cursors and ordering: every parameter reaches
the database as a bound value or is refused with a 400 naming it. A payload never widens a
list (the outsider still sees nothing of others') and never changes the database."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.contrib.auth.models import Group, Permission

from approvals.models import Approval
from automation.models import Run
from events.models import Event

pytestmark = pytest.mark.django_db

PAYLOADS = [
    "' OR 1=1--",
    "' OR '1'='1",
    "1; DROP TABLE automation_run;--",
    "x' UNION SELECT id, title FROM approvals_approval--",
    "%' OR 1=1 OR type LIKE '%",
    "\\'; SELECT pg_sleep(5);--",
]


@pytest.fixture
def manager(django_user_model):
    user = django_user_model.objects.create_user("maria", password="pw")
    user.groups.add(Group.objects.get_or_create(name="managers")[0])
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_run", "view_event"]))
    return user


@pytest.fixture
def expense(workflow_harness, manager):
    workflow_harness.emit("example.expense.submitted", {"amount": 90, "employee": "e@x.com"})
    return Approval.objects.get(run__workflow__name="example-expense-approval")


def counts() -> tuple[int, int, int]:
    return Run.objects.count(), Event.objects.count(), Approval.objects.count()


def get(client, url: str):
    response = client.get(url)
    assert response.status_code in (200, 400), (url, response.status_code)
    if response.status_code == 400 and url.startswith("/api/"):
        assert response.json()["error"]["code"]  # a JSON error a person can act on
    return response


API_FILTERS = [
    "/api/runs/?status={p}",
    "/api/runs/?workflow={p}",
    "/api/runs/?correlation_id={p}",
    "/api/runs/?created_after={p}",
    "/api/runs/?ordering={p}",
    "/api/runs/?cursor={p}",
    "/api/events/?type={p}",
    "/api/events/?source={p}",
    "/api/events/?subject={p}",
    "/api/events/?ordering={p}",
    "/api/events/?cursor={p}",
    "/api/approvals/?status={p}",
    "/api/approvals/?scope={p}",
    "/api/approvals/?ordering={p}",
    "/api/approvals/?cursor={p}",
]


@pytest.mark.parametrize("url", API_FILTERS)
def test_api_filters_take_payloads_as_plain_values(client, expense, manager, url):
    """A filter matches nothing; an ordering or cursor it cannot read is refused or ignored
    (the same rows the user sees without it)."""
    before = counts()
    client.force_login(manager)
    visible = {row["id"] for row in client.get(url.split("?")[0]).json()["results"]}
    for payload in PAYLOADS:
        response = get(client, url.format(p=quote(payload)))
        if response.status_code == 200:
            ids = {row["id"] for row in response.json()["results"]}
            unread = "ordering=" in url or "cursor=" in url
            assert ids <= visible if unread else ids == set(), (url, payload)
    assert counts() == before


PAGE_FILTERS = [
    "/app/runs/?status={p}",
    "/app/runs/?workflow={p}",
    "/app/runs/?q={p}",
    "/app/events/?type={p}",
    "/app/events/?source={p}",
    "/app/events/?correlation_id={p}",
    "/app/approvals/?status={p}",
    "/app/approvals/?scope={p}",
]


@pytest.mark.parametrize("url", PAGE_FILTERS)
def test_page_filters_and_search_take_payloads_as_plain_values(client, expense, manager, url):
    before = counts()
    client.force_login(manager)
    for payload in PAYLOADS:
        get(client, url.format(p=quote(payload)))
    assert counts() == before


def test_a_payload_does_not_widen_a_strangers_inbox(client, expense, users):
    client.force_login(users["outsider"])
    for payload in PAYLOADS:
        for url in ["/api/approvals/?status={p}", "/api/approvals/?scope=all&status={p}"]:
            response = get(client, url.format(p=quote(payload)))
            assert str(expense.pk) not in response.content.decode()
        page = get(client, f"/app/approvals/?status={quote(payload)}").content.decode()
        assert expense.title not in page
