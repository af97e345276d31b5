"""How long until (or since) something, as the inbox and run pages say it."""

from datetime import timedelta

from django.utils import timezone

from automation.templatetags.app_ui import due_in


def test_a_three_day_deadline_just_set_is_not_shown_as_two_days() -> None:
    # An approval with `timeout: 3d`, a minute after it was requested.
    assert due_in(timezone.now() + timedelta(days=3, minutes=-1)) == "due in 2 days 23 h"


def test_whole_days_and_short_spans_read_as_before() -> None:
    assert due_in(timezone.now() + timedelta(days=4, minutes=30)) == "due in 4 days"
    assert (
        due_in(timezone.now() + timedelta(hours=5, minutes=10, seconds=30)) == "due in 5 h 10 min"
    )
    assert due_in(timezone.now() - timedelta(days=2, hours=5, minutes=1)).startswith(
        "overdue by 2 days 5 h"
    )
