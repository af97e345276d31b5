"""What used to pass validation and fail later (or never) is refused at save with its path:
``{% … %}`` blocks in strings, durations past any sane horizon, an absurd quorum."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission

from automation.definitions.validation import validate
from automation.models import Workflow

pytestmark = pytest.mark.django_db


def definition(step: dict[str, Any]) -> dict[str, Any]:
    return {"name": "limits", "trigger": {"event": "a.b"}, "steps": [step]}


def errors_of(step: dict[str, Any]) -> dict[str, str]:
    return {error.path: error.message for error in validate(definition(step))}


def log(message: str, **extra: Any) -> dict[str, Any]:
    return {"id": "say", "action": "log", "input": {"message": message}, **extra}


@pytest.mark.parametrize(
    ("step", "path"),
    [
        (log("hello {% if trigger.data.vip %}VIP{% endif %}"), "steps[0].input.message"),
        (log("{%raw%}"), "steps[0].input.message"),
        (
            {"id": "ok", "approval": {"title": "Pay? {% now %}", "assignees": ["user:root"]}},
            "steps[0].approval.title",
        ),
    ],
)
def test_a_block_tag_in_a_string_is_refused_naming_the_path(users, step, path):
    assert "{% … %} blocks" in errors_of(step).get(path, ""), errors_of(step)


@pytest.mark.parametrize(
    ("step", "path"),
    [
        ({"id": "nap", "sleep": "99999999w"}, "steps[0].sleep"),
        ({"id": "nap", "sleep": 1e300}, "steps[0].sleep"),
        (log("x", timeout="99999999w"), "steps[0].timeout"),
        (log("x", retry={"max": "99999999w"}), "steps[0].retry.max"),
        (
            {"id": "ok", "approval": {"title": "t", "assignees": ["user:root"], "timeout": "522w"}},
            "steps[0].approval.timeout",
        ),
    ],
)
def test_a_duration_past_ten_years_is_refused_naming_the_path(users, step, path):
    assert "limit of 3650d" in errors_of(step).get(path, ""), errors_of(step)


def test_ten_years_is_still_a_duration(users):
    assert errors_of({"id": "nap", "sleep": "3650d"}) == {}


def test_an_absurd_quorum_is_refused_naming_the_path(users):
    step = {"id": "ok", "approval": {"title": "t", "assignees": ["user:root"], "quorum": 1e9}}
    assert "above the maximum, 100" in errors_of(step)["steps[0].approval.quorum"]
    step["approval"]["quorum"] = 3
    assert errors_of(step) == {}


def test_the_api_answers_400_and_saves_nothing(client, users):
    editor = users["operator"]
    editor.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_workflow", "add_workflow"])
    )
    client.force_login(editor)
    bad = definition({"id": "nap", "sleep": "99999999w"})
    response = client.post("/api/workflows/", {"definition": bad}, "application/json")
    assert response.status_code == 400
    assert response.json()["error"]["errors"][0]["path"] == "steps[0].sleep"
    assert not Workflow.objects.filter(name="limits").exists()
