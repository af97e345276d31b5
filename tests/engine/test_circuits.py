"""Circuit breakers in the engine: failures within a window open a circuit, a step that meets
an open circuit waits (no call, no attempt counted), one probe after the cool-down closes it or
opens it again, and the circuit is shared by runs (the row, not a process's memory)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from automation import workflow
from automation.engine import circuits, clock, registry
from automation.engine.errors import WorkflowError
from automation.models import Circuit, Run, StepRecord, Timer

pytestmark = pytest.mark.django_db

SERVICE = {"up": False, "hits": 0}


@registry.action("circuit-test.call", circuit={"failures": 2, "within": "1m", "open_for": "30s"})
def call_service(input, ctx):
    SERVICE["hits"] += 1
    if not SERVICE["up"]:
        raise ConnectionError("the service is down")
    return {"ok": True}


@registry.action("circuit-test.plain")
def plain_call(input, ctx):
    SERVICE["hits"] += 1
    if not SERVICE["up"]:
        raise ConnectionError("the service is down")
    return {"ok": True}


@workflow("circuit-test", retry={"max_attempts": 10, "initial": 1, "backoff": 1, "jitter": 0})
def circuit_test(ctx, event):
    return ctx.action("call", "circuit-test.call", {})


@workflow("circuit-test-step", retry={"max_attempts": 10, "initial": 1, "backoff": 1, "jitter": 0})
def circuit_test_step(ctx, event):
    return ctx.action("call", "circuit-test.plain", {}, circuit={"failures": 1, "open_for": "1m"})


@workflow("circuit-test-off", retry={"max_attempts": 4, "initial": 1, "backoff": 1, "jitter": 0})
def circuit_test_off(ctx, event):
    return ctx.action("call", "circuit-test.plain", {})


@pytest.fixture(autouse=True)
def _service():
    SERVICE.update(up=False, hits=0)
    registry.sync_code_workflows(force=True)


def _step(run):
    return StepRecord.objects.get(run=run, step_id="call")


def test_failures_open_the_circuit_and_a_waiting_step_does_not_call(workflow_harness, admin_client):
    run = workflow_harness.start("circuit-test", {})
    workflow_harness.advance_time("1s")  # the retry: the second failure opens the circuit
    circuit = Circuit.objects.get(key="circuit-test.call")
    assert (circuit.state, circuit.failures, SERVICE["hits"]) == ("open", 2, 2)
    assert circuit.retry_at == circuit.opened_at + timedelta(seconds=30)

    workflow_harness.advance_time("1s")  # the next retry meets the open circuit
    run = workflow_harness.refresh(run)
    record = _step(run)
    assert SERVICE["hits"] == 2
    assert (run.status, record.status, record.attempt) == ("waiting", "waiting", 2)
    assert record.next_attempt_at == circuit.retry_at
    assert run.waiting_for.startswith("waiting: circuit open for circuit-test.call until ")
    assert Timer.objects.filter(run=run, due_at=circuit.retry_at, fired_at=None).exists()
    page = admin_client.get(f"/app/runs/{run.id}/").content.decode()
    assert "Waiting: circuit open for circuit-test.call until " in page

    # A second run meets the same open circuit: no call, no attempt.
    other = workflow_harness.start("circuit-test", {})
    assert SERVICE["hits"] == 2
    assert _step(other).attempt == 0

    SERVICE["up"] = True
    workflow_harness.run_until_idle()
    assert workflow_harness.result(run) == {"ok": True}
    assert workflow_harness.result(other) == {"ok": True}
    assert _step(run).attempt == 3
    assert _step(other).attempt == 1
    assert SERVICE["hits"] == 4  # one probe, then the circuit was closed for the other run
    circuit.refresh_from_db()
    assert (circuit.state, circuit.failures, circuit.retry_at) == ("closed", 0, None)


def test_a_failed_probe_opens_the_circuit_again(workflow_harness):
    run = workflow_harness.start("circuit-test", {})
    workflow_harness.advance_time("1s")
    opened = Circuit.objects.get(key="circuit-test.call")
    clock.advance(opened.retry_at - clock.now())
    workflow_harness.tick()  # the probe: the service is still down
    circuit = Circuit.objects.get(key="circuit-test.call")
    assert circuit.state == "open"
    assert circuit.retry_at > opened.retry_at
    assert SERVICE["hits"] == 3
    assert workflow_harness.refresh(run).status == "waiting"


def test_a_half_open_circuit_lets_one_probe_through(workflow_harness):
    Circuit.objects.create(
        key="circuit-test.call", state="open", retry_at=clock.now() - timedelta(seconds=1)
    )
    breaker = circuits.breaker_for("circuit-test.call", True, None, None)
    first = circuits.enter(breaker)
    second = circuits.enter(breaker)
    assert first.probe
    assert first.blocked_until is None
    assert not second.probe
    assert second.blocked_until is not None
    assert Circuit.objects.get(key="circuit-test.call").state == "half_open"


def test_failures_outside_the_window_do_not_add_up(workflow_harness):
    breaker = circuits.breaker_for(
        "circuit-test.call", {"failures": 2, "within": "10s"}, None, None
    )
    circuits.enter(breaker).failed()
    clock.advance(timedelta(seconds=11))
    circuits.enter(breaker).failed()
    circuit = Circuit.objects.get(key="circuit-test.call")
    assert (circuit.state, circuit.failures) == ("closed", 1)
    circuits.enter(breaker).failed()
    assert Circuit.objects.get(key="circuit-test.call").state == "open"


def test_the_step_circuit_wins_over_the_action(workflow_harness):
    run = workflow_harness.start("circuit-test-step", {})
    assert Circuit.objects.get(key="circuit-test.plain").state == "open"
    workflow_harness.advance_time("1s")
    assert SERVICE["hits"] == 1
    assert _step(workflow_harness.refresh(run)).next_attempt_at is not None


def test_no_circuit_unless_asked_and_no_query_for_it(workflow_harness):
    with CaptureQueriesContext(connection) as queries:
        run = workflow_harness.start("circuit-test-off", {})
        workflow_harness.run_until_idle()
    assert not [q for q in queries.captured_queries if "automation_circuit" in q["sql"]]
    assert workflow_harness.refresh(run).status == "failed"
    assert SERVICE["hits"] == 4
    assert not Circuit.objects.exists()


def test_a_closed_circuit_costs_one_read(workflow_harness):
    SERVICE["up"] = True
    with CaptureQueriesContext(connection) as queries:
        workflow_harness.start("circuit-test", {})
    circuit_queries = [q for q in queries.captured_queries if "automation_circuit" in q["sql"]]
    assert len(circuit_queries) == 1
    assert circuit_queries[0]["sql"].lstrip().upper().startswith("SELECT")


def test_the_setting_lists_actions_with_a_circuit(workflow_harness, settings):
    settings.AUTOMATION_CIRCUIT = {"failures": 3, "actions": ["circuit-test.plain"]}
    breaker = circuits.breaker_for("circuit-test.plain", None, None, None)
    assert breaker.policy.failures == 3
    assert breaker.policy.open_for == timedelta(seconds=30)
    assert circuits.breaker_for("email.send", None, None, None) is None
    assert circuits.breaker_for("circuit-test.plain", False, None, None) is None


def test_http_request_circuits_are_per_host(workflow_harness):
    spec = registry.get_action("http.request")
    assert spec.circuit_key({"url": "https://api.example.com/v1/x"}) == "api.example.com"
    slack = registry.get_action("slack.post")
    assert slack.circuit_key({"webhook_url": "https://hooks.slack.com/x", "text": "hi"}) == (
        "hooks.slack.com"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"failures": 0}, "at least 1"),
        ({"failures": True}, "at least 1"),
        ({"within": "soon"}, "within"),
        ({"open_for": 0}, "longer than zero"),
        ({"after": 3}, "unknown circuit field 'after'"),
    ],
)
def test_bad_circuits_are_refused_naming_the_field(value, message):
    with pytest.raises(WorkflowError, match=message):
        circuits.breaker_for("circuit-test.call", value, None, None)


def test_close_now_closes_an_open_circuit(workflow_harness):
    Circuit.objects.create(key="api.example.com", state="open", failures=5, retry_at=clock.now())
    assert circuits.close("api.example.com")
    circuit = Circuit.objects.get(key="api.example.com")
    assert (circuit.state, circuit.failures, circuit.retry_at) == ("closed", 0, None)
    assert not circuits.close("nowhere.example.com")
    assert Run.objects.count() == 0


def test_closing_a_circuit_wakes_the_steps_waiting_for_it(workflow_harness):
    run = workflow_harness.start("circuit-test", {})
    workflow_harness.advance_time("1s")
    workflow_harness.advance_time("1s")  # meets the open circuit: waits 30s
    record = _step(run)
    assert record.error["type"] == "CircuitOpen"
    assert record.error["circuit"] == "circuit-test.call"
    SERVICE["up"] = True
    assert circuits.close("circuit-test.call")
    workflow_harness.tick()  # no time passes: the step is due at once
    assert workflow_harness.result(run) == {"ok": True}
    record = _step(run)
    assert (record.attempt, record.error) == (3, None)
    assert SERVICE["hits"] == 3
