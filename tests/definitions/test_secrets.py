"""``{{ secrets.NAME }}``: the value reaches the action (a real local HTTP server here) and
nothing that is kept or shown: the journal, the run page, the API, the dry run, the logs and
error messages show ``[secret:NAME]``. Credential headers written literally are hidden in the
journal too."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from automation.commands import workflow_definition_save
from automation.definitions.dryrun import dry_run
from automation.definitions.validation import validate
from automation.models import Run, StepRecord

SECRET = "sk_live_s3cr3t-value-0042"


@pytest.fixture
def stripe_key(monkeypatch):
    monkeypatch.setenv("AUTOMATION_SECRET_STRIPE_KEY", SECRET)


@pytest.fixture
def allow_local(settings):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]


def definition(steps: list[dict], **extra: Any) -> dict[str, Any]:
    return {"name": "wf", "trigger": {"event": "test.go"}, "steps": steps, **extra}


def call_api(url: str, retry: dict | None = None, **input: Any) -> dict[str, Any]:
    step = {"id": "charge", "action": "http.request", "input": {"url": url, **input}}
    return step | ({"retry": retry} if retry else {})


def journal(run: Run) -> dict[str, StepRecord]:
    return {record.step_id: record for record in StepRecord.objects.filter(run=run)}


def test_the_secret_reaches_the_server_and_nothing_shown_holds_it(
    workflow_harness, http_server, allow_local, stripe_key, client, users, caplog
):
    caplog.set_level(logging.DEBUG)
    step = call_api(
        f"{http_server.url}/charges",
        method="POST",
        headers={
            "Authorization": "Bearer {{ secrets.STRIPE_KEY }}",
            "X-Api-Key": "literal-key-123",
            "Cookie": "session=literal-cookie",
        },
        json={"token": "{{ secrets.STRIPE_KEY }}", "amount": 5},
    )
    workflow_definition_save(definition=definition([step]))
    run = workflow_harness.start("wf", {})
    workflow_harness.result(run)

    received = http_server.last()
    assert received["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert received["headers"]["X-Api-Key"] == "literal-key-123"
    assert json.loads(received["body"])["token"] == SECRET

    record = journal(run)["charge"]
    assert record.input["headers"] == {
        "Authorization": "Bearer [secret:STRIPE_KEY]",
        "X-Api-Key": "[redacted]",
        "Cookie": "[redacted]",
    }
    assert record.input["json"] == {"token": "[secret:STRIPE_KEY]", "amount": 5}
    # The server echoes the body back: the output is redacted as well.
    assert "[secret:STRIPE_KEY]" in json.dumps(record.output)
    kept = json.dumps([record.input, record.output, Run.objects.get(pk=run.pk).output])
    assert SECRET not in kept
    assert "literal-key-123" not in kept

    client.force_login(users["admin"])
    page = client.get(f"/app/runs/{run.id}/")
    api = client.get(f"/api/runs/{run.id}/")
    assert page.status_code == api.status_code == 200
    for shown in (page.content.decode(), api.content.decode(), caplog.text):
        assert SECRET not in shown
        assert "literal-key-123" not in shown
        assert "literal-cookie" not in shown
    assert "[secret:STRIPE_KEY]" in api.content.decode()


def test_an_error_message_shows_the_placeholder_not_the_value(
    workflow_harness, http_server, allow_local, stripe_key, caplog
):
    step = call_api(
        f"{http_server.url}/status/404?key={{{{ secrets.STRIPE_KEY }}}}",
        retry={"max_attempts": 1},
    )
    workflow_definition_save(definition=definition([step]))
    run = workflow_harness.start("wf", {})
    run.refresh_from_db()
    assert run.status == "failed"
    error = journal(run)["charge"].error
    assert "answered 404" in error["message"]
    assert "[secret:STRIPE_KEY]" in error["message"]
    everything = json.dumps([error, run.error, journal(run)["charge"].input]) + caplog.text
    assert SECRET not in everything


def test_a_retryable_failure_stays_retryable_with_the_value_hidden(
    workflow_harness, http_server, allow_local, stripe_key
):
    step = call_api(
        f"{http_server.url}/status/503?key={{{{ secrets.STRIPE_KEY }}}}",
        retry={"max_attempts": 2, "initial": "1s"},
    )
    workflow_definition_save(definition=definition([step]))
    run = workflow_harness.start("wf", {})
    record = journal(run)["charge"]
    assert record.status == "waiting"  # a retry is scheduled
    assert "[secret:STRIPE_KEY]" in record.error["message"]
    assert SECRET not in json.dumps(record.error)


def test_a_missing_variable_fails_the_step_naming_the_secret(
    workflow_harness, http_server, allow_local, monkeypatch
):
    monkeypatch.delenv("AUTOMATION_SECRET_STRIPE_KEY", raising=False)
    step = call_api(http_server.url, headers={"Authorization": "Bearer {{ secrets.STRIPE_KEY }}"})
    workflow_definition_save(definition=definition([step]))
    run = workflow_harness.start("wf", {})
    run.refresh_from_db()
    assert run.status == "failed"
    error = journal(run)["charge"].error
    assert "STRIPE_KEY" in error["message"]
    assert "AUTOMATION_SECRET_STRIPE_KEY" in error["message"]
    assert http_server.requests == []


def test_secrets_in_parallel_branches_and_compensations_are_resolved_and_hidden(
    workflow_harness, http_server, allow_local, stripe_key
):
    auth = {"Authorization": "Bearer {{ secrets.STRIPE_KEY }}"}
    steps = [
        {
            "id": "both",
            "parallel": [[call_api(f"{http_server.url}/a", headers=auth) | {"id": "a"}]],
        },
        call_api(f"{http_server.url}/b", headers=auth)
        | {
            "id": "b",
            "compensate": {
                "action": "http.request",
                "input": {"url": f"{http_server.url}/undo", "headers": auth},
            },
        },
        call_api(f"{http_server.url}/status/404", retry={"max_attempts": 1}) | {"id": "c"},
    ]
    workflow_definition_save(definition=definition(steps))
    run = workflow_harness.start("wf", {})
    received = {request["path"]: request["headers"] for request in http_server.requests}
    assert received["/a"]["Authorization"] == f"Bearer {SECRET}"
    assert received["/undo"]["Authorization"] == f"Bearer {SECRET}"
    kept = json.dumps([[r.input, r.output, r.error] for r in StepRecord.objects.filter(run=run)])
    assert SECRET not in kept
    assert "[secret:STRIPE_KEY]" in kept


def test_the_dry_run_shows_placeholders(stripe_key, http_server):
    step = call_api(http_server.url, headers={"Authorization": "Bearer {{ secrets.STRIPE_KEY }}"})
    result = dry_run(definition([step]), {})
    assert result.error == ""
    assert result.steps[0].input["headers"]["Authorization"] == "Bearer [secret:STRIPE_KEY]"
    assert SECRET not in json.dumps(result.as_dict())
    assert http_server.requests == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("steps", "extra", "path", "says"),
    [
        ([call_api("http://x.test/{{ secrets.lower }}")], {}, "steps[0].input.url", "upper-case"),
        ([call_api("http://x.test/{{ secrets.A.B }}")], {}, "steps[0].input.url", "upper-case"),
        (
            [call_api("http://x.test/") | {"if": "secrets.TOKEN == 'x'"}],
            {},
            "steps[0].if",
            "conditions",
        ),
        (
            [call_api("http://x.test/")],
            {"trigger": {"event": "e", "filter": "secrets.T != ''"}},
            "trigger.filter",
            "conditions",
        ),
        ([call_api("http://x.test/")], {"output": "{{ secrets.T }}"}, "output", "action's input"),
        (
            [{"id": "ok", "approval": {"title": "{{ secrets.T }}", "assignees": ["user:root"]}}],
            {},
            "steps[0].approval.title",
            "action's input",
        ),
    ],
)
def test_secrets_are_checked_when_saved(users, steps, extra, path, says):
    errors = validate(definition(steps, **extra))
    assert [error.path for error in errors] == [path], errors
    assert says in errors[0].message


@pytest.mark.django_db
def test_a_well_formed_secret_saves_without_the_variable_being_set(monkeypatch):
    monkeypatch.delenv("AUTOMATION_SECRET_NOT_YET_SET", raising=False)
    step = call_api("https://api.test/", headers={"X-Api-Key": "{{ secrets.NOT_YET_SET }}"})
    assert validate(definition([step])) == []


def test_userinfo_in_the_url_is_hidden_in_errors_and_the_journal(
    workflow_harness, http_server, allow_local
):
    url = http_server.url.replace("http://", "http://ada:pa55word@") + "/status/404"
    workflow_definition_save(definition=definition([call_api(url, retry={"max_attempts": 1})]))
    run = workflow_harness.start("wf", {})
    record = journal(run)["charge"]
    assert "answered 404" in record.error["message"]
    assert "pa55word" not in json.dumps([record.input, record.error])
    assert "[redacted]@127.0.0.1" in record.input["url"]
