"""Each seed pattern, as an example workflow, run to completion with time skipped."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

from approvals.models import Approval
from approvals.services import AlreadyDecided, approval_decide
from automation.commands import run_retry
from automation.models import Run, StepRecord
from events.models import Event
from examples import actions

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clean_ledger():
    actions.LEDGER.clear()


@pytest.fixture
def manager(django_user_model):
    user = django_user_model.objects.create_user("maria", password="x")
    user.groups.add(Group.objects.create(name="managers"))
    return user


def only_run(workflow: str) -> Run:
    return Run.objects.get(workflow__name=workflow)


def test_sequential_steps_feed_each_other_and_emit_with_causation(workflow_harness):
    workflow_harness.emit("example.user.signed_up", {"email": "ada@example.com", "plan": "pro"})
    run = only_run("example-onboarding")
    assert workflow_harness.result(run) == {"userId": "user-ada", "crmId": "crm-user-ada"}
    assert [s.step_id for s in run.steps.order_by("seq")] == [
        "createUser", "welcome", "syncToCrm", "emit:example.user.onboarded#1",
    ]  # fmt: skip
    emitted = Event.objects.get(type="example.user.onboarded")
    assert emitted.causation_id == str(run.id)
    assert emitted.data == {"userId": "user-ada"}


def test_trigger_filter_keeps_internal_signups_out(workflow_harness):
    workflow_harness.emit("example.user.signed_up", {"email": "bot@corp", "plan": "internal"})
    assert not Run.objects.exists()


def test_parallel_branches_all_run_and_results_keep_their_order(workflow_harness):
    workflow_harness.emit("example.order.placed", {"orderId": "o-1"})
    run = only_run("example-order-fanout")
    assert workflow_harness.result(run) == [
        "warehouse notified",
        "receipt sent",
        "analytics updated",
    ]
    assert run.steps.filter(kind="branch", status="succeeded").count() == 3


def test_conditional_small_invoice_passes_without_approval(workflow_harness):
    workflow_harness.emit("example.invoice.created", {"invoiceId": "i-1", "total": 200})
    assert workflow_harness.result(only_run("example-invoice-routing")) == {
        "approved": True, "by": "policy",
    }  # fmt: skip
    assert not Approval.objects.exists()


def test_conditional_large_invoice_waits_for_a_manager(
    workflow_harness, manager, django_user_model
):
    workflow_harness.emit("example.invoice.created", {"invoiceId": "i-2", "total": 5000})
    run = only_run("example-invoice-routing")
    assert workflow_harness.refresh(run).status == "waiting"
    approval = Approval.objects.get(run=run)
    assert approval.title == "Approve invoice i-2 of 5000?"

    outsider = django_user_model.objects.create_user("otto", password="x")
    with pytest.raises(PermissionDenied):
        approval_decide(approval=approval, user=outsider, decision="approve")

    workflow_harness.decide(run, "managerOk", "approve", user=manager, comment="fine")
    assert workflow_harness.result(run) == {"approved": True, "by": "maria"}
    with pytest.raises(AlreadyDecided):
        approval_decide(approval=approval, user=manager, decision="reject")


def test_unanswered_approval_is_rejected_when_it_times_out(workflow_harness, manager):
    workflow_harness.emit("example.invoice.created", {"invoiceId": "i-3", "total": 5000})
    workflow_harness.run_until_idle()  # the two days pass at once
    run = only_run("example-invoice-routing")
    assert workflow_harness.result(run) == {"approved": False, "by": "timeout"}
    assert Approval.objects.get(run=run).status == "expired"


def test_event_chain_starts_the_next_workflow_from_the_emitted_event(workflow_harness):
    workflow_harness.emit("example.order.confirmed", {"orderId": "o-7", "amount": 42})
    payment = only_run("example-payment")
    shipping = only_run("example-shipping")
    assert workflow_harness.result(shipping) == {"shipped": "o-7"}
    assert shipping.trigger_event.causation_id == str(payment.id)


def test_idempotency_key_is_stable_so_a_repeated_charge_charges_once(workflow_harness):
    workflow_harness.emit("example.order.confirmed", {"orderId": "o-8", "amount": 10})
    run = only_run("example-payment")
    assert workflow_harness.result(run)["key"] == f"{run.id}:charge"
    # The provider sees the same key on any re-execution, so it would not charge twice.
    actions.charge({"amount": 10}, f"{run.id}:charge")
    assert len(actions.LEDGER["charge"]) == 1


def test_saga_cancels_completed_bookings_in_reverse_order(workflow_harness):
    workflow_harness.emit("example.trip.requested", {"destination": "Oslo", "fail": "car"})
    run = workflow_harness.refresh(only_run("example-trip-booking"))
    assert run.status == "failed"
    assert run.error["step"] == "car"
    assert "no car available" in run.error["message"]
    assert actions.LEDGER["book-flight"] == ["Oslo"]
    undone = [effect for effect in actions.LEDGER if effect.startswith("cancel-")]
    assert undone == ["cancel-hotel", "cancel-flight"]
    compensations = run.steps.filter(kind="compensation").timeline()  # they have no seq
    assert [s.step_id for s in compensations] == ["compensate:hotel", "compensate:flight"]


def test_long_running_sleeps_for_weeks_in_a_moment(workflow_harness, clock):
    workflow_harness.emit("example.trial.started", {"email": "t@example.com"})
    run = only_run("example-trial-reminders")
    assert workflow_harness.refresh(run).status == "waiting"
    assert actions.LEDGER["send-email"] == []
    started = clock.now()
    workflow_harness.run_until_idle()
    assert workflow_harness.result(run) == "reminded"
    assert len(actions.LEDGER["send-email"]) == 2
    assert (clock.now() - started).days >= 14


def test_human_in_the_loop_rejection_carries_the_comment(workflow_harness, manager):
    workflow_harness.emit("example.expense.submitted", {"amount": 90, "employee": "e@example.com"})
    run = only_run("example-expense-approval")
    workflow_harness.decide(run, "approve", "reject", user=manager, comment="no receipt")
    assert workflow_harness.result(run) == {"decision": "rejected", "comment": "no receipt"}
    assert actions.LEDGER["send-email"][-1]["template"] == "rejected"


def test_retry_with_backoff_until_it_succeeds(workflow_harness):
    workflow_harness.emit("example.record.changed", {"id": "r-1", "failures": 2})
    run = only_run("example-crm-sync")
    workflow_harness.run_until_idle()
    assert workflow_harness.result(run) == {"synced": "r-1", "calls": 3}
    step = run.steps.get(step_id="sync")
    assert step.attempt == 3
    assert [a["error"]["type"] for a in step.attempts] == ["RetryAfter", "RetryAfter"]


def test_the_same_record_synced_again_is_retried_again(workflow_harness):
    """The demo's failures are counted per run in its journal, not in a worker's memory: a
    second run (or another worker, or a restart) fails as many times as the first."""
    for _ in range(2):
        workflow_harness.emit("example.record.changed", {"id": "r-3", "failures": 2})
    workflow_harness.run_until_idle()
    runs = Run.objects.filter(workflow__name="example-crm-sync")
    assert [workflow_harness.result(run) for run in runs] == [{"synced": "r-3", "calls": 3}] * 2
    assert [run.steps.get(step_id="sync").attempt for run in runs] == [3, 3]


def test_exhausted_retries_dead_letter_the_run_and_it_can_be_retried(workflow_harness):
    workflow_harness.emit("example.record.changed", {"id": "r-2", "failures": 4})
    run = only_run("example-crm-sync")
    workflow_harness.run_until_idle()
    run = workflow_harness.refresh(run)
    assert run.status == "failed"
    assert run.error["step"] == "sync"
    assert run.error["attempt"] == 4
    assert "rate limited" in run.error["message"]
    assert "Traceback" in run.error["traceback"]

    workflow_harness._committed(run_retry, run=run)  # from the dead-letter list
    workflow_harness.drain()
    assert workflow_harness.result(run) == {"synced": "r-2", "calls": 5}


def test_timeout_escalates_when_the_event_never_comes(workflow_harness):
    workflow_harness.emit("example.customer.registered", {"customerId": "c-1"})
    workflow_harness.run_until_idle()
    assert workflow_harness.result(only_run("example-kyc")) == {
        "verified": False,
        "escalated": True,
    }


def test_matching_event_resumes_the_waiting_run(workflow_harness):
    workflow_harness.emit("example.customer.registered", {"customerId": "c-2"})
    workflow_harness.emit("example.kyc.completed", {"customerId": "other", "passed": False})
    run = only_run("example-kyc")
    assert workflow_harness.refresh(run).status == "waiting"
    workflow_harness.emit("example.kyc.completed", {"customerId": "c-2", "passed": True})
    assert workflow_harness.result(run) == {"verified": True, "escalated": False}


def test_composition_child_result_and_child_failure(workflow_harness):
    workflow_harness.emit("example.bulk.order", {"orderId": "b-1", "amount": 5})
    parent = only_run("example-order-with-fallback")
    child = Run.objects.get(parent_run=parent)
    assert workflow_harness.result(parent) == {"paid": True, "receipt": child.output}

    workflow_harness.emit("example.bulk.order", {"orderId": "b-2"})  # no amount: the child fails
    workflow_harness.run_until_idle()
    failed = (
        Run.objects.filter(workflow__name="example-order-with-fallback").exclude(id=parent.id).get()
    )
    output = workflow_harness.result(failed)
    assert output["paid"] is False
    assert "failed" in output["reason"]
    assert StepRecord.objects.get(run=failed, step_id="pay").status == "failed"


def test_a_refund_is_found_by_its_search_attributes_and_takes_the_patched_path(
    workflow_harness,
):
    workflow_harness.emit("example.refund.requested", {"customer": "acme", "orderId": "o-9"})
    run = only_run("example-refund")
    assert workflow_harness.result(run) == {"refunded": "o-9", "receipt": True}
    assert run.steps.filter(kind="marker", step_id="patch:refund-receipt").exists()
    run.refresh_from_db()
    assert run.search == {"customer": "acme", "order": "o-9", "stage": "done"}
    assert [e["template"] for e in actions.LEDGER["send-email"]] == ["refund", "refund-receipt"]
