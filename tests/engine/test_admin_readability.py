"""The admin reads like the product, not like its tables: a run's business fields first and the
engine's internals folded away under them; a failure's traceback in a scrollable monospace
block; a workflow definition's errors all at once, in plain words."""

from __future__ import annotations

import html
import re

import pytest

from automation.models import Run, Workflow
from tests.definitions.test_admin import post_definition
from tests.engine.test_admin import failed_trip

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client, users):
    client.force_login(users["admin"])
    return client


@pytest.fixture
def failed_page(workflow_harness, admin) -> str:
    run = failed_trip(workflow_harness)
    return admin.get(f"/admin/automation/run/{run.id}/change/").content.decode()


def _fieldsets(page: str) -> list[str]:
    """The run form's fieldsets, in order, as HTML."""
    return re.findall(r"<fieldset.*?</fieldset>", page, flags=re.S)[:3]


def test_the_business_fields_come_first_and_the_engine_internals_are_folded(failed_page):
    business, data, internals = _fieldsets(failed_page)
    for label in ("Workflow:", "Status:", "Correlation id:", "Trigger event:", "Started by:"):
        assert label in business
    assert "error" in data.lower()
    # Folded: a <details> that is not open, titled, with the engine's fields inside.
    assert re.search(r"<details(?![^>]*\bopen\b)[^>]*>\s*<summary>", internals)
    assert "Engine internals" in internals
    for label in ("Wakeups:", "Dispatched at:", "Lease owner:", "Lease expires at:"):
        assert label in internals
        assert label not in business


def test_the_run_error_shows_what_failed_and_a_readable_traceback(failed_page):
    assert "<strong>NonRetryableError</strong> no car available for Oslo" in failed_page
    assert "step car · attempt 1 · a retry will not help" in failed_page
    block = re.search(r'<pre class="traceback"[^>]*>(.*?)</pre>', failed_page, flags=re.S)
    assert block, "no traceback block"
    traceback = html.unescape(block.group(1))
    assert traceback.startswith("Traceback (most recent call last):")
    assert "\n" in traceback  # lines, not one line of JSON with \n in it
    assert '\\n  File "' not in failed_page
    assert "app/admin.css" in failed_page  # the block's style: monospace, scrolls


def test_a_failed_step_has_its_traceback_behind_a_summary(failed_page):
    rows = re.findall(r'<tr class="form-row.*?</tr>', failed_page, flags=re.S)
    car = next(row for row in rows if ">car<" in row)
    assert "<details><summary>Show the traceback</summary>" in car
    flight = next(row for row in rows if ">flight<" in row)
    assert "traceback" not in flight.split("field-traceback")[1].split("</td>")[0].lower()


def test_the_admin_css_keeps_tracebacks_monospace_and_scrollable():
    from tests.processes import ROOT

    css = (ROOT / "static" / "app" / "admin.css").read_text()
    rule = css.split("pre.traceback {")[1].split("}")[0]
    assert "monospace" in rule
    assert "overflow: auto" in rule
    assert "white-space: pre" in rule


BROKEN = {
    "name": "Expense Approval!",
    "trigger": {"event": "expense.submitted"},
    "steps": [
        {"id": "check amount", "action": "no.such.action"},
        {"id": "wait", "sleep": "forever"},
        {"id": "ok", "approval": {"title": "OK?", "assignees": ["managers"]}},
        {"id": "late", "action": "log", "if": "steps.nowhere.output ==", "input": {"message": 1}},
    ],
    "extras": True,
}


def test_every_definition_error_is_shown_at_once_in_plain_words(admin):
    response = post_definition(admin, "/admin/automation/workflow/add/", BROKEN)
    assert response.status_code == 200  # the form again
    page = html.unescape(response.content.decode())
    expected = [
        # the shape ...
        "unknown key 'extras'",
        "name: 'Expense Approval!' is not allowed: a workflow name is lowercase letters",
        "steps[0].id: 'check amount' is not allowed: a step id is letters, digits and _",
        "steps[2].approval.assignees[0]: 'managers' is not allowed: an assignee is "
        "user:<username> or group:<group name>",
        # ... and, in the same answer, what the steps mean
        "steps[0].action: unknown action 'no.such.action'",
        "steps[1].sleep: 'forever' is not a duration",
        "steps[3].if: invalid CEL",
    ]
    for message in expected:
        assert message in page, message
    assert "does not match '^" not in page  # no regular expression
    assert not Workflow.objects.filter(name=BROKEN["name"]).exists()


def test_a_definition_with_an_unreadable_step_still_gets_the_other_steps_checked():
    from automation.definitions.validation import validate

    errors = [
        str(e)
        for e in validate(
            {
                "name": "x",
                "trigger": {"event": "a"},
                "steps": [{"action": "log"}, {"id": "b", "sleep": "soon"}, "not a step"],
            }
        )
    ]
    assert "steps[0]: 'id' is missing (it is required)" in errors
    assert any(e.startswith("steps[2]: 'not a step' should be") for e in errors)
    # The steps with no shape error are still read (after the shape's own errors).
    assert "steps[1].sleep: 'soon' is not a duration" in " ".join(errors)
    assert Run.objects.count() == 0
