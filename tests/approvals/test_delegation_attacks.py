"""Attempts to decide more than a delegation gives: the requester named as a delegate under
four-eyes, a delegate's own delegate, two people naming each other, and one delegate standing
in for two assignees under a quorum. Each ends in a refusal and the approval still pending."""

from __future__ import annotations

import pytest

from approvals.models import Approval, Delegation
from tests.approvals.test_delegation import ask, away

pytestmark = pytest.mark.django_db


def decide(client, user, approval, decision="approve"):
    client.force_login(user)
    return client.post(
        f"/api/approvals/{approval.pk}/decide/", {"decision": decision}, "application/json"
    )


def pending(approval) -> bool:
    return Approval.objects.get(pk=approval.pk).status == "pending"


def test_the_requester_named_as_delegate_cannot_decide_their_own_four_eyes_request(
    client, workflow_harness, team
):
    away(team["ann"], team["oscar"])
    _, approval = ask(workflow_harness, options={"four_eyes": True})
    Approval.objects.filter(pk=approval.pk).update(requested_by=team["oscar"])
    assert decide(client, team["oscar"], approval).status_code == 403
    assert pending(approval)


def test_a_delegates_own_delegate_decides_nothing(client, workflow_harness, team):
    away(team["ann"], team["dora"])
    away(team["dora"], team["oscar"])  # dora is away too: not for ann's approvals
    _, approval = ask(workflow_harness)
    assert decide(client, team["oscar"], approval).status_code == 403
    assert pending(approval)


def test_two_assignees_naming_each_other_still_vote_once_each(client, workflow_harness, team):
    away(team["ann"], team["bob"])
    away(team["bob"], team["ann"])
    _, approval = ask(workflow_harness, assignees=["user:ann", "user:bob"], options={"quorum": 2})
    assert decide(client, team["ann"], approval).status_code == 200
    assert decide(client, team["ann"], approval).status_code == 409  # not again as bob
    assert pending(approval)


def test_one_delegate_for_two_assignees_casts_one_vote_under_a_quorum(
    client, workflow_harness, team
):
    away(team["ann"], team["oscar"])
    away(team["bob"], team["oscar"])
    _, approval = ask(workflow_harness, assignees=["user:ann", "user:bob"], options={"quorum": 2})
    assert decide(client, team["oscar"], approval).status_code == 200
    assert decide(client, team["oscar"], approval).status_code == 409
    assert pending(approval)


def test_nobody_names_a_delegate_for_someone_else_through_the_api(client, team):
    client.force_login(team["oscar"])
    body = {
        "user": "ann",
        "delegate": "oscar",
        "starts_at": "2099-01-01T00:00Z",
        "ends_at": "2099-01-02T00:00Z",
    }
    response = client.post("/api/approvals/delegations/", body, "application/json")
    assert response.status_code == 400  # oscar cannot name himself; "user" is not his to set
    assert not Delegation.objects.exists()
