"""Structured logs: every line written while an event is routed, a run advances or a step runs
carries their ids (JSON fields with LOG_FORMAT=json)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest
from pythonjsonlogger.json import JsonFormatter

from automation.lib import logcontext
from automation.models import Run
from tests.processes import ROOT, project_env

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines():
    """Every log line of the test, formatted as the LOG_FORMAT=json handler does."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logcontext.ContextFilter())
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(previous_level)


def test_a_steps_log_line_names_the_event_run_step_and_correlation(workflow_harness, json_lines):
    event = workflow_harness.emit("test.logging", {}, correlation_id="order-7")
    run = Run.objects.get(trigger_event=event)
    line = next(line for line in json_lines() if line["message"] == "charging the card")
    assert line["event_id"] == str(event.id)
    assert line["run_id"] == str(run.id)
    assert line["step_id"] == "charge"
    assert line["correlation_id"] == "order-7"


def test_a_run_failure_line_names_the_run_but_no_step(workflow_harness, json_lines):
    run = workflow_harness.start("test-non-retryable", {})
    workflow_harness.run_until_idle()
    line = next(line for line in json_lines() if "failed" in line["message"])
    assert line["run_id"] == str(run.id)
    assert "step_id" not in line


def test_lines_outside_any_work_carry_no_ids(json_lines):
    with logcontext.scope(run_id="r-1", step_id="s"):
        logging.getLogger("test").warning("inside")
    logging.getLogger("test").warning("after")
    inside, after = json_lines()
    assert (inside["run_id"], inside["step_id"]) == ("r-1", "s")
    assert "run_id" not in after


def test_log_format_json_makes_every_line_a_json_object():
    code = (
        "import logging; from automation.lib import logcontext\n"
        "with logcontext.scope(event_id='e-1', correlation_id='c-1'):\n"
        "    logging.getLogger('automation.test').warning('routed')\n"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=ROOT,
        env=project_env(LOG_FORMAT="json"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["message"] == "routed"
    assert line["level"] == "WARNING"
    assert line["logger"] == "automation.test"
    assert (line["event_id"], line["correlation_id"]) == ("e-1", "c-1")
    assert line["time"].endswith("+00:00")
