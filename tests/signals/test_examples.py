"""The examples of waits for several events, signals and queries, run end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from automation.commands import run_signal, workflow_definition_save
from automation.engine import querying
from automation.models import Run, StepRecord
from events.models import Event

pytestmark = pytest.mark.django_db

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "declarative"
DELIVERY = yaml.safe_load((EXAMPLES / "order-delivery.yaml").read_text())


def test_code_example_return_pickup(workflow_harness, users):
    workflow_harness.emit("example.return.requested", {"order": "r-1"})
    run = Run.objects.get(workflow__name="example-return-pickup")
    assert querying.query_run(run=run, name="where") == {"stage": "waiting for the parcel"}
    workflow_harness.emit("example.return.dropped_off", {"order": "r-1"})
    assert querying.query_run(run=run, name="where") == {"stage": "waiting for inspection"}
    workflow_harness._committed(
        run_signal, run_id=run.id, name="inspected", data={"ok": True}, user=users["admin"]
    )
    workflow_harness.drain()
    assert workflow_harness.result(run) == {
        "order": "r-1", "outcome": "refunded", "via": "drop-off",
    }  # fmt: skip
    assert querying.query_run(run=run, name="where") == {"stage": "done", "outcome": "refunded"}


def test_declarative_example_order_delivery(workflow_harness, users):
    workflow_definition_save(definition=DELIVERY)
    workflow_harness.emit("example.declared.delivery.packed", {"order": "o-1"})  # early
    workflow_harness.emit("example.declared.delivery.requested", {"order": "o-1"})
    run = Run.objects.get(workflow__name="declarative-order-delivery")
    assert workflow_harness.refresh(run).status == "waiting"
    workflow_harness.emit("example.declared.delivery.paid", {"order": "o-1"})
    ready = StepRecord.objects.get(run=run, step_id="ready").output
    assert ready["arrived"] == [0, 1]
    workflow_harness.emit("example.declared.delivery.shipped", {"order": "o-1"})
    assert StepRecord.objects.get(run=run, step_id="stopped").output["arrived"] == [1]
    workflow_harness._committed(
        run_signal, run_id=run.id, name="delivered", data={}, user=users["operator"]
    )
    workflow_harness.drain()
    assert workflow_harness.refresh(run).status == "succeeded"
    done = Event.objects.get(type="example.declared.delivery.done")
    assert done.data == {"order": "o-1", "by": "olivia"}


def test_declarative_example_stops_on_a_cancellation(workflow_harness):
    workflow_definition_save(definition=DELIVERY)
    workflow_harness.emit("example.declared.delivery.requested", {"order": "o-2"})
    workflow_harness.emit("example.declared.delivery.paid", {"order": "o-2"})
    workflow_harness.emit("example.declared.delivery.packed", {"order": "o-2"})
    workflow_harness.emit("example.declared.delivery.cancelled", {"order": "o-2"})
    run = workflow_harness.refresh(Run.objects.get(workflow__name="declarative-order-delivery"))
    assert run.status == "succeeded"
    assert StepRecord.objects.get(run=run, step_id="handed_over").status == "skipped"
    assert not Event.objects.filter(type="example.declared.delivery.done").exists()
