"""Declarative waits for several events and for signals: what a definition may say, what it is
refused for (with the path of each problem), and what a dry run shows."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from automation.definitions.dryrun import dry_run
from automation.definitions.validation import validate

pytestmark = pytest.mark.django_db

DELIVERY = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "examples/declarative/order-delivery.yaml").read_text()
)


def _problems(definition):
    return [str(error) for error in validate(definition)]


def _with(step):
    definition = copy.deepcopy(DELIVERY)
    definition["steps"] = [step]
    return definition


def test_the_example_is_valid():
    assert _problems(DELIVERY) == []


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        ({"id": "w", "wait_for_event": {"event": "a", "any": [{"event": "b"}]}},
         "steps[0].wait_for_event: give exactly one of event (one event), any or all"),
        ({"id": "w", "wait_for_event": {"timeout": "1h"}},
         "steps[0].wait_for_event: give exactly one of event"),
        ({"id": "w", "wait_for_event": {"any": [{"event": "b"}], "match": {"k": 1}}},
         "steps[0].wait_for_event.match: with any, give match in each event of it"),
        ({"id": "w", "wait_for_event": {"all": [{"event": "b", "condition": "event.data.("}]}},
         "steps[0].wait_for_event.all[0].condition"),
        ({"id": "w", "wait_for_event": {"all": [{"event": "b"}], "timeout": "soon"}},
         "steps[0].wait_for_event.timeout"),
        ({"id": "w", "wait_for_event": {"any": []}}, "steps[0].wait_for_event.any"),
        ({"id": "w", "wait_for_event": {"any": [{"type": "b"}]}}, "steps[0].wait_for_event.any[0]"),
        ({"id": "w", "wait_for_signal": {"name": "has space"}}, "steps[0].wait_for_signal.name"),
        ({"id": "w", "wait_for_signal": {}}, "steps[0].wait_for_signal"),
        ({"id": "w", "wait_for_signal": {"name": "go", "timeout": "x"}},
         "steps[0].wait_for_signal.timeout"),
        ({"id": "w", "wait_for_signal": {"name": "go"}, "retry": {"max_attempts": 2}},
         "steps[0].retry: a wait_for_signal step has nothing to retry"),
        ({"id": "w", "wait_for_signal": {"name": "go", "timeout": "1h"}, "timeout": "1h"},
         "steps[0].timeout: give the timeout once"),
    ],
)  # fmt: skip
def test_bad_waits_are_refused_naming_the_path(step, problem):
    problems = _problems(_with(step))
    assert any(p.startswith(problem) for p in problems), problems


def test_a_dry_run_shows_the_waits_and_the_signal():
    result = dry_run(DELIVERY, {"order": "o-1"})
    steps = {step.id: step for step in result.steps}
    assert steps["ready"].output["arrived"] == [0, 1]
    assert steps["stopped"].output["arrived"] == [0]  # any: the first entry, by default
    assert "handed_over" not in steps or steps["handed_over"].status == "skipped"


def test_a_dry_run_takes_fakes_for_both():
    fakes = {
        "stopped": {"mode": "any", "arrived": [1], "events": [None, {}], "timed_out": False},
        "handed_over": {"signal": "delivered", "data": {}, "sent_by": "ada", "timed_out": False},
    }
    result = dry_run(DELIVERY, {"order": "o-1"}, fakes=fakes)
    steps = {step.id: step for step in result.steps}
    assert steps["handed_over"].output["sent_by"] == "ada"
    assert steps["done"].status == "ran"
