"""A child run that succeeded is part of its parent's saga: when the parent fails or is
cancelled later, the child's completed steps are compensated, in reverse order, as one
compensation of the parent's child step, unless the call says ``compensate=False``."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import OperationalError

from automation import NonRetryableError, workflow
from automation.commands import workflow_definition_save
from automation.definitions.validation import InvalidDefinition
from automation.engine import clock
from automation.engine.runs import run_cancel
from automation.models import Run, StepRecord

pytestmark = pytest.mark.django_db

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "declarative"


def charge() -> dict:
    return {"charge": "ch_1"}


def receipt() -> dict:
    return {"receipt": "r_1"}


def refund(output: dict) -> dict:
    return {"refunded": output["charge"]}


def void(output: dict) -> dict:
    return {"voided": output["receipt"]}


def ship() -> None:
    raise NonRetryableError("the warehouse refused the order")


@workflow("saga-payment")
def payment(ctx, event):
    ctx.step("charge", charge, compensate=refund)
    ctx.step("receipt", receipt, compensate=void)
    return "paid"


@workflow("saga-order")
def order(ctx, event):
    ctx.child("pay", "saga-payment")
    ctx.step("ship", ship)


@workflow("saga-order-keeps-payment")
def order_keeps_payment(ctx, event):
    ctx.child("pay", "saga-payment", compensate=False)
    ctx.step("ship", ship)


@workflow("saga-order-waits")
def order_waits(ctx, event):
    ctx.child("pay", "saga-payment")
    ctx.sleep("cool_off", "1d")


def compensations(run: Run) -> list[str]:
    records = StepRecord.objects.filter(run=run, kind="compensation").timeline()
    return [record.step_id for record in records]


def test_a_parent_that_fails_compensates_its_succeeded_child_in_reverse_order(workflow_harness):
    parent = workflow_harness.start("saga-order")
    parent = workflow_harness.refresh(parent)
    child = Run.objects.get(parent_run=parent)
    assert (parent.status, child.status) == ("failed", "succeeded")
    assert compensations(child) == ["compensate:receipt", "compensate:charge"]
    assert workflow_harness.calls["compensate:receipt"] == 1
    assert workflow_harness.calls["compensate:charge"] == 1
    undo = parent.steps.get(step_id="compensate:pay")
    assert undo.status == "succeeded"
    assert undo.output["compensated"] == ["charge", "receipt"]
    assert child.steps.get(step_id="compensate:charge").output == {"refunded": "ch_1"}


def test_compensate_false_leaves_the_childs_effects(workflow_harness):
    parent = workflow_harness.refresh(workflow_harness.start("saga-order-keeps-payment"))
    child = Run.objects.get(parent_run=parent)
    assert parent.status == "failed"
    assert compensations(parent) == compensations(child) == []
    assert "compensate:charge" not in workflow_harness.calls


def test_cancelling_a_parent_after_its_child_succeeded_compensates_the_child(
    workflow_harness, django_capture_on_commit_callbacks
):
    parent = workflow_harness.start("saga-order-waits")
    assert workflow_harness.refresh(parent).status == "waiting"
    with django_capture_on_commit_callbacks(execute=True):
        run_cancel(run=parent)
    workflow_harness.drain()
    child = Run.objects.get(parent_run=parent)
    assert workflow_harness.refresh(parent).status == "cancelled"
    assert compensations(child) == ["compensate:receipt", "compensate:charge"]


def test_a_child_compensation_that_fails_is_retried_without_repeating_the_others(
    workflow_harness,
):
    attempts = []

    def flaky_refund(output):
        attempts.append(output)
        if len(attempts) == 1:
            raise ConnectionError("refund API down")
        return {"refunded": output["charge"]}

    workflow_harness.fake("compensate:charge", returns=flaky_refund)
    parent = workflow_harness.start("saga-order")
    assert workflow_harness.refresh(parent).status == "waiting"  # the retry's backoff
    workflow_harness.run_until_idle()
    parent = workflow_harness.refresh(parent)
    child = Run.objects.get(parent_run=parent)
    assert parent.status == "failed"
    assert "compensation_errors" not in parent.error
    assert len(attempts) == 2
    assert workflow_harness.calls["compensate:receipt"] == 1
    assert child.steps.get(step_id="compensate:charge").status == "succeeded"


OUTAGES: list[str] = []


@workflow("saga-payment-on-a-flaky-database")
def payment_on_a_flaky_database(ctx, event):
    ctx.step("charge", charge, compensate=refund)
    ctx.step("receipt", receipt, compensate=void)
    if OUTAGES:  # the replay that learns the compensations meets a database restart
        raise OperationalError(OUTAGES.pop())
    return "paid"


@workflow("saga-order-on-a-flaky-database")
def order_on_a_flaky_database(ctx, event):
    ctx.child("pay", "saga-payment-on-a-flaky-database")
    ctx.step("ship", ship)


def test_a_child_compensation_interrupted_by_a_database_error_is_retried(workflow_harness):
    def ship_then_lose_the_database():
        OUTAGES.append("server closed the connection unexpectedly")
        ship()

    workflow_harness.fake("ship", returns=ship_then_lose_the_database)
    parent = workflow_harness.start("saga-order-on-a-flaky-database")
    workflow_harness.run_until_idle()
    parent = workflow_harness.refresh(parent)
    child = Run.objects.get(parent_run=parent)
    assert parent.status == "failed"
    assert "compensation_errors" not in parent.error
    assert compensations(child) == ["compensate:receipt", "compensate:charge"]
    assert workflow_harness.calls["compensate:charge"] == 1


def test_a_child_held_by_another_worker_is_compensated_once_it_is_free(workflow_harness):
    """Another worker holds the child (a parent's compensation taken over from a worker that
    seemed dead but still runs): the child's journal is not touched until its lease ends."""

    def ship_while_another_worker_holds_the_child():
        Run.objects.filter(workflow__name="saga-payment").update(
            lease_owner="another-worker", lease_expires_at=clock.now() + timedelta(seconds=10)
        )
        ship()

    workflow_harness.fake("ship", returns=ship_while_another_worker_holds_the_child)
    parent = workflow_harness.refresh(workflow_harness.start("saga-order"))
    child = Run.objects.get(parent_run=parent)
    assert parent.status == "waiting"  # its compensation of the child retries later
    assert compensations(child) == []
    workflow_harness.run_until_idle()
    parent = workflow_harness.refresh(parent)
    assert parent.status == "failed"
    assert "compensation_errors" not in parent.error
    assert compensations(child) == ["compensate:receipt", "compensate:charge"]
    assert workflow_harness.calls["compensate:charge"] == 1
    assert workflow_harness.refresh(child).lease_owner == ""


# --- declarative definitions: the `child` step kind ------------------------------------------


def round_trip(workflow: str = "saga-payment", **child: object) -> dict:
    return {
        "name": "declared-order",
        "trigger": {"event": "test.declared.order"},
        "steps": [
            {
                "id": "pay",
                "child": {"workflow": workflow, "input": {"n": "{{ trigger.data.n }}"}, **child},
            },
            {"id": "ship", "action": "log", "input": {"message": "ship {{ steps.pay.output }}"}},
        ],
    }


def test_a_declared_child_is_compensated_when_the_parent_fails(workflow_harness):
    workflow_definition_save(definition=round_trip())
    workflow_harness.fake("ship", raises=NonRetryableError("no stock"))
    parent = workflow_harness.refresh(workflow_harness.start("declared-order", {"n": 1}))
    child = Run.objects.get(parent_run=parent)
    assert (parent.status, child.status) == ("failed", "succeeded")
    assert child.input == {"n": 1}
    assert compensations(child) == ["compensate:receipt", "compensate:charge"]


def test_a_declared_child_with_compensate_false_keeps_its_effects(workflow_harness):
    workflow_definition_save(definition=round_trip(compensate=False))
    workflow_harness.fake("ship", raises=NonRetryableError("no stock"))
    parent = workflow_harness.refresh(workflow_harness.start("declared-order", {"n": 1}))
    assert parent.status == "failed"
    assert compensations(Run.objects.get(parent_run=parent)) == []


def test_a_declared_child_naming_an_unknown_workflow_is_refused_by_path():
    with pytest.raises(InvalidDefinition) as refused:
        workflow_definition_save(definition=round_trip("no-such-flow"))
    assert [e.as_dict() for e in refused.value.errors] == [
        {"path": "steps[0].child.workflow", "message": "no workflow named 'no-such-flow'"}
    ]
    definition = round_trip()
    definition["steps"][0]["retry"] = {"max_attempts": 2}
    with pytest.raises(InvalidDefinition, match="nothing to retry"):
        workflow_definition_save(definition=definition)


def test_the_round_trip_example_cancels_the_outbound_trip_when_home_fails(workflow_harness):
    from examples.actions import LEDGER

    Group.objects.create(name="managers")  # other examples ask them
    call_command("load_workflows", str(EXAMPLES), stdout=StringIO())
    workflow_harness.emit(
        "example.declared.round_trip.requested",
        {"destination": "Rome", "home": {"destination": "Oslo", "fail": "flight"}},
    )
    parent = workflow_harness.refresh(Run.objects.get(workflow__name="declarative-round-trip"))
    child = Run.objects.get(parent_run=parent)
    assert (parent.status, parent.error["step"]) == ("failed", "home")
    assert compensations(child) == ["compensate:car", "compensate:hotel", "compensate:flight"]
    assert LEDGER["cancel-flight"][-1] == "flight-Rome"
