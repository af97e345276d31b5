"""Declarative approvals have what code approvals have: form fields the approver fills in
(their values in the step's output) and a reminder before the timeout."""

from __future__ import annotations

from datetime import timedelta

import pytest

from approvals.forms import InvalidValues
from approvals.models import Approval
from automation.commands import workflow_definition_save
from automation.definitions import validation
from automation.models import Run

pytestmark = pytest.mark.django_db

FIELDS = [
    {"name": "amount", "label": "Approved amount", "type": "number", "required": True},
    {"name": "cost_centre", "type": "choice", "choices": ["sales", "ops"]},
]


def definition(**approval):
    return {
        "name": "expense-form",
        "trigger": {"event": "expense.filed"},
        "steps": [
            {
                "id": "ok",
                "approval": {"title": "Pay it?", "assignees": ["group:managers"], **approval},
            }
        ],
    }


def test_a_declarative_approval_asks_its_fields_and_returns_their_values(workflow_harness, team):
    workflow_definition_save(definition=definition(fields=FIELDS, timeout="2d"))
    workflow_harness.emit("expense.filed", {"amount": 120})
    run = Run.objects.get(workflow__name="expense-form")
    approval = Approval.objects.get(run=run)
    assert [f["name"] for f in approval.fields] == ["amount", "cost_centre"]

    with pytest.raises(InvalidValues):
        workflow_harness.decide(run, "ok", "approve", user=team["ann"], values={})
    workflow_harness.decide(
        run, "ok", "approve", user=team["ann"], values={"amount": 100, "cost_centre": "ops"}
    )
    output = workflow_harness.result(run)["ok"]
    assert output["approved"] is True
    assert output["values"] == {"amount": 100, "cost_centre": "ops"}


def test_a_declarative_approval_reminds_the_assignees_before_its_timeout(
    workflow_harness, team, mailoutbox
):
    workflow_definition_save(definition=definition(timeout="10h", remind_before="2h"))
    workflow_harness.emit("expense.filed", {})
    approval = Approval.objects.get(run__workflow__name="expense-form")
    assert approval.remind_at == approval.due_at - timedelta(hours=2)
    mailoutbox.clear()

    workflow_harness.advance_time("7h")
    assert mailoutbox == []
    workflow_harness.advance_time("1h30m")
    assert sorted(m.to[0] for m in mailoutbox) == ["ann@example.com", "bob@example.com"]
    assert mailoutbox[0].subject.startswith("Reminder: Pay it?")


def test_remind_before_zero_never_reminds(workflow_harness, team):
    workflow_definition_save(definition=definition(timeout="10h", remind_before=0))
    workflow_harness.emit("expense.filed", {})
    assert Approval.objects.get(run__workflow__name="expense-form").remind_at is None


@pytest.mark.parametrize(
    ("approval", "path", "problem"),
    [
        ({"fields": [{"name": "1st"}]}, "steps[0].approval.fields", "name must be letters"),
        ({"fields": [{"name": "x", "type": "colour"}]}, "steps[0].approval.fields", "type"),
        ({"remind_before": "1h"}, "steps[0].approval.remind_before", "needs a timeout"),
        (
            {"timeout": "1h", "remind_before": "2h"},
            "steps[0].approval.remind_before",
            "shorter than the timeout",
        ),
        ({"timeout": "1h", "remind_before": "soon"}, "steps[0].approval.remind_before", ""),
    ],
)
def test_bad_fields_or_reminders_refuse_the_definition_naming_the_path(
    team, approval, path, problem
):
    errors = validation.validate(definition(**approval))
    assert any(e.path.startswith(path) and problem in e.message for e in errors), errors
