"""The built-in actions against real things: a local HTTP server, Django's mail outbox, the
event log and the database. The SSRF guard's own tests are in tests/security/test_ssrf.py."""

from __future__ import annotations

import json
import logging
import re
import threading
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from rest_framework.test import APIClient

from automation import NonRetryableError, RetryAfter
from automation.commands import workflow_definition_save
from automation.engine import registry
from automation.engine.retry import RetryPolicy
from automation.models import Run, RunStatus
from events.models import Event

CTX = SimpleNamespace(
    run_id="run-1",
    correlation_id="",
    current_step_id="step",
    idempotency_key=lambda step_id: f"run-1:{step_id}",
)


def call(name: str, input: dict[str, Any]) -> Any:
    return registry.get_action(name).invoke(input, CTX)


def retryable(exc: BaseException) -> bool:
    return RetryPolicy().is_retryable(exc)


@pytest.fixture
def allow_local(settings):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]


# --- http.request -------------------------------------------------------------------------


def test_http_request_returns_status_headers_and_parsed_body(http_server, allow_local):
    out = call(
        "http.request",
        {"method": "POST", "url": f"{http_server.url}/users", "json": {"email": "a@x.com"}},
    )
    assert out["status"] == 200
    assert out["body"]["userId"] == 42
    assert json.loads(out["body"]["received"]) == {"email": "a@x.com"}
    assert out["headers"]["Content-Type"] == "application/json"
    assert http_server.last()["headers"]["Idempotency-Key"] == "run-1:step"
    assert call("http.request", {"url": f"{http_server.url}/text"})["body"] == "plain words"


UNSTORABLE_ANSWERS = {
    "NaN": ('{"ok": [1, NaN]}', "body.ok[1]"),
    "lone surrogate": ('{"ok": {"name": "\\ud800"}}', "body.ok.name"),
    "1e999": ('{"ok": 1e999}', "body.ok"),
}


@pytest.mark.parametrize(("answer", "path"), UNSTORABLE_ANSWERS.values(), ids=UNSTORABLE_ANSWERS)
def test_an_unstorable_answer_fails_the_step_for_good_naming_its_path(
    http_server, allow_local, workflow_harness, users, answer, path
):
    """A remote server (the URL may come from event data) answering JSON that no database can
    store fails the step, not retryable, naming the value; the run stays readable."""
    workflow_definition_save(
        definition={
            "name": "fetch",
            "trigger": {"event": "fetch.asked"},
            "steps": [
                {"id": "get", "action": "http.request", "input": {"url": "{{ trigger.data.url }}"}}
            ],
        }
    )
    url = f"{http_server.url}/raw?{urlencode({'body': answer})}"
    workflow_harness.emit("fetch.asked", {"url": url})
    run = Run.objects.get(workflow__name="fetch")
    assert run.status == RunStatus.FAILED
    error = run.steps.get(step_id="get").error
    assert error["type"] == "NotJSONError"
    assert error["retryable"] is False
    assert path in error["message"], error
    api = APIClient()
    api.force_authenticate(users["admin"])
    assert api.get(f"/api/runs/{run.id}/").status_code == 200


def test_5xx_is_retryable_4xx_is_not_unless_configured(http_server, allow_local):
    with pytest.raises(Exception, match="answered 503") as server_error:
        call("http.request", {"url": f"{http_server.url}/status/503"})
    assert retryable(server_error.value)
    with pytest.raises(NonRetryableError, match="answered 404"):
        call("http.request", {"url": f"{http_server.url}/status/404"})
    with pytest.raises(Exception, match="answered 409") as conflict:
        call("http.request", {"url": f"{http_server.url}/status/409", "retry_on": [409]})
    assert retryable(conflict.value)
    out = call("http.request", {"url": f"{http_server.url}/status/404", "expected_status": [404]})
    assert out["status"] == 404


def test_timeouts_and_connection_errors_are_retryable(http_server, allow_local):
    with pytest.raises(Exception, match="timed out") as slow:
        call("http.request", {"url": f"{http_server.url}/slow?seconds=2", "timeout": 0.2})
    assert retryable(slow.value)
    from tests.processes import free_port

    with pytest.raises(Exception, match=r"refused|Connection") as refused:
        call("http.request", {"url": f"http://127.0.0.1:{free_port()}/"})
    assert retryable(refused.value)


def test_a_response_over_the_size_cap_fails_for_good(http_server, allow_local, settings):
    settings.AUTOMATION_HTTP_MAX_RESPONSE_BYTES = 10_000
    with pytest.raises(NonRetryableError, match="larger than 10000 bytes"):
        call("http.request", {"url": f"{http_server.url}/big?size=50000"})


def test_input_that_breaks_the_schema_is_refused_before_any_request(http_server):
    with pytest.raises(NonRetryableError, match=r"input.method: 'FETCH' is not one of"):
        call("http.request", {"url": http_server.url, "method": "FETCH"})
    assert http_server.requests == []


# --- email, slack, log --------------------------------------------------------------------


def test_email_send_uses_django_email():
    out = call(
        "email.send",
        {"to": "ada@example.com", "subject": "Welcome", "body": "Hi", "html": "<b>Hi</b>"},
    )
    assert out == {"sent": 1, "to": ["ada@example.com"]}
    assert mail.outbox[0].subject == "Welcome"
    assert mail.outbox[0].alternatives[0][1] == "text/html"


def test_slack_post_sends_to_the_incoming_webhook(http_server, allow_local, settings):
    settings.AUTOMATION_SLACK_WEBHOOK_URL = f"{http_server.url}/hooks/T1"
    assert call("slack.post", {"text": "deployed"})["status"] == 200
    assert json.loads(http_server.last()["body"]) == {"text": "deployed"}
    assert http_server.last()["path"] == "/hooks/T1"


def test_log_writes_to_the_application_log(caplog):
    with caplog.at_level(logging.INFO, logger="automation.workflows"):
        out = call("log", {"message": "hello", "level": "warning", "data": {"a": 1}})
    assert out["logged"] is True
    assert "hello" in caplog.text


# --- records ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_record_create_and_update_only_for_allowed_models(settings):
    settings.AUTOMATION_RECORD_MODELS = ["auth.Group"]
    created = call("record.create", {"model": "auth.Group", "fields": {"name": "vips"}})
    assert Group.objects.get(pk=created["pk"]).name == "vips"
    call("record.update", {"model": "auth.Group", "pk": created["pk"], "fields": {"name": "v2"}})
    assert Group.objects.get(pk=created["pk"]).name == "v2"
    with pytest.raises(NonRetryableError, match="not in AUTOMATION_RECORD_MODELS"):
        call("record.create", {"model": "auth.User", "fields": {"username": "evil"}})
    with pytest.raises(NonRetryableError, match="has no field 'nope'"):
        call("record.create", {"model": "auth.Group", "fields": {"nope": 1}})
    with pytest.raises(NonRetryableError, match=r"no auth\.Group with pk"):
        call("record.update", {"model": "auth.Group", "pk": 999999, "fields": {"name": "x"}})


# --- event.emit ---------------------------------------------------------------------------


def test_event_emit_emits_once_and_starts_the_next_workflow(workflow_harness):
    workflow_definition_save(
        definition={
            "name": "first",
            "trigger": {"event": "chain.start"},
            "steps": [
                {
                    "id": "tell",
                    "action": "event.emit",
                    "input": {"type": "chain.next", "data": {"n": "{{ trigger.data.n }}"}},
                }
            ],
        }
    )
    workflow_definition_save(
        definition={
            "name": "second",
            "trigger": {"event": "chain.next"},
            "steps": [
                {"id": "got", "action": "log", "input": {"message": "n={{ trigger.data.n }}"}}
            ],
        }
    )
    workflow_harness.emit("chain.start", {"n": 3})
    second = Run.objects.get(workflow__name="second")
    assert workflow_harness.result(second)["got"]["message"] == "n=3"
    emitted = Event.objects.get(type="chain.next")
    first = Run.objects.get(workflow__name="first")
    assert emitted.causation_id == str(first.id)
    # The step's effect happens once even if it runs again (the same idempotency key).
    ctx = SimpleNamespace(
        run_id=str(first.id),
        correlation_id="",
        current_step_id="tell",
        idempotency_key=lambda s: f"{first.id}:{s}",
    )
    again = registry.get_action("event.emit").invoke({"type": "chain.next", "data": {}}, ctx)
    assert again["duplicate"] is True
    assert Event.objects.filter(type="chain.next").count() == 1


# --- ai.complete --------------------------------------------------------------------------


@pytest.fixture
def ai(settings, http_server):
    settings.AUTOMATION_AI_BASE_URL = f"{http_server.url}/v1"
    settings.AUTOMATION_AI_API_KEY = "sk-test"
    settings.AUTOMATION_AI_MODEL = "fake-1"
    return http_server


SENTIMENT = {
    "type": "object",
    "required": ["sentiment", "score"],
    "additionalProperties": False,
    "properties": {"sentiment": {"enum": ["positive", "negative"]}, "score": {"type": "number"}},
}


def test_ai_complete_asks_for_structured_output_and_checks_it(ai):
    out = call(
        "ai.complete", {"prompt": "Great product!", "system": "Classify.", "schema": SENTIMENT}
    )
    assert out["json"] == {"sentiment": "positive", "score": 0.9}
    assert out["model"] == "fake-1"
    sent = json.loads(ai.last()["body"])
    assert sent["response_format"]["json_schema"]["schema"] == SENTIMENT
    assert sent["messages"][-1] == {"role": "user", "content": "Great product!"}
    assert ai.last()["headers"]["Authorization"] == "Bearer sk-test"


def test_ai_output_that_breaks_the_schema_is_a_retryable_failure(ai):
    ai.ai_answer = json.dumps({"sentiment": "meh"})
    with pytest.raises(Exception, match="does not match the schema") as exc:
        call("ai.complete", {"prompt": "x", "schema": SENTIMENT})
    assert retryable(exc.value)
    ai.ai_answer = "not json"
    with pytest.raises(Exception, match="not JSON"):
        call("ai.complete", {"prompt": "x", "schema": SENTIMENT})
    assert call("ai.complete", {"prompt": "x"})["text"] == "not json"


def test_ai_content_given_as_a_list_of_parts_is_joined(ai):
    ai.ai_answer = [
        {"type": "text", "text": '{"sentiment": '},
        {"type": "text", "text": '"negative", "score": 0.1}'},
    ]
    out = call("ai.complete", {"prompt": "x", "schema": SENTIMENT})
    assert out["text"] == '{"sentiment": "negative", "score": 0.1}'
    assert out["json"] == {"sentiment": "negative", "score": 0.1}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ([{"type": "refusal", "refusal": "I can't help with that"}], "refused: I can't help"),
        ([{"type": "image_url", "image_url": {"url": "x"}}], "no text part (image_url)"),
        ({"text": "a dict"}, "content is dict"),
        (42, "content is int"),
    ],
)
def test_ai_content_of_another_shape_fails_saying_so(ai, content, says):
    ai.ai_answer = content
    with pytest.raises(Exception, match=re.escape(says)):
        call("ai.complete", {"prompt": "x"})


def test_ai_complete_without_configuration_fails_for_good(settings):
    settings.AUTOMATION_AI_BASE_URL = ""
    with pytest.raises(NonRetryableError, match="AI_BASE_URL"):
        call("ai.complete", {"prompt": "x"})


def test_code_actions_are_in_the_same_registry():
    names = {spec.name for spec in registry.actions()}
    assert {
        "http.request",
        "email.send",
        "slack.post",
        "event.emit",
        "record.create",
        "record.update",
        "log",
        "ai.complete",
        "example.create-user",
    } <= names
    assert RetryAfter  # re-exported for actions that honour rate limits


def test_a_dns_lookup_that_hangs_is_given_up_at_the_request_timeout(monkeypatch, allow_local):
    """The resolver has no timeout of its own; a hanging one stands in for a dead DNS server."""
    import socket

    release = threading.Event()
    real = socket.getaddrinfo

    def hanging(host, *args, **kwargs):
        if host == "hangs.test":
            release.wait(30)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    try:
        with pytest.raises(Exception, match=r"resolving 'hangs\.test' took longer") as exc:
            call("http.request", {"url": "http://hangs.test/", "timeout": 0.3})
        assert retryable(exc.value)
    finally:
        release.set()
