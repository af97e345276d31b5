"""Approval rules: quorum, four-eyes, escalation, and the audit trail of every change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

from approvals.models import Approval
from approvals.services import AlreadyDecided, approval_decide
from automation.engine.errors import WorkflowError

pytestmark = pytest.mark.django_db


@pytest.fixture
def managers(django_user_model):
    group = Group.objects.create(name="managers")
    people = [django_user_model.objects.create_user(name) for name in ("ann", "bob", "cid")]
    for person in people:
        person.groups.add(group)
    return people


def test_quorum_needs_that_many_approvals_and_one_vote_each(workflow_harness, managers):
    ann, bob, _ = managers
    run = workflow_harness.start("test-quorum")
    workflow_harness.decide(run, "ok", "approve", user=ann, comment="fine by me")
    assert workflow_harness.refresh(run).status == "waiting"  # one of two
    approval = Approval.objects.get(run=run)
    with pytest.raises(AlreadyDecided, match="voted on this approval already"):
        approval_decide(approval=approval, user=ann, decision="approve")

    workflow_harness.decide(run, "ok", "approve", user=bob)
    outcome = workflow_harness.result(run)
    assert outcome["approved"] is True
    assert [(v["user"], v["decision"]) for v in outcome["votes"]] == [
        ("ann", "approve"),
        ("bob", "approve"),
    ]


def test_one_rejection_rejects_a_quorum_approval(workflow_harness, managers):
    ann, bob, _ = managers
    run = workflow_harness.start("test-quorum")
    workflow_harness.decide(run, "ok", "approve", user=ann)
    workflow_harness.decide(run, "ok", "reject", user=bob, comment="too expensive")
    outcome = workflow_harness.result(run)
    assert (outcome["approved"], outcome["decided_by"], outcome["comment"]) == (
        False,
        "bob",
        "too expensive",
    )


def test_four_eyes_keeps_the_requester_from_deciding(workflow_harness, managers):
    ann, bob, _ = managers
    run = workflow_harness.start("test-four-eyes", started_by=ann)
    approval = Approval.objects.get(run=run)
    with pytest.raises(PermissionDenied, match="four-eyes"):
        approval_decide(approval=approval, user=ann, decision="approve")
    workflow_harness.decide(run, "ok", "approve", user=bob)
    assert workflow_harness.result(run)["decided_by"] == "bob"


def test_timeout_escalates_to_another_group_with_a_new_due_time(
    workflow_harness, managers, django_user_model, clock
):
    director = django_user_model.objects.create_user("dora")
    director.groups.add(Group.objects.create(name="directors"))
    run = workflow_harness.start("test-escalate")
    workflow_harness.advance_time(timedelta(hours=1, seconds=1))
    approval = Approval.objects.get(run=run)
    assert approval.escalated
    assert approval.assignees == ["group:directors"]
    assert workflow_harness.refresh(run).status == "waiting"
    with pytest.raises(PermissionDenied):  # the managers' turn is over
        approval_decide(approval=approval, user=managers[0], decision="approve")
    workflow_harness.decide(run, "ok", "approve", user=director)
    assert workflow_harness.result(run)["decided_by"] == "dora"


def test_an_unanswered_escalation_rejects_in_the_end(workflow_harness, managers, django_user_model):
    Group.objects.create(name="directors")
    run = workflow_harness.start("test-escalate")
    workflow_harness.run_until_idle()
    outcome = workflow_harness.result(run)
    assert (outcome["approved"], outcome["decision"]) == (False, "expired")


@pytest.mark.parametrize(
    ("on_timeout", "approved", "decision"),
    [("approve", True, "approved"), ("reject", False, "expired")],
)
def test_a_timed_out_approval_says_what_it_decided_and_that_it_timed_out(
    workflow_harness, managers, on_timeout, approved, decision
):
    run = workflow_harness.start(
        "test-approval-options", {"options": {"timeout": "1h", "on_timeout": on_timeout}}
    )
    workflow_harness.run_until_idle()
    outcome = workflow_harness.result(run)
    assert (outcome["approved"], outcome["decision"], outcome["timed_out"]) == (
        approved,
        decision,
        True,
    )
    assert outcome["decision"] == Approval.objects.get(run=run).status


def test_a_decision_by_a_person_did_not_time_out(workflow_harness, managers):
    run = workflow_harness.start("test-quorum")
    for person in managers[:2]:
        workflow_harness.decide(run, "ok", "approve", user=person)
    outcome = workflow_harness.result(run)
    assert (outcome["decision"], outcome["timed_out"]) == ("approved", False)


def test_the_audit_trail_records_every_change(workflow_harness, managers, django_user_model):
    director = django_user_model.objects.create_user("dora")
    director.groups.add(Group.objects.create(name="directors"))
    run = workflow_harness.start("test-escalate")
    workflow_harness.advance_time(timedelta(hours=2))
    workflow_harness.decide(run, "ok", "reject", user=director, comment="no")
    history = Approval.objects.get(run=run).history.all()
    assert [(e.action, e.actor and e.actor.username) for e in history] == [
        ("created", None),
        ("reminded", None),  # before the first due time (remind_before="auto")
        ("escalated", None),
        ("voted", "dora"),
        ("rejected", "dora"),
    ]


def test_unknown_assignees_and_bad_options_fail_the_step_clearly(workflow_harness, managers):
    from automation import workflow

    @workflow("test-bad-approval")
    def bad(ctx, event):
        ctx.approval("ok", title="x", assignees=["group:nobody"])

    run = workflow_harness.refresh(workflow_harness.start("test-bad-approval"))
    assert run.status == "failed"
    assert "unknown assignee(s): group:nobody" in run.error["message"]
    from approvals.services import _check_options

    with pytest.raises(WorkflowError, match="needs escalate_to"):
        _check_options("ok", "escalate", 1, [])
    with pytest.raises(WorkflowError, match="quorum"):
        _check_options("ok", "reject", 0, [])
