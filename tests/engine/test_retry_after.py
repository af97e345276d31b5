"""A step that asks to be retried later (RetryAfter) cannot break the scheduler: whatever
seconds any action (a custom one included) gives, the retry is scheduled within a day."""

from __future__ import annotations

from datetime import timedelta

import pytest

from automation import RetryAfter, workflow
from automation.engine import registry
from automation.models import StepRecord

pytestmark = pytest.mark.django_db

ASKED: dict[str, object] = {"seconds": 0.0}


def asks_for_a_retry() -> None:
    error = RetryAfter(1, "come back later")
    error.seconds = ASKED["seconds"]  # as a custom action might set it
    raise error


@workflow("retry-after-guard", retry={"max_attempts": 2})
def retry_after_guard(ctx, event):
    return ctx.step("call", asks_for_a_retry)


@pytest.fixture(autouse=True)
def _registered():
    registry.sync_code_workflows(force=True)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (float("nan"), timedelta(0)),
        (float("-inf"), timedelta(0)),
        (-30.0, timedelta(0)),
        ("soon", timedelta(0)),
        (None, timedelta(0)),
        (90.0, timedelta(seconds=90)),
        (float("inf"), timedelta(days=1)),
        (1e300, timedelta(days=1)),
        (10**400, timedelta(days=1)),  # an int too large for a float
    ],
    ids=["nan", "-inf", "negative", "text", "none", "90s", "inf", "1e300", "10**400"],
)
def test_retry_after_seconds_are_bounded_to_a_day(workflow_harness, seconds, expected):
    ASKED["seconds"] = seconds
    run = workflow_harness.start("retry-after-guard", {})
    record = StepRecord.objects.get(run=run, step_id="call")
    assert record.status == "waiting"
    assert record.next_attempt_at - record.finished_at == expected
