"""Every class of invalid definition is rejected, with an error naming its path."""

from __future__ import annotations

import copy

import pytest
from django.contrib.auth.models import Group

from automation.definitions.validation import validate

pytestmark = pytest.mark.django_db

VALID = {
    "name": "onboarding",
    "trigger": {"event": "user.signed_up", "filter": 'trigger.data.plan != "internal"'},
    "steps": [
        {"id": "hello", "action": "log", "input": {"message": "hi {{ trigger.data.email }}"}},
        {
            "id": "ok",
            "approval": {"title": "{{ trigger.data.email }}?", "assignees": ["group:managers"]},
        },
        {"id": "later", "sleep": "1d", "if": "steps.ok.output.approved"},
    ],
}


def errors_of(definition: dict) -> dict[str, str]:
    return {error.path: error.message for error in validate(definition)}


def changed(path: list, value: object) -> dict:
    definition = copy.deepcopy(VALID)
    target = definition
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return definition


@pytest.fixture(autouse=True)
def managers() -> None:
    Group.objects.create(name="managers")


def test_a_valid_definition_has_no_errors():
    assert validate(VALID) == []


def test_unknown_action_names_the_step():
    errors = errors_of(changed(["steps", 0, "action"], "no.such-action"))
    assert "unknown action 'no.such-action'" in errors["steps[0].action"]


def test_input_that_breaks_the_action_schema_names_the_field():
    errors = errors_of(changed(["steps", 0, "input"], {"message": "x", "level": "loud"}))
    assert "steps[0].input.level" in errors
    errors = errors_of(changed(["steps", 0, "input"], {}))
    assert "'message' is a required property" in errors["steps[0].input"]


def test_a_template_stands_in_for_any_type_until_the_step_runs():
    assert errors_of(changed(["steps", 0, "input"], {"message": "{{ trigger.data.n }}"})) == {}


def test_duplicate_step_id():
    errors = errors_of(changed(["steps", 2, "id"], "hello"))
    assert errors["steps[2].id"] == "duplicate step id 'hello'"


def test_reference_to_a_step_that_has_not_run_yet():
    definition = changed(["steps", 0, "input"], {"message": "{{ steps.ok.output.approved }}"})
    assert errors_of(definition) == {
        "steps[0].input.message": "step 'ok' has not run before this point"
    }
    definition = changed(["steps", 2, "if"], "steps.later.output == null")
    assert "has not run" in errors_of(definition)["steps[2].if"]
    definition = changed(["steps", 0, "input"], {"message": "{{ steps.ghost.output }}"})
    assert errors_of(definition)["steps[0].input.message"] == "no step 'ghost' in this workflow"


def test_bad_duration():
    assert "not a duration" in errors_of(changed(["steps", 2, "sleep"], "soon"))["steps[2].sleep"]
    definition = changed(["steps", 1, "approval", "timeout"], "2 fortnights")
    assert "steps[1].approval.timeout" in errors_of(definition)


def test_bad_cel():
    errors = errors_of(changed(["steps", 2, "if"], "steps.ok.output.approved &&"))
    assert errors["steps[2].if"].startswith("invalid CEL")
    errors = errors_of(changed(["trigger", "filter"], "trigger.data.plan =="))
    assert errors["trigger.filter"].startswith("invalid CEL")


def test_costly_cel_is_rejected():
    nested = "trigger.data.a.all(x, trigger.data.b.exists(y, x == y))"
    assert "square of the data" in errors_of(changed(["steps", 2, "if"], nested))["steps[2].if"]
    long = " || ".join(["trigger.data.a == 1"] * 200)
    assert "limit is 2000" in errors_of(changed(["steps", 2, "if"], long))["steps[2].if"]


def test_unknown_assignee_group():
    definition = changed(["steps", 1, "approval", "assignees"], ["group:nobody", "user:ghost"])
    errors = errors_of(definition)
    assert errors["steps[1].approval.assignees[0]"] == "unknown assignee group 'nobody'"
    assert errors["steps[1].approval.assignees[1]"] == "unknown assignee user 'ghost'"


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ 7*7 }}",
        "{{ trigger.data.__class__ }}x{{",
        "{{ trigger.data['a'] }}",
        "{% for x in y %}{{ x }}{% endfor %}",
    ],
)
def test_template_injection_is_a_validation_error(template):
    errors = errors_of(changed(["steps", 0, "input"], {"message": template}))
    assert "steps[0].input.message" in errors, errors


def test_shape_errors_name_the_path():
    errors = errors_of(changed(["steps", 0], {"id": "x", "action": "log", "inputs": {}}))
    assert "unknown key 'inputs'" in errors["steps[0]"]
    errors = errors_of(changed(["steps", 0], {"id": "x"}))
    assert "exactly one of" in errors["steps[0]"]
    errors = errors_of(changed(["steps", 0, "id"], "has space"))
    assert "steps[0].id" in errors
    assert "name" in errors_of(changed(["name"], "Not A Slug"))


def test_a_misspelt_kind_is_named_with_the_key_it_meant():
    errors = errors_of(changed(["steps", 0], {"id": "x", "actoin": "log", "bogus": 1}))
    assert errors["steps[0].actoin"] == "unknown key 'actoin' (did you mean 'action'?)"
    assert errors["steps[0].bogus"].startswith("unknown key 'bogus' (a step has action, ")
    assert "steps[0]" not in errors  # the vaguer "exactly one of" is not said as well


def test_modifiers_that_mean_nothing_for_a_kind_are_errors():
    assert (
        "nothing to retry"
        in errors_of(changed(["steps", 2, "retry"], {"max_attempts": 2}))["steps[2].retry"]
    )
    assert "no timeout" in errors_of(changed(["steps", 2, "timeout"], "1s"))["steps[2].timeout"]
    bad_backoff = changed(["steps", 0, "retry"], {"backoff": 0.5})
    assert "steps[0].retry.backoff" in errors_of(bad_backoff)


def test_parallel_branches_see_earlier_steps_but_not_each_other():
    definition = copy.deepcopy(VALID)
    definition["steps"].append(
        {
            "id": "fan",
            "parallel": [
                [{"id": "a", "action": "log", "input": {"message": "{{ steps.hello.output }}"}}],
                [{"id": "b", "action": "log", "input": {"message": "{{ steps.a.output }}"}}],
            ],
        }
    )
    definition["steps"].append(
        {"id": "after", "action": "log", "input": {"message": "{{ steps.b.output.message }}"}}
    )
    assert errors_of(definition) == {
        "steps[3].parallel[1][0].input.message": "step 'a' has not run before this point"
    }


@pytest.mark.parametrize("root", ["input", "run"])
def test_a_trigger_filter_on_input_or_run_is_refused(root):
    definition = {
        "name": "wf",
        "trigger": {"event": "e", "filter": f"{root}.id == 'x'"},
        "steps": [{"id": "a", "action": "log", "input": {"message": "m"}}],
    }
    errors = validate(definition)
    assert [error.path for error in errors] == ["trigger.filter"]
    assert f"not {root}" in errors[0].message


def test_an_ai_schema_that_is_not_a_json_schema_is_refused():
    definition = {
        "name": "wf",
        "trigger": {"event": "e"},
        "steps": [
            {
                "id": "ask",
                "action": "ai.complete",
                "input": {"prompt": "x", "schema": {"type": "thing", "required": "no"}},
            }
        ],
    }
    errors = validate(definition)
    assert [error.path for error in errors] == ["steps[0].input.schema"]
    assert "not a valid JSON Schema" in errors[0].message
