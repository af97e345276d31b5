"""Reminders before the due time: when they are due, sent once whatever the number of sweeps,
only to the assignees who have not decided, and never after the decision."""

from __future__ import annotations

from datetime import timedelta

import pytest

from approvals.models import Approval
from approvals.services import _remind, approvals_remind_due
from automation.engine import clock

pytestmark = pytest.mark.django_db


def start(harness, **options):
    run = harness.start("test-approval-options", {"options": options})
    return run, Approval.objects.get(run=run)


def remind_offset(approval):
    """How long after creation the reminder is due."""
    return approval.remind_at - approval.created_at


@pytest.mark.parametrize(
    ("timeout", "after"),
    [
        ("2d", timedelta(hours=38.4)),  # 80% of the way (earlier than 1h before)
        ("3h", timedelta(hours=2)),  # one hour before (earlier than 80%)
        ("30m", timedelta(minutes=15)),  # never in the first half
    ],
)
def test_by_default_the_reminder_is_due_well_before_the_timeout(
    workflow_harness, team, timeout, after
):
    _, approval = start(workflow_harness, timeout=timeout)
    assert abs(remind_offset(approval) - after) < timedelta(seconds=1)


def test_remind_before_sets_it_and_none_or_zero_turn_it_off(workflow_harness, team):
    _, approval = start(workflow_harness, timeout="2d", remind_before="4h")
    assert abs(approval.due_at - approval.remind_at - timedelta(hours=4)) < timedelta(seconds=1)
    for off in (None, 0, "0s"):
        Approval.objects.all().delete()
        _, approval = start(workflow_harness, timeout="2d", remind_before=off)
        assert approval.remind_at is None
    Approval.objects.all().delete()
    _, approval = start(workflow_harness)  # no timeout, nothing to remind of
    assert approval.remind_at is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"timeout": "1h", "remind_before": "2h"},
            "remind_before must be shorter than the timeout",
        ),
        ({"remind_before": "2h"}, "remind_before needs a timeout"),
    ],
)
def test_an_impossible_reminder_fails_the_step_clearly(workflow_harness, team, options, message):
    run = workflow_harness.start("test-approval-options", {"options": options})
    run = workflow_harness.refresh(run)
    assert run.status == "failed"
    assert message in run.error["message"]


def test_the_reminder_goes_out_once_to_those_who_have_not_voted(workflow_harness, team, mailoutbox):
    run, approval = start(workflow_harness, timeout="2d", quorum=2)
    workflow_harness.decide(run, "ok", "approve", user=team["ann"])
    mailoutbox.clear()

    workflow_harness.advance_time("39h")
    workflow_harness.tick()  # a second sweep finds nothing to do
    assert [m.to for m in mailoutbox] == [["bob@example.com"]]
    assert mailoutbox[0].subject == "Reminder: Pay the invoice? is waiting for your decision"
    history = [e.action for e in approval.history.all()]
    assert history.count("reminded") == 1
    approval.refresh_from_db()
    assert approval.reminded_at is not None


def test_two_sweeps_that_both_saw_the_reminder_due_send_it_once(workflow_harness, team):
    _, approval = start(workflow_harness, timeout="2d")
    clock.advance(timedelta(hours=39))
    seen_by_both = Approval.objects.get(pk=approval.pk)
    assert workflow_harness._committed(_remind, seen_by_both) is True
    assert workflow_harness._committed(_remind, Approval.objects.get(pk=approval.pk)) is False
    assert approvals_remind_due() == 0
    assert [e.action for e in approval.history.all()].count("reminded") == 1


def test_no_reminder_before_it_is_due_nor_after_the_decision(workflow_harness, team, mailoutbox):
    run, approval = start(workflow_harness, timeout="2d")
    workflow_harness.advance_time("30h")
    assert Approval.objects.get(pk=approval.pk).reminded_at is None
    workflow_harness.decide(run, "ok", "approve", user=team["bob"])
    mailoutbox.clear()
    workflow_harness.advance_time("10h")
    assert mailoutbox == []
    assert "reminded" not in [e.action for e in approval.history.all()]
