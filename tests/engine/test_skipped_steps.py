"""A step skipped by its ``if`` reads as null, however deep the path, wherever a declarative
definition reads it: later templates, later ``if`` conditions (CEL), the output, parallel
branches and on_failure. A run that did all its work never fails over a skipped step."""

from __future__ import annotations

from typing import Any

import pytest

from automation.commands import workflow_definition_save
from automation.models import Run, StepRecord

pytestmark = pytest.mark.django_db


def echo(input: dict, ctx: Any) -> dict:
    return {"echo": input}


def save(steps: list[dict], **extra: Any) -> None:
    definition = {"name": "skips", "trigger": {"event": "test.skips"}, "steps": steps, **extra}
    workflow_definition_save(definition=definition)


MAYBE = {
    "id": "maybe",
    "action": "log",
    "if": "trigger.data.loud",
    "input": {"message": "loud"},
}


def test_an_output_reading_a_skipped_step_deep_reads_null(workflow_harness):
    workflow_harness.fake("log", returns={"logged": True})
    save(
        [MAYBE, {"id": "always", "action": "log", "input": {"message": "hi"}}],
        output={
            "logged": "{{ steps.maybe.output.logged }}",
            "deep": "{{ steps.maybe.output.a[0].b }}",
        },
        on_failure={"action": "log", "input": {"message": "failed"}},
    )
    run = workflow_harness.start("skips", {"loud": False})
    assert workflow_harness.result(run) == {"logged": None, "deep": None}
    assert workflow_harness.calls == {"always": 1}  # no compensation, no on_failure


def test_a_later_template_reading_a_skipped_step_reads_null(workflow_harness):
    workflow_harness.fake("log", returns=echo)
    save(
        [
            MAYBE,
            {
                "id": "after",
                "action": "log",
                "input": {"message": "was {{ steps.maybe.output.logged }}"},
            },
        ]
    )
    run = workflow_harness.start("skips", {"loud": False})
    assert workflow_harness.result(run)["after"] == {"echo": {"message": "was null"}}


def test_a_later_condition_reading_a_skipped_step_reads_null(workflow_harness):
    workflow_harness.fake("log", returns={"logged": True})
    save(
        [
            MAYBE,
            {
                "id": "if_logged",
                "action": "log",
                "if": "steps.maybe.output.logged == true",
                "input": {"message": "x"},
            },
            {
                "id": "if_not_logged",
                "action": "log",
                "if": 'steps["maybe"].output.logged == null && "steps.maybe" != ""',
                "input": {"message": "y"},
            },
            {
                "id": "if_no_field",
                "action": "log",
                "if": "!has(steps.maybe.output.logged)",
                "input": {"message": "z"},
            },
        ]
    )
    run = workflow_harness.start("skips", {"loud": False})
    workflow_harness.result(run)
    statuses = {r.step_id: r.status for r in StepRecord.objects.filter(run=run)}
    assert statuses == {
        "maybe": "skipped",
        "if_logged": "skipped",
        "if_not_logged": "succeeded",
        "if_no_field": "succeeded",
    }


def test_a_condition_asking_a_skipped_step_for_a_list_reads_an_empty_one(workflow_harness):
    """size(), the list macros and ``in`` read a skipped step's path as an empty list; a path
    indexed by a skipped step's value reads as null as a whole."""
    workflow_harness.fake("log", returns={"logged": True, "items": [1], "i": 0})
    conditions = {
        "sized": "size(steps.maybe.output.items) == 0",
        "method_sized": "steps.maybe.output.items.size() == 0",
        "none_exist": "!steps.maybe.output.items.exists(i, i > 1)",
        "all_hold": "steps.maybe.output.items.all(i, i > 1)",
        "not_in": "!(1 in steps.maybe.output.items)",
        "indexed": "steps.always.output.items[steps.maybe.output.i] == null",
    }
    save(
        [
            MAYBE,
            {"id": "always", "action": "log", "input": {"message": "hi"}},
            *(
                {"id": step_id, "action": "log", "if": condition, "input": {"message": step_id}}
                for step_id, condition in conditions.items()
            ),
        ]
    )
    run = workflow_harness.start("skips", {"loud": False})
    workflow_harness.result(run)
    ran = StepRecord.objects.filter(run=run, step_id__in=conditions, status="succeeded")
    assert set(ran.values_list("step_id", flat=True)) == set(conditions)


def test_a_parallel_branch_reading_a_skipped_step_reads_null(workflow_harness):
    workflow_harness.fake("log", returns=echo)
    save(
        [
            MAYBE,
            {
                "id": "fan",
                "parallel": [
                    [
                        {
                            "id": "a",
                            "action": "log",
                            "input": {"message": "{{ steps.maybe.output.x }}"},
                        }
                    ],
                    [{"id": "b", "action": "log", "input": {"message": "b"}}],
                ],
            },
        ]
    )
    run = workflow_harness.start("skips", {"loud": False})
    workflow_harness.run_until_idle()
    assert workflow_harness.result(run)["fan"]["a"] == {"echo": {"message": None}}


def test_a_step_that_ran_still_fails_a_template_naming_a_missing_field(workflow_harness):
    workflow_harness.fake("log", returns={"logged": True})
    save([MAYBE], output={"x": "{{ steps.maybe.output.nope }}"})
    run = Run.objects.get(id=workflow_harness.start("skips", {"loud": True}).id)
    assert run.status == "failed"
    assert "has no 'nope'" in run.error["message"]
