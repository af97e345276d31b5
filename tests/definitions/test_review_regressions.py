"""Regressions found reviewing declarative workflows: each test failed before its fix."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
import requests
from django.core.management import CommandError, call_command

from automation import NonRetryableError
from automation.actions import safehttp
from automation.commands import workflow_definition_save
from automation.definitions.validation import validate
from automation.engine import registry
from automation.models import Run, StepRecord, WorkflowVersion
from tests.definitions.conftest import FakeServer
from tests.definitions.test_actions import CTX

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


# --- http.request ---------------------------------------------------------------------------


@pytest.fixture
def other_server():
    server = FakeServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


SECRET_HEADERS = {"Authorization": "Bearer s3cret", "Cookie": "session=s3cret"}


def test_credentials_are_not_sent_on_to_another_host_by_a_redirect(
    http_server, other_server, settings
):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]
    url = f"{http_server.url}/redirect?to={other_server.url}/landed"
    out = registry.get_action("http.request").invoke({"url": url, "headers": SECRET_HEADERS}, CTX)
    assert out["body"]["path"] == "/landed"
    assert http_server.last()["headers"]["Authorization"] == "Bearer s3cret"
    received = other_server.last()["headers"]
    assert "Authorization" not in received
    assert "Cookie" not in received


def test_credentials_follow_a_redirect_on_the_same_host(http_server, settings):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]
    url = f"{http_server.url}/redirect?to=/landed"
    registry.get_action("http.request").invoke({"url": url, "headers": SECRET_HEADERS}, CTX)
    assert http_server.last()["headers"]["Authorization"] == "Bearer s3cret"


@pytest.mark.parametrize("after", ["nan", "inf", "-5"])
def test_a_nonsense_retry_after_is_an_ordinary_retryable_429(
    workflow_harness, http_server, settings, after
):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]
    url = f"{http_server.url}/ratelimit?after={after}"
    save(
        "wf",
        [
            {
                "id": "call",
                "action": "http.request",
                "input": {"url": url},
                "retry": {"max_attempts": 2, "initial": "1s", "max": "1s"},
            }
        ],
    )
    run = workflow_harness.start("wf")
    record = StepRecord.objects.get(run=run, step_id="call")
    assert record.status == "waiting"
    assert 0 < (record.next_attempt_at - record.finished_at).total_seconds() <= 2
    workflow_harness.run_until_idle()
    run.refresh_from_db()
    assert run.status == "failed"
    assert "answered 429" in run.error["message"]
    assert len(http_server.requests) == 2


@pytest.mark.parametrize("after", ["99999999", "1e30"])
def test_a_long_retry_after_is_capped_at_a_day(workflow_harness, http_server, settings, after):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]
    save("wf", [{"id": "call", "action": "http.request",
                 "input": {"url": f"{http_server.url}/ratelimit?after={after}"}}])  # fmt: skip
    run = workflow_harness.start("wf")
    record = StepRecord.objects.get(run=run, step_id="call")
    assert record.status == "waiting"
    assert (record.next_attempt_at - record.finished_at).total_seconds() == 86400


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


# --- SSRF: IPv6 forms that carry an IPv4 address ----------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (reaches it where DNS64/NAT64 runs)
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "fec0::1",  # site-local
    ],
)
def test_ipv6_forms_of_internal_addresses_are_refused(address):
    with pytest.raises(safehttp.BlockedDestination):
        safehttp.resolve_checked(address, 80, safehttp.Allowlist.parse([]))


def test_nat64_of_a_public_address_is_allowed():
    assert safehttp.resolve_checked("64:ff9b::808:808", 80, safehttp.Allowlist.parse([])) == (
        "[64:ff9b::808:808]"
    )


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


# --- time cap -------------------------------------------------------------------------------


def test_a_body_trickled_within_each_read_timeout_still_times_out(http_server, settings):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]
    url = f"{http_server.url}/trickle?bytes=30&every=0.2"
    with pytest.raises(requests.Timeout, match="longer than 1s"):
        registry.get_action("http.request").invoke({"url": url, "timeout": 1}, CTX)


@pytest.mark.parametrize("path", ["gzip", "chunked"])
def test_the_size_cap_holds_for_compressed_and_chunked_bodies(http_server, settings, path):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]
    settings.AUTOMATION_HTTP_MAX_RESPONSE_BYTES = 1_000_000
    action = registry.get_action("http.request")
    assert len(action.invoke({"url": f"{http_server.url}/{path}?size=900000"}, CTX)["body"]) == (
        900_000
    )
    with pytest.raises(NonRetryableError, match="larger than 1000000 bytes"):
        action.invoke({"url": f"{http_server.url}/{path}?size=50000000"}, CTX)


def test_proxy_variables_of_the_environment_are_not_used(
    http_server, other_server, settings, monkeypatch
):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, other_server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    registry.get_action("http.request").invoke({"url": f"{http_server.url}/direct"}, CTX)
    assert http_server.last()["path"] == "/direct"
    assert other_server.requests == []
