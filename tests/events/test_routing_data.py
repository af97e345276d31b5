"""Routing reads an event's data only when a trigger or a waiting step looks into it.

An unauthenticated webhook may post a body of up to WEBHOOK_MAX_BODY_BYTES; routing an event
that no workflow wants (or whose only filter is refused) must not parse it, on the worker
threads the embedded server shares with its web requests. What does want the data still gets
all of it: a run's input, a filter, a waiting step's match.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from automation.models import Run, Workflow, WorkflowVersion
from events.models import Event
from events.routing import event_route
from events.services import emit

pytestmark = pytest.mark.django_db

LARGE = {"a": list(range(30_000)), "m": -1}
QUADRATIC = "trigger.data.a.exists(x, x == trigger.data.m)"  # refused: cost grows with n²


def subscribe(name: str, pattern: str, condition: str = "") -> Workflow:
    workflow = Workflow.objects.create(name=name, kind=Workflow.Kind.DECLARATIVE)
    definition = {"name": name, "trigger": {"event": pattern}, "steps": []}
    WorkflowVersion.objects.create(
        workflow=workflow,
        number=1,
        checksum=name,
        definition=definition,  # a row stored as is (a filter refused today was saved before)
        trigger_event=pattern,
        trigger_filter=condition,
    )
    return workflow


def route_reading(event: Event) -> list[str]:
    """Route ``event``; the SQL of the statements that read its ``data`` column."""
    column = connection.ops.quote_name("data")
    with CaptureQueriesContext(connection) as queries:
        event_route(event_id=event.id)
    return [q["sql"] for q in queries if column in q["sql"] and "events_event" in q["sql"]]


def test_an_event_no_workflow_wants_is_routed_without_reading_its_data():
    subscribe("orders", "order.created")
    event = emit("flood.posted", LARGE)
    assert route_reading(event) == []
    event.refresh_from_db()
    assert event.routed_at is not None
    assert event.data == LARGE  # stored whole all the same


def test_a_refused_filter_is_recorded_without_reading_the_data():
    subscribe("flood", "flood.posted", QUADRATIC)
    event = emit("flood.posted", LARGE)
    assert route_reading(event) == []
    event.refresh_from_db()
    assert event.routed_at is not None
    assert "workflow flood v1 not started: trigger.filter" in event.route_errors[0]
    assert "square of the data" in event.route_errors[0]
    assert not Run.objects.exists()


def test_a_workflow_that_wants_the_event_gets_all_of_its_data(settings):
    settings.CEL_MAX_INPUT_VALUES = 100_000  # the filters may read all of it
    subscribe("flood", "flood.posted", "trigger.data.m == -1")
    subscribe("unfiltered", "flood.*")
    subscribe("filtered-out", "flood.posted", "trigger.data.m == 1")
    event = emit("flood.posted", LARGE)
    assert event_route(event_id=event.id) == 2
    runs = Run.objects.filter(trigger_event=event).select_related("workflow")
    assert sorted(run.workflow.name for run in runs) == ["flood", "unfiltered"]
    assert all(run.input == LARGE for run in runs)


def test_waiting_steps_match_on_the_data_of_a_claimed_event(workflow_harness, settings):
    settings.CEL_MAX_INPUT_VALUES = 100_000
    exact = workflow_harness.start("test-wait", {"key": "a"})
    cel = workflow_harness.start("test-wait-cel")
    workflow_harness.emit("test.reply", {**LARGE, "key": "a"})
    workflow_harness.emit("test.reading", {**LARGE, "value": 150})
    assert workflow_harness.result(exact)["reply"] == {**LARGE, "key": "a"}
    assert workflow_harness.result(cel) == {"value": 150}
