"""The approvals API: the inbox, access rules, one decision, and the run resuming."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from approvals.models import Approval
from automation.models import Run

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


def test_the_inbox_lists_approvals_of_my_groups_only(client, expense, manager, users):
    client.force_login(manager)
    body = client.get("/api/approvals/?status=pending").json()
    assert [a["id"] for a in body["results"]] == [str(expense.id)]
    assert body["results"][0]["workflow"] == "example-expense-approval"
    assert body["results"][0]["can_decide"] is True

    client.force_login(users["outsider"])
    assert client.get("/api/approvals/").json()["results"] == []


def test_scope_all_needs_the_permission_to_decide_any_approval(client, expense, users):
    operator = users["operator"]
    client.force_login(operator)
    assert client.get("/api/approvals/?scope=all").json()["results"] == []
    operator.user_permissions.add(Permission.objects.get(codename="decide_any_approval"))
    client.force_login(operator)
    assert len(client.get("/api/approvals/?scope=all").json()["results"]) == 1


def test_bad_filters_are_refused_with_a_message(client, manager):
    client.force_login(manager)
    response = client.get("/api/approvals/?status=maybe")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert "maybe is not one of the available choices" in error["fields"]["status"][0]
    assert client.get("/api/approvals/?scope=everything").json()["error"]["fields"]["scope"]


def test_a_non_assignee_gets_403_on_detail_and_decide(client, expense, users):
    client.force_login(users["outsider"])
    assert client.get(f"/api/approvals/{expense.id}/").status_code == 403
    response = client.post(
        f"/api/approvals/{expense.id}/decide/",
        {"decision": "approve"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_assigned"
    assert Approval.objects.get(pk=expense.pk).status == "pending"


def test_the_assignee_decides_once_and_the_run_resumes(client, workflow_harness, expense, manager):
    client.force_login(manager)
    url = f"/api/approvals/{expense.id}/decide/"
    response = workflow_harness._committed(
        client.post,
        url,
        {"decision": "reject", "comment": "no receipt"},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert response.json()["decided_by"] == "maria"
    workflow_harness.drain()
    run = Run.objects.get(workflow__name="example-expense-approval")
    assert workflow_harness.result(run) == {"decision": "rejected", "comment": "no receipt"}

    again = client.post(url, {"decision": "approve"}, content_type="application/json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_decided"


@pytest.mark.parametrize(
    "body", [{"decision": "maybe"}, {}, ["approve"], {"decision": "approve", "comment": "x" * 5001}]
)
def test_a_malformed_decision_is_400_and_changes_nothing(client, expense, manager, body):
    client.force_login(manager)
    response = client.post(
        f"/api/approvals/{expense.id}/decide/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert Approval.objects.get(pk=expense.pk).status == "pending"


def test_machines_decide_with_a_token(client, expense, manager):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=manager)
    response = client.post(
        f"/api/approvals/{expense.id}/decide/",
        {"decision": "approve"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token.key}",
    )
    assert response.status_code == 200


def test_anonymous_requests_are_401(client, expense):
    assert client.get("/api/approvals/").status_code == 401
    assert client.post(f"/api/approvals/{expense.id}/decide/", {}).status_code == 401


def test_the_inbox_query_count_does_not_grow_with_its_size(
    client, workflow_harness, manager, django_assert_max_num_queries
):
    for i in range(15):
        workflow_harness.emit("example.expense.submitted", {"amount": i, "employee": "e@x.com"})
    client.force_login(manager)
    with django_assert_max_num_queries(6):
        assert len(client.get("/api/approvals/").json()["results"]) == 15
