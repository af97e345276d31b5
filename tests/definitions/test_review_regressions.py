"""Regressions found reviewing declarative workflows: each test failed before its fix."""

from __future__ import annotations

from typing import Any

import pytest

from automation.definitions.validation import validate
from automation.models import Run
from automation.services import workflow_definition_save

pytestmark = pytest.mark.django_db


def save(name: str, steps: list[dict], **extra: Any) -> None:
    definition = {"name": name, "trigger": {"event": "test.go"}, "steps": steps, **extra}
    workflow_definition_save(definition=definition)


LOG = {"action": "log", "input": {"message": "hi"}}


# --- CEL runtime errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "condition",
    [
        'trigger.data.items[0].sku == "x"',  # IndexError on an empty list
        "trigger.data.total / trigger.data.count > 1",  # ZeroDivisionError
    ],
)
def test_a_filter_failing_on_event_data_does_not_stop_other_workflows(workflow_harness, condition):
    workflow_definition_save(
        definition={
            "name": "filtered",
            "trigger": {"event": "test.go", "filter": condition},
            "steps": [{"id": "a", **LOG}],
        }
    )
    save("plain", [{"id": "a", **LOG}])
    workflow_harness.emit("test.go", {"items": [], "total": 5, "count": 0})
    assert [run.workflow.name for run in Run.objects.select_related("workflow")] == ["plain"]


def test_an_if_failing_on_event_data_fails_the_step_that_has_it(workflow_harness):
    save("wf", [{"id": "first", "if": "trigger.data.items[0] > 1", **LOG}])
    run = workflow_harness.start("wf", {"items": []})
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error["step"] == "first"
    assert "index out of bounds" in run.error["message"]


# --- reserved step ids ----------------------------------------------------------------------


def test_a_step_id_the_engine_reserves_is_refused_on_save():
    definition = {"name": "wf", "trigger": {}, "steps": [{"id": "on_failure", **LOG}]}
    errors = [str(error) for error in validate(definition)]
    assert errors == ["steps[0].id: 'on_failure' is reserved for the engine; choose another id"]
