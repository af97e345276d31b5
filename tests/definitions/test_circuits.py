"""A definition's ``circuit:`` on an action step: validated with errors by path, and at run
time an http.request circuit per host, against a real local server that fails on purpose."""

from __future__ import annotations

import copy

import pytest

from automation.commands import workflow_definition_save
from automation.definitions.validation import validate
from automation.models import Circuit, StepRecord

pytestmark = pytest.mark.django_db

BASE = {
    "name": "wf",
    "trigger": {"event": "test.go"},
    "steps": [{"id": "hello", "action": "log", "input": {"message": "hi"}}],
}


@pytest.fixture
def allow_local(settings):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]


def errors_of(step_changes: dict) -> dict[str, str]:
    definition = copy.deepcopy(BASE)
    definition["steps"][0].update(step_changes)
    return {error.path: error.message for error in validate(definition)}


def test_a_circuit_on_an_action_step_is_valid():
    assert errors_of({"circuit": {"failures": 5, "within": "1m", "open_for": "30s"}}) == {}
    assert errors_of({"circuit": True}) == {}
    assert errors_of({"circuit": False}) == {}


@pytest.mark.parametrize(
    ("circuit", "path", "message"),
    [
        ({"failures": 0}, "steps[0].circuit.failures", "minimum"),
        ({"within": "soon"}, "steps[0].circuit.within", "not a duration"),
        ({"open_for": 0}, "steps[0].circuit.open_for", "longer than zero"),
        ({"after": 3}, "steps[0].circuit", "unknown key 'after'"),
        ("often", "steps[0].circuit", "should be true or false"),
    ],
)
def test_a_bad_circuit_is_an_error_naming_its_path(circuit, path, message):
    errors = errors_of({"circuit": circuit})
    assert path in errors, errors
    assert message in errors[path]


def test_a_circuit_on_a_step_that_calls_no_action_is_an_error():
    definition = copy.deepcopy(BASE)
    definition["steps"].append({"id": "nap", "sleep": "1s", "circuit": True})
    errors = {error.path: error.message for error in validate(definition)}
    assert "calls no action" in errors["steps[1].circuit"]


def test_an_http_request_circuit_opens_per_host_and_no_call_passes_it(
    workflow_harness, http_server, allow_local
):
    workflow_definition_save(
        definition={
            "name": "wf",
            "trigger": {"event": "test.go"},
            "steps": [
                {
                    "id": "call",
                    "action": "http.request",
                    "input": {"url": "{{ trigger.data.url }}"},
                    "retry": {"max_attempts": 20, "initial": "1s", "backoff": 1, "jitter": 0},
                    "circuit": {"failures": 3, "within": "1m", "open_for": "30s"},
                }
            ],
        }
    )
    failing = f"{http_server.url}/status/503"
    run = workflow_harness.start("wf", {"url": failing})
    for _ in range(5):
        workflow_harness.advance_time("1s")
    circuit = Circuit.objects.get(key="127.0.0.1")
    assert circuit.state == "open"
    assert len(http_server.requests) == 3  # the circuit opened: no fourth call
    record = StepRecord.objects.get(run=run, step_id="call")
    assert (record.status, record.attempt) == ("waiting", 3)
    run.refresh_from_db()
    assert run.waiting_for.startswith("waiting: circuit open for 127.0.0.1 until ")

    # Another run to the same host waits too, without calling.
    other = workflow_harness.start("wf", {"url": f"{http_server.url}/ok"})
    assert len(http_server.requests) == 3
    assert StepRecord.objects.get(run=other, step_id="call").attempt == 0

    # After the cool-down one probe goes; it succeeds, and the circuit closes for both runs.
    workflow_harness.advance_time("30s")
    workflow_harness.run_until_idle()
    assert workflow_harness.result(other)["call"]["status"] == 200
    paths = [request["path"] for request in http_server.requests]
    assert paths.count("/ok") == 1
    # Every call was an attempt of one of the runs: waits for the circuit called nothing.
    assert workflow_harness.refresh(run).status == "failed"
    assert len(paths) == StepRecord.objects.get(run=run, step_id="call").attempt + 1
