"""The transitions table: every status move is declared once, with who may make it, and an
undeclared move changes nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied

from approvals.models import Approval
from approvals.transitions import TRANSITIONS, By, apply, available

pytestmark = pytest.mark.django_db


def test_every_status_is_reached_and_only_pending_ever_moves():
    targets = {t.target for t in TRANSITIONS.values()}
    assert targets == set(Approval.Status.values)
    assert {s for t in TRANSITIONS.values() for s in t.sources} == {"pending"}


def test_people_decide_and_the_system_times_out_reminds_escalates_and_cancels():
    by = {name: t.by for name, t in TRANSITIONS.items()}
    assert {n for n, b in by.items() if b == By.DECIDER} == {"vote", "approve", "reject"}
    assert {n for n, b in by.items() if b == By.SYSTEM} == {
        "remind",
        "escalate",
        "approve_on_timeout",
        "expire",
        "cancel",
    }


@pytest.fixture
def approval(workflow_harness, team):
    run = workflow_harness.start("test-approval-options", started_by=team["ann"])
    return Approval.objects.get(run=run)


def test_a_decided_approval_never_moves_again(workflow_harness, approval, team):
    workflow_harness.decide(approval.run, "ok", "reject", user=team["bob"])
    approval.refresh_from_db()
    for name in ("approve", "cancel", "expire", "escalate", "remind"):
        user = team["bob"] if TRANSITIONS[name].by == By.DECIDER else None
        assert apply(approval, name, user=user) is False
        approval.refresh_from_db()
        assert approval.status == "rejected"


def test_no_user_can_make_a_system_transition(approval, users):
    with pytest.raises(PermissionDenied, match="only the system can expire"):
        apply(approval, "expire", user=users["admin"])
    assert Approval.objects.get(pk=approval.pk).status == "pending"


def test_only_deciders_may_approve(approval, team, users):
    with pytest.raises(PermissionDenied, match="only an assignee"):
        apply(approval, "approve", user=team["oscar"])
    assert apply(approval, "approve", user=users["admin"]) is True  # decide_any_approval


def test_available_lists_the_moves_a_person_may_make_now(approval, team):
    assert [t.name for t in available(approval, team["bob"])] == ["vote", "approve", "reject"]
    assert available(approval, team["oscar"]) == []
    team["oscar"].user_permissions.add(Permission.objects.get(codename="decide_any_approval"))
    oscar = type(team["oscar"]).objects.get(pk=team["oscar"].pk)  # fresh permission cache
    assert [t.name for t in available(approval, oscar)] == ["vote", "approve", "reject"]


def test_four_eyes_leaves_the_requester_no_move(workflow_harness, team):
    run = workflow_harness.start(
        "test-approval-options", {"options": {"four_eyes": True}}, started_by=team["ann"]
    )
    approval = Approval.objects.get(run=run)
    assert available(approval, team["ann"]) == []
    assert [t.name for t in available(approval, team["bob"])] == ["vote", "approve", "reject"]


def test_the_status_only_changes_as_a_transition_target(approval):
    with pytest.raises(ValueError, match="the status is the transition's target"):
        apply(approval, "cancel", status="approved")
