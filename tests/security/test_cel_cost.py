"""CEL cannot hold the process: an expression whose cost grows faster than the data is refused
at save (a comment cannot hide it), and every evaluation is bounded by the size of the data it
reads and by a deadline; an over-budget evaluation fails that one routing, visibly."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command

from automation.commands import workflow_definition_save
from automation.definitions.validation import validate
from automation.engine import celcost
from automation.models import Run, Workflow, WorkflowVersion
from events.models import Event
from events.routing import event_route
from events.services import emit

pytestmark = pytest.mark.django_db

QUADRATIC = [
    "trigger.data.a.exists(x, x == trigger.data.m)",
    # The old guard counted parentheses in the text: a comment shifted them.
    "trigger.data.a.exists(x, // )\n x == trigger.data.m)",
    "trigger.data.a.all(x, trigger.data.b.exists(y, x == y))",
    "trigger.data.a.all(x, // (\n trigger.data.b.exists(y, x == y))",
    "trigger.data.a.map(x, x.items.filter(y, y > 1)).size() > 0",
    "trigger.data.a.all(i, v, v > trigger.data.m)",
]
LINEAR = [
    "trigger.data.m in trigger.data.a",
    "trigger.data.a.exists(x, x == 5)",
    "trigger.data.a.exists(x, [1, 2].exists(y, y == x))",
    "[1, 2, 3].exists(x, trigger.data.m == x)",
    "trigger.data.a.filter(x, x > 0).map(y, y * 2).size() > 2",
    '"exists(" + "x.all(y, trigger)" != trigger.data.s // all(exists(',
    # true, false and null are literals, not a lookup of the data.
    "trigger.data.a.exists(x, x != null)",
    r'trigger.data.a.exists(x, x.matches(r"^\d+$"))',
]


def workflow(expression: str, *, where: str = "filter") -> dict:
    definition: dict = {
        "name": "costly",
        "trigger": {"event": "flood.posted"},
        "steps": [{"id": "hello", "action": "log", "input": {"message": "hi"}}],
    }
    if where == "filter":
        definition["trigger"]["filter"] = expression
    else:
        definition["steps"].append(
            {"id": "later", "action": "log", "input": {"message": "x"}, "if": expression}
        )
    return definition


@pytest.mark.parametrize("expression", QUADRATIC)
def test_a_filter_whose_cost_grows_with_the_square_of_the_data_is_refused_naming_the_path(
    expression,
):
    errors = {error.path: error.message for error in validate(workflow(expression))}
    assert "square of the data" in errors["trigger.filter"], errors
    errors = {error.path: error.message for error in validate(workflow(expression, where="if"))}
    assert "square of the data" in errors["steps[1].if"], errors


@pytest.mark.parametrize("expression", LINEAR)
def test_filters_linear_in_the_data_are_accepted(expression):
    assert validate(workflow(expression)) == []


def test_a_raw_string_ending_in_a_backslash_cannot_hide_a_quadratic_filter():
    # CEL ends r"\" at its second quote; a reader that took \" for an escape would see three
    # strings here, and no comprehension.
    expression = r'r"\" == " == " || trigger.data.a.exists(x, x == trigger.data.m) || " == " // "'
    errors = {error.path: error.message for error in validate(workflow(expression))}
    assert "raw string ending in a backslash" in errors["trigger.filter"], errors
    assert "backslash doubled" in errors["trigger.filter"], errors


def test_a_trailing_comma_is_refused_with_what_to_do():
    errors = {error.path: error.message for error in validate(workflow("[1, 2,].size() > 0"))}
    assert "remove the trailing comma" in errors["trigger.filter"], errors


def test_the_api_refuses_a_quadratic_filter_with_400_and_saves_nothing(client, users):
    editor = users["operator"]
    editor.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_workflow", "add_workflow"])
    )
    client.force_login(editor)
    definition = workflow(QUADRATIC[1])
    response = client.post("/api/workflows/", {"definition": definition}, "application/json")
    assert response.status_code == 400
    assert response.json()["error"]["errors"][0]["path"] == "trigger.filter"
    assert not Workflow.objects.filter(name="costly").exists()


def test_the_admin_and_a_file_load_refuse_it_too(client, users, tmp_path):
    client.force_login(users["admin"])
    data = {
        "definition": json.dumps(workflow(QUADRATIC[1], where="if")),
        "active": "on",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
    }
    page = client.post("/admin/automation/workflow/add/", data).content.decode()
    assert "steps[1].if: invalid CEL: its cost grows with the square of the data" in page
    (tmp_path / "costly.json").write_text(json.dumps(workflow(QUADRATIC[1])))
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was loaded"):
        call_command("load_workflows", str(tmp_path), stdout=StringIO(), stderr=err)
    assert "costly.json: trigger.filter: invalid CEL: its cost grows" in err.getvalue()
    assert not Workflow.objects.filter(name="costly").exists()


def stored(expression: str) -> Workflow:
    """A workflow saved before the cost check existed: its row bypasses validation."""
    workflow_row = Workflow.objects.create(name="legacy", kind=Workflow.Kind.DECLARATIVE)
    WorkflowVersion.objects.create(
        workflow=workflow_row,
        number=1,
        checksum="legacy",
        definition=workflow(expression),
        trigger_event="flood.posted",
        trigger_filter=expression,
    )
    return workflow_row


def test_an_event_over_the_input_limit_fails_the_filter_with_an_error_on_the_event_page(
    client, users
):
    stored("trigger.data.a.exists(x, x == 5)")
    event = emit("flood.posted", {"a": list(range(30_000)), "m": -1})
    event_route(event_id=event.id)
    assert not Run.objects.exists()
    event.refresh_from_db()
    assert "more than 10,000 values (CEL_MAX_INPUT_VALUES)" in event.route_errors[0]
    assert "workflow legacy v1 not started: trigger.filter" in event.route_errors[0]
    client.force_login(users["admin"])
    page = client.get(f"/app/events/{event.id}/").content.decode()
    assert "Routing errors" in page
    assert "CEL_MAX_INPUT_VALUES" in page


def test_a_stored_quadratic_filter_is_not_evaluated_and_the_event_says_why():
    stored(QUADRATIC[0])
    event = emit("flood.posted", {"a": list(range(5_000)), "m": -1})
    event_route(event_id=event.id)
    event.refresh_from_db()
    assert not Run.objects.exists()
    assert "square of the data" in event.route_errors[0]


def test_routing_parses_a_stored_filter_once_not_once_per_event(monkeypatch):
    parsed = []
    parse = celcost.parse
    monkeypatch.setattr(celcost, "parse", lambda text: parsed.append(text) or parse(text))
    expression = "trigger.data.a.exists(x, x == 7) // parsed once per process"
    stored(expression)
    for _ in range(3):
        event_route(event_id=emit("flood.posted", {"a": [7]}).id)
    assert Run.objects.count() == 3
    assert parsed == [expression]


def test_an_evaluation_past_its_deadline_is_stopped_and_recorded(settings):
    settings.CEL_TIMEOUT_MS = 1
    # Linear in the data, but it reads all of it once for each of 200 literal items: seconds.
    items = ", ".join(str(i) for i in range(200))
    stored(f"[{items}].exists(i, trigger.data.a.size() == i)")
    event = emit("flood.posted", {"a": list(range(9_000))})
    event_route(event_id=event.id)
    event.refresh_from_db()
    assert not Run.objects.exists()
    assert "took longer than 1 ms (CEL_TIMEOUT_MS)" in event.route_errors[0]
    # The worker goes on: the next event is routed normally.
    settings.CEL_TIMEOUT_MS = 5_000
    small = emit("flood.posted", {"a": [1]})
    event_route(event_id=small.id)
    assert Run.objects.filter(trigger_event=small).count() == 1


def test_the_admin_dry_run_is_bounded_too(client, users):
    wf, _, _ = workflow_definition_save(definition=workflow("trigger.data.a.exists(x, x == 5)"))
    client.force_login(users["admin"])
    url = f"/admin/automation/workflow/{wf.pk}/dry-run/"
    response = client.post(url, {"data": json.dumps({"a": list(range(30_000))}), "fakes": "{}"})
    assert response.status_code == 200
    assert "CEL_MAX_INPUT_VALUES" in response.content.decode()


def test_a_step_condition_over_the_limits_fails_the_run_with_the_reason(workflow_harness):
    workflow_definition_save(definition=workflow("trigger.data.a.exists(x, x == 5)", where="if"))
    workflow_harness.emit("flood.posted", {"a": list(range(30_000))})
    run = Run.objects.get(workflow__name="costly")
    assert run.status == "failed"
    assert "CEL_MAX_INPUT_VALUES" in json.dumps(run.error)


def test_no_route_errors_for_an_event_that_routes_cleanly():
    stored("trigger.data.a.exists(x, x == 5)")
    event = emit("flood.posted", {"a": [5]})
    event_route(event_id=event.id)
    event.refresh_from_db()
    assert event.route_errors == []
    assert Event.objects.get(id=event.id).routed_at is not None


@pytest.mark.parametrize("expression", ["!" * 1990 + "true", "trigger" + ".b" * 660])
def test_a_deeply_nested_expression_is_refused_not_a_server_error(expression):
    errors = {error.path: error.message for error in validate(workflow(expression))}
    assert errors["trigger.filter"].startswith("invalid CEL"), errors
