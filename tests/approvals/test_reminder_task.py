"""Reminders run from approvals' own periodic task, not from the engine's sweep."""

from __future__ import annotations

import pytest

from approvals import tasks
from approvals.models import Approval
from automation.engine import clock, sweeps

pytestmark = pytest.mark.django_db


def test_beat_schedules_the_reminders_as_often_as_the_sweep(settings):
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["approvals.remind"]["task"] == tasks.remind.name == "approvals.remind"
    assert schedule["approvals.remind"]["schedule"] == schedule["automation.sweep"]["schedule"]


def test_the_task_sends_a_due_reminder_that_the_engine_sweep_leaves_alone(workflow_harness, team):
    run = workflow_harness.start("test-approval-options", {"options": {"timeout": "2d"}})
    approval = Approval.objects.get(run=run)
    clock.advance(approval.remind_at - clock.now())

    workflow_harness._committed(sweeps.sweep)
    assert Approval.objects.get(pk=approval.pk).reminded_at is None

    assert workflow_harness._committed(tasks.remind) == 1
    assert Approval.objects.get(pk=approval.pk).reminded_at is not None
