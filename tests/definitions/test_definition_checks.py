"""Definitions refused on save (reserved step ids, values JSON cannot hold) and failures at
run time (CEL errors on event data, an action changing its input)."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from automation.commands import workflow_definition_save
from automation.definitions.validation import validate
from automation.models import Run, StepRecord, WorkflowVersion

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


# --- definitions that are not JSON ----------------------------------------------------------

YAML_WITH_A_DATE = """
name: dated
trigger: {event: test.go}
steps:
  - id: note
    action: log
    input:
      message: due
      data: {due: 2024-05-01, on: true}
"""


def test_yaml_values_json_cannot_hold_are_reported_not_crashed_on(tmp_path):
    (tmp_path / "dated.yaml").write_text(YAML_WITH_A_DATE)
    err = StringIO()
    with pytest.raises(CommandError, match="2 problem"):
        call_command("load_workflows", str(tmp_path), "--check", stdout=StringIO(), stderr=err)
    assert "steps[0].input.data.due: 2024-05-01 is a date, not a JSON value" in err.getvalue()
    assert "steps[0].input.data: the key True is not a string" in err.getvalue()
    with pytest.raises(CommandError):
        call_command("load_workflows", str(tmp_path), stdout=StringIO(), stderr=StringIO())
    assert not WorkflowVersion.objects.filter(workflow__name="dated").exists()


@pytest.mark.parametrize("number", [float("nan"), float("inf")])
def test_a_number_json_cannot_hold_is_refused(number):
    definition = {"name": "wf", "trigger": {}, "steps": [{"id": "a", **LOG}]}
    definition["steps"][0]["input"] = {"message": "x", "data": [1, number]}
    assert [str(error) for error in validate(definition)] == [
        f"steps[0].input.data[1]: {number} is not a JSON number"
    ]


def test_the_admin_refuses_nan_in_a_definition(client, users):
    client.force_login(users["admin"])
    text = json.dumps(
        {"name": "wf", "trigger": {}, "steps": [{"id": "a", **LOG, "input": {"message": "x"}}]}
    ).replace('"x"}', '"x", "data": NaN}')
    response = client.post(
        "/admin/automation/workflow/add/",
        {"definition": text, "active": "on", "versions-TOTAL_FORMS": "0",
         "versions-INITIAL_FORMS": "0"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "nan is not a JSON number" in response.content.decode()
    assert not WorkflowVersion.objects.filter(workflow__name="wf").exists()


# --- replay determinism ---------------------------------------------------------------------


def test_an_action_that_changes_its_input_does_not_change_what_later_steps_see(workflow_harness):
    def consume(input: dict, ctx: Any) -> dict:
        input["data"].pop("x")  # an action may treat its input as its own
        return {"ok": True}

    workflow_harness.fake("first", returns=consume)
    save(
        "wf",
        [
            {
                "id": "first",
                "action": "log",
                "input": {"message": "m", "data": "{{ trigger.data }}"},
            },
            {"id": "second", "if": "has(trigger.data.x)", **LOG},
        ],
    )
    run = workflow_harness.start("wf", {"x": 1})
    steps = {r.step_id: r.status for r in StepRecord.objects.filter(run=run)}
    assert steps == {"first": "succeeded", "second": "succeeded"}
