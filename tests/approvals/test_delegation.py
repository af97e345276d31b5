"""Out of office: a person names a delegate for a period; the approvals they may decide reach
the delegate (inbox, email, live notice, the right to decide), who decides on their behalf,
and the audit trail says so."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission

from approvals.delegations import delegation_create
from approvals.live import inbox_groups
from approvals.models import Approval, ApprovalEvent, Delegation
from automation.engine import clock

pytestmark = pytest.mark.django_db


def away(person, delegate, *, hours=24, starts_in=-1):
    now = clock.now()
    return delegation_create(
        user=person,
        delegate=delegate,
        starts_at=now + timedelta(hours=starts_in),
        ends_at=now + timedelta(hours=hours),
        reason="holiday",
    )


def ask(harness, **data):
    run = harness.start("test-approval-options", {"assignees": ["user:ann"], **data})
    return run, Approval.objects.get(run=run)


def inbox_ids(client):
    response = client.get("/api/approvals/")
    assert response.status_code == 200
    return {a["id"] for a in response.json()["results"]}


def test_the_delegate_gets_the_approval_and_decides_on_behalf_of_the_assignee(
    client, workflow_harness, team, mailoutbox, django_capture_on_commit_callbacks
):
    oscar = team["oscar"]
    away(team["ann"], oscar)
    run, approval = ask(workflow_harness)

    [to_oscar] = [m for m in mailoutbox if m.to == ["oscar@example.com"]]  # emailed as ann is
    assert "as the delegate of ann (out of office)" in to_oscar.body
    assert "as the delegate of ann" in to_oscar.alternatives[0].content
    [to_ann] = [m for m in mailoutbox if m.to == ["ann@example.com"]]
    assert "because you are an assignee" in to_ann.body
    assert f"approvals.user.{oscar.pk}" in inbox_groups(approval)  # and told live
    client.force_login(oscar)
    assert inbox_ids(client) == {str(approval.pk)}
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            f"/api/approvals/{approval.pk}/decide/",
            {"decision": "approve", "comment": "for Ann"},
            content_type="application/json",
        )
    assert answer.status_code == 200, answer.content
    assert answer.json()["decided_by"] == "oscar"
    assert answer.json()["decided_on_behalf_of"] == "ann"

    decided = ApprovalEvent.objects.get(approval=approval, action="approved")
    assert (decided.actor, decided.detail["on_behalf_of"]) == (oscar, "ann")
    workflow_harness.drain()
    output = workflow_harness.result(run)
    assert (output["decided_by"], output["on_behalf_of"]) == ("oscar", "ann")
    assert output["votes"][0]["on_behalf_of"] == "ann"
    page = client.get(f"/app/approvals/{approval.pk}/").content.decode()
    assert "on behalf of ann" in page


def test_a_person_in_their_own_name_decides_for_nobody(client, workflow_harness, team):
    away(team["ann"], team["bob"])
    _, approval = ask(workflow_harness, assignees=["user:ann", "user:bob"])
    client.force_login(team["bob"])
    body = client.post(
        f"/api/approvals/{approval.pk}/decide/", {"decision": "reject"}, "application/json"
    ).json()
    assert (body["decided_by"], body["decided_on_behalf_of"]) == ("bob", None)


def test_one_persons_say_counts_once_in_person_or_through_a_delegate(
    client, workflow_harness, team
):
    oscar = team["oscar"]
    away(team["ann"], oscar)
    _, approval = ask(workflow_harness, assignees=["user:ann", "user:bob"], options={"quorum": 2})
    client.force_login(team["ann"])
    first = client.post(
        f"/api/approvals/{approval.pk}/decide/", {"decision": "approve"}, "application/json"
    )
    assert first.status_code == 200
    client.force_login(oscar)
    second = client.post(
        f"/api/approvals/{approval.pk}/decide/", {"decision": "approve"}, "application/json"
    )
    assert second.status_code == 409
    assert "ann has voted on this approval already (in person)" in second.content.decode()
    approval.refresh_from_db()
    assert (approval.status, approval.votes.count()) == ("pending", 1)


def test_a_delegation_gives_nothing_before_it_starts_or_after_it_ends(
    client, workflow_harness, team
):
    oscar = team["oscar"]
    away(team["ann"], oscar, starts_in=2, hours=4)
    _, approval = ask(workflow_harness)
    client.force_login(oscar)
    decide = f"/api/approvals/{approval.pk}/decide/"

    assert inbox_ids(client) == set()
    assert client.post(decide, {"decision": "approve"}, "application/json").status_code == 403
    clock.advance(timedelta(hours=3))
    assert inbox_ids(client) == {str(approval.pk)}
    clock.advance(timedelta(hours=2))
    assert inbox_ids(client) == set()
    assert client.post(decide, {"decision": "approve"}, "application/json").status_code == 403
    assert client.get(f"/app/approvals/{approval.pk}/").status_code == 403


def test_nobody_decides_a_four_eyes_approval_in_the_requesters_name(client, workflow_harness, team):
    oscar = team["oscar"]
    away(team["ann"], oscar)
    _, approval = ask(
        workflow_harness,
        assignees=["user:ann", "user:bob"],
        options={"four_eyes": True},
    )
    Approval.objects.filter(pk=approval.pk).update(requested_by=team["ann"])
    client.force_login(oscar)
    answer = client.post(
        f"/api/approvals/{approval.pk}/decide/", {"decision": "approve"}, "application/json"
    )
    assert answer.status_code == 403


def test_a_group_assignment_reaches_the_delegate_of_a_member_away(client, workflow_harness, team):
    away(team["bob"], team["dora"])
    _, approval = ask(workflow_harness, assignees=["group:managers"])
    client.force_login(team["dora"])
    assert inbox_ids(client) == {str(approval.pk)}
    body = client.post(
        f"/api/approvals/{approval.pk}/decide/", {"decision": "approve"}, "application/json"
    ).json()
    assert body["decided_on_behalf_of"] in {"ann", "bob", "quiet"}


# --- managing one's delegations ----------------------------------------------------------


def window(**shift):
    now = clock.now()
    return {
        "delegate": "bob",
        "starts_at": (now + timedelta(hours=shift.get("start", 0))).isoformat(),
        "ends_at": (now + timedelta(hours=shift.get("end", 48))).isoformat(),
        "reason": "conference",
    }


def test_a_user_names_lists_and_ends_their_delegations_through_the_api(client, team):
    client.force_login(team["ann"])
    made = client.post("/api/approvals/delegations/", window(), "application/json")
    assert made.status_code == 201, made.content
    assert made.json()["delegate"] == "bob"
    assert made.json()["active"] is True
    listed = client.get("/api/approvals/delegations/").json()["results"]
    assert [d["id"] for d in listed] == [made.json()["id"]]

    ended = client.delete(f"/api/approvals/delegations/{made.json()['id']}/")
    assert ended.status_code == 200
    assert ended.json()["active"] is False
    planned = client.post(
        "/api/approvals/delegations/", window(start=24, end=30), "application/json"
    )
    assert client.delete(f"/api/approvals/delegations/{planned.json()['id']}/").status_code == 204
    assert Delegation.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"delegate": "ann"}, "yourself"),
        ({"delegate": "nobody-here"}, "delegate"),
        ({"delegate": "gone"}, "delegate"),
        (window(start=5, end=2), "after starts_at"),
        (window(start=-10, end=-2), "in the past"),
        (window(end=24 * 400), "at most 366 days"),
        ({"reason": "x" * 201}, "reason"),
    ],
)
def test_a_bad_delegation_is_a_400_naming_the_problem(client, team, change, problem):
    client.force_login(team["ann"])
    answer = client.post("/api/approvals/delegations/", {**window(), **change}, "application/json")
    assert answer.status_code == 400
    assert problem in answer.content.decode()
    assert not Delegation.objects.exists()


def test_an_overlapping_period_is_refused_naming_the_other_delegation(client, team):
    client.force_login(team["ann"])
    client.post("/api/approvals/delegations/", window(), "application/json")
    answer = client.post(
        "/api/approvals/delegations/",
        {**window(start=24, end=72), "delegate": "dora"},
        "application/json",
    )
    assert answer.status_code == 400
    assert "overlaps your delegation to bob" in answer.content.decode()
    assert Delegation.objects.count() == 1


def test_nobody_sees_or_ends_another_persons_delegation(client, team):
    mine = away(team["ann"], team["bob"])
    client.force_login(team["oscar"])
    assert client.get("/api/approvals/delegations/").json()["results"] == []
    assert client.delete(f"/api/approvals/delegations/{mine.pk}/").status_code == 404
    assert client.post(f"/app/approvals/delegation/{mine.pk}/end/").status_code == 404
    mine.refresh_from_db()
    assert mine.ends_at > clock.now()
    client.logout()
    assert client.get("/api/approvals/delegations/").status_code in (401, 403)
    assert client.get("/app/approvals/delegation/").status_code == 302


def test_the_out_of_office_page_names_a_delegate_and_refuses_a_bad_period(client, team):
    client.force_login(team["ann"])
    assert "Out of office" in client.get("/app/approvals/").content.decode()
    form = {
        "delegate": "bob",
        "starts_at": (clock.now() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M"),
        "ends_at": (clock.now() + timedelta(days=3)).strftime("%Y-%m-%d %H:%M"),
        "reason": "holiday",
    }
    made = client.post("/app/approvals/delegation/", form, follow=True)
    assert "bob stands in for you then" in made.content.decode()
    delegation = Delegation.objects.get(user=team["ann"])
    assert "Active" in made.content.decode()

    refused = client.post("/app/approvals/delegation/", {**form, "delegate": "dora"})
    assert refused.status_code == 400
    assert "overlaps your delegation to bob" in refused.content.decode()
    unknown = client.post("/app/approvals/delegation/", {**form, "delegate": "zed"})
    assert unknown.status_code == 400
    assert "No active user named" in unknown.content.decode()

    client.post(f"/app/approvals/delegation/{delegation.pk}/end/")
    delegation.refresh_from_db()
    assert delegation.ends_at <= clock.now()


def test_admins_see_and_set_up_delegations(client, team, users):
    away(team["ann"], team["bob"])
    client.force_login(users["admin"])
    listing = client.get("/admin/approvals/delegation/")
    assert listing.status_code == 200
    assert "holiday" in listing.content.decode()
    operator = users["operator"]
    operator.is_staff = True
    operator.save()
    client.force_login(operator)
    assert client.get("/admin/approvals/delegation/").status_code == 403
    operator.user_permissions.add(Permission.objects.get(codename="view_delegation"))
    assert client.get("/admin/approvals/delegation/").status_code == 200


def test_the_delegate_is_told_whom_they_stand_in_for_on_the_inbox_and_the_approval(
    client, workflow_harness, team
):
    away(team["ann"], team["oscar"])
    _, approval = ask(workflow_harness)
    client.force_login(team["oscar"])
    inbox = client.get("/app/approvals/").content.decode()
    assert "You stand in for ann until" in inbox
    page = client.get(f"/app/approvals/{approval.pk}/").content.decode()
    assert 'data-on-behalf-of="ann"' in page
    client.force_login(team["ann"])
    assert "on behalf of" not in client.get(f"/app/approvals/{approval.pk}/").content.decode()
    assert "You stand in for" not in client.get("/app/approvals/").content.decode()


def test_delegations_list_in_the_order_asked_and_ignore_an_unknown_order(client, team):
    client.force_login(team["ann"])
    later = client.post("/api/approvals/delegations/", window(start=48, end=72), "application/json")
    sooner = client.post("/api/approvals/delegations/", window(start=0, end=24), "application/json")
    ids = [later.json()["id"], sooner.json()["id"]]
    listed = client.get("/api/approvals/delegations/").json()["results"]
    assert [d["id"] for d in listed] == ids
    oldest_first = client.get("/api/approvals/delegations/?ordering=starts_at").json()
    assert [d["id"] for d in oldest_first["results"]] == ids[::-1]
    assert client.get("/api/approvals/delegations/?ordering=active").status_code == 200
