"""Secrets never reach a place people read: ``{{ secrets.* }}`` is refused at save in the inputs
of actions that store or show them (naming the path), and an error that carries a secret,
in another case or percent-encoded inside a URL, shows the placeholder."""

from __future__ import annotations

import json
from typing import Any

import pytest

from automation.commands import workflow_definition_save
from automation.definitions import secrets
from automation.definitions.validation import validate
from automation.models import StepRecord

pytestmark = pytest.mark.django_db
TOKEN = "{{ secrets.API_TOKEN }}"


def definition(step: dict[str, Any]) -> dict[str, Any]:
    return {"name": "wf", "trigger": {"event": "test.go"}, "steps": [step]}


def errors_of(action: str, input: dict[str, Any]) -> dict[str, str]:
    step = {"id": "leak", "action": action, "input": input}
    return {error.path: error.message for error in validate(definition(step))}


@pytest.mark.parametrize(
    ("action", "input", "path"),
    [
        ("log", {"message": f"token {TOKEN}"}, "steps[0].input.message"),
        ("log", {"message": "x", "data": {"t": [TOKEN]}}, "steps[0].input.data.t[0]"),
        ("event.emit", {"type": "x.y", "data": {"token": TOKEN}}, "steps[0].input.data.token"),
        ("event.emit", {"type": "x.y", "subject": TOKEN}, "steps[0].input.subject"),
        (
            "record.create",
            {"model": "auth.Group", "fields": {"name": TOKEN}},
            "steps[0].input.fields.name",
        ),
        (
            "record.update",
            {"model": "auth.Group", "pk": 1, "fields": {"name": TOKEN}},
            "steps[0].input.fields.name",
        ),
        ("email.send", {"to": "a@x.test", "subject": TOKEN}, "steps[0].input.subject"),
        ("email.send", {"to": "a@x.test", "subject": "s", "body": TOKEN}, "steps[0].input.body"),
        ("email.send", {"to": "a@x.test", "subject": "s", "html": TOKEN}, "steps[0].input.html"),
        ("slack.post", {"text": f"key {TOKEN}"}, "steps[0].input.text"),
    ],
)
def test_a_secret_in_an_input_that_is_stored_or_shown_is_refused_naming_the_path(
    action, input, path
):
    errors = errors_of(action, input)
    assert "secrets cannot be used here" in errors.get(path, ""), errors


def test_secrets_stay_allowed_where_they_are_sent_not_shown():
    assert errors_of("http.request", {"url": "https://x.test/", "headers": {"X-Key": TOKEN}}) == {}
    assert errors_of("slack.post", {"webhook_url": TOKEN, "text": "hi"}) == {}


def test_the_on_failure_handler_and_compensations_are_checked_too():
    step = {
        "id": "pay",
        "action": "http.request",
        "input": {"url": "https://x.test/"},
        "compensate": {"action": "log", "input": {"message": TOKEN}},
    }
    found = definition(step) | {"on_failure": {"action": "log", "input": {"message": TOKEN}}}
    paths = {error.path for error in validate(found)}
    assert {"steps[0].compensate.input.message", "on_failure.input.message"} <= paths


@pytest.mark.parametrize(
    "shown",
    [
        "could not resolve mytenant-7f.example.com",  # hosts come back lower-cased
        "GET https://x.test/?k=MyTenant%2D7F",
        "GET https://x.test/?k=mytenant-7f",
    ],
)
def test_an_error_shows_the_placeholder_in_any_case_and_encoding(shown):
    assert secrets.redact_text(shown, {"TENANT": "MyTenant-7F"}).count("[secret:TENANT]") == 1
    assert secrets.mentions(shown, {"TENANT": "MyTenant-7F"})


def test_a_secret_host_in_another_case_is_hidden_in_the_recorded_error(
    workflow_harness, monkeypatch
):
    monkeypatch.setenv("AUTOMATION_SECRET_API_HOST", "Tenant-7F")
    step = {
        "id": "call",
        "action": "http.request",
        # The resolver's error names the host lower-cased: tenant-7f.invalid.
        "input": {"url": "http://{{ secrets.API_HOST }}.invalid/orders"},
        "retry": {"max_attempts": 1},
    }
    workflow_definition_save(definition=definition(step))
    run = workflow_harness.start("wf", {})
    run.refresh_from_db()
    record = StepRecord.objects.get(run=run, step_id="call")
    shown = json.dumps([record.error, run.error, record.input])
    assert run.status == "failed"
    assert "tenant-7f" not in shown.lower(), shown
    assert "[secret:API_HOST].invalid" in record.error["message"]
