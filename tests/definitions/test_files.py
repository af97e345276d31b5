"""Business-as-Code: declarative workflows live in YAML/JSON files in git. load_workflows is
idempotent and all-or-nothing; export_workflows writes files that load back unchanged. The
example definitions (one per seed pattern that a definition can express) run end to end."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import Group
from django.core import mail
from django.core.management import CommandError, call_command

from automation.models import Run, Workflow, WorkflowVersion
from events.models import Event
from examples.actions import LEDGER

pytestmark = pytest.mark.django_db

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "declarative"


@pytest.fixture
def manager(django_user_model):
    user = django_user_model.objects.create_user("maria")
    user.groups.add(Group.objects.get_or_create(name="managers")[0])
    return user


@pytest.fixture
def loaded(manager):
    call_command("load_workflows", str(EXAMPLES), stdout=StringIO())


def run_of(name: str) -> Run:
    return Run.objects.get(workflow__name=name)


def test_loading_is_idempotent_and_export_round_trips(manager, tmp_path):
    out = StringIO()
    call_command("load_workflows", str(EXAMPLES), stdout=out)
    assert "declarative-onboarding (onboarding.yaml): version 1 created" in out.getvalue()
    versions = WorkflowVersion.objects.count()
    again = StringIO()
    call_command("load_workflows", str(EXAMPLES), stdout=again)
    assert "created" not in again.getvalue()
    assert WorkflowVersion.objects.count() == versions
    call_command("export_workflows", str(tmp_path / "yaml"), stdout=StringIO())
    call_command("export_workflows", str(tmp_path / "json"), "--format", "json", stdout=StringIO())
    exported = yaml.safe_load((tmp_path / "yaml" / "declarative-onboarding.yaml").read_text())
    assert exported == yaml.safe_load((EXAMPLES / "onboarding.yaml").read_text())
    call_command("load_workflows", str(tmp_path / "yaml"), stdout=StringIO())
    call_command("load_workflows", str(tmp_path / "json"), stdout=StringIO())
    assert WorkflowVersion.objects.count() == versions
    as_json = json.loads((tmp_path / "json" / "declarative-kyc.json").read_text())
    assert as_json["name"] == "declarative-kyc"


def test_an_invalid_file_loads_nothing_and_names_file_and_path(manager, tmp_path):
    (tmp_path / "good.yaml").write_text((EXAMPLES / "shipping.yaml").read_text())
    bad = yaml.safe_load((EXAMPLES / "payment.yaml").read_text())
    bad["steps"][1]["input"]["data"]["orderId"] = "{{ steps.later.output }}"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    (tmp_path / "broken.json").write_text("{not json")
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was loaded"):
        call_command("load_workflows", str(tmp_path), stdout=StringIO(), stderr=err)
    assert "bad.yaml: steps[1].input.data.orderId: no step 'later'" in err.getvalue()
    assert "broken.json: not valid JSON" in err.getvalue()
    assert not Workflow.objects.filter(kind="declarative").exists()


def test_example_sequential_onboarding(workflow_harness, loaded):
    workflow_harness.emit(
        "example.declared.user.signed_up", {"email": "ada@example.com", "plan": "pro"}
    )
    workflow_harness.emit(
        "example.declared.user.signed_up", {"email": "x@corp", "plan": "internal"}
    )
    run = run_of("declarative-onboarding")
    assert workflow_harness.result(run) == {"userId": "user-ada", "crmId": "crm-user-ada"}
    assert mail.outbox[0].to == ["ada@example.com"]
    assert Event.objects.get(type="example.declared.user.onboarded").data == {"userId": "user-ada"}


def test_example_parallel_fanout(workflow_harness, loaded):
    workflow_harness.emit(
        "example.declared.order.placed", {"orderId": "o-1", "email": "c@example.com"}
    )
    workflow_harness.run_until_idle()
    output = workflow_harness.result(run_of("declarative-order-fanout"))
    assert set(output["notify"]) == {"warehouse", "receipt", "analytics"}
    assert Event.objects.filter(type="example.declared.analytics.order").count() == 1


def test_example_conditional_invoice_routing(workflow_harness, loaded, manager):
    workflow_harness.emit("example.declared.invoice.created", {"invoiceId": "i-1", "total": 50})
    workflow_harness.emit("example.declared.invoice.created", {"invoiceId": "i-2", "total": 5000})
    small, big = Run.objects.order_by("created_at")
    assert workflow_harness.result(small)["managerOk"] is None
    assert workflow_harness.refresh(big).status == "waiting"
    workflow_harness.decide(big, "managerOk", "approve", user=manager)
    assert workflow_harness.result(big)["rejected"] is None


def test_example_event_chain_and_idempotent_charge(workflow_harness, loaded):
    workflow_harness.emit("example.declared.order.confirmed", {"orderId": "o-9", "amount": 42})
    assert workflow_harness.result(run_of("declarative-payment"))["charge"]["charged"] == 42
    assert workflow_harness.result(run_of("declarative-shipping")) == {"shipped": "o-9"}


def test_example_saga_compensates_in_reverse(workflow_harness, loaded):
    workflow_harness.emit("example.declared.trip.requested", {"destination": "Lima", "fail": "car"})
    run = workflow_harness.refresh(run_of("declarative-trip-booking"))
    assert (run.status, run.error["step"]) == ("failed", "car")
    assert LEDGER["cancel-hotel"][-1] == "hotel-Lima"
    assert LEDGER["cancel-flight"][-1] == "flight-Lima"
    steps = list(run.steps.filter(kind="compensation").order_by("started_at", "id"))
    assert [s.step_id for s in steps] == ["compensate:hotel", "compensate:flight"]


def test_example_long_running_trial(workflow_harness, loaded):
    workflow_harness.emit("example.declared.trial.started", {"email": "t@example.com"})
    workflow_harness.run_until_idle()
    assert workflow_harness.refresh(run_of("declarative-trial-reminders")).status == "succeeded"
    assert [m.subject for m in mail.outbox] == ["Your trial is half over", "Your trial ends today"]


def test_example_human_in_the_loop(workflow_harness, loaded, manager):
    workflow_harness.emit(
        "example.declared.expense.submitted", {"amount": 90, "employee": "e@example.com"}
    )
    run = run_of("declarative-expense-approval")
    workflow_harness.decide(run, "approve", "reject", user=manager, comment="no receipt")
    assert workflow_harness.refresh(run).status == "succeeded"
    assert (mail.outbox[0].subject, mail.outbox[0].body) == (
        "Your expense was rejected",
        "no receipt",
    )


def test_example_retry_then_dead_letter(workflow_harness, loaded):
    workflow_harness.emit("example.declared.record.changed", {"id": "d-1", "failures": 2})
    workflow_harness.emit("example.declared.record.changed", {"id": "d-2", "failures": 9})
    workflow_harness.run_until_idle()
    ok, dead = Run.objects.order_by("created_at")
    assert workflow_harness.result(ok)["sync"]["calls"] == 3
    assert workflow_harness.refresh(dead).status == "failed"
    assert dead.steps.get(step_id="sync").attempt == 4


def test_example_timeout(workflow_harness, loaded):
    workflow_harness.emit("example.declared.customer.registered", {"customerId": "c-1"})
    workflow_harness.emit("example.declared.customer.registered", {"customerId": "c-2"})
    workflow_harness.emit("example.declared.kyc.completed", {"customerId": "c-1", "passed": True})
    workflow_harness.run_until_idle()
    answered, late = Run.objects.order_by("created_at")
    assert workflow_harness.result(answered)["verified"]["data"]["passed"] is True
    assert workflow_harness.result(late)["verified"] == {"timed_out": True}
    assert mail.outbox[0].subject == "KYC of c-2 is late"


def test_example_order_sync_debounces_into_one_run_with_the_last_revision(workflow_harness, loaded):
    for revision in range(1, 4):
        workflow_harness.emit(
            "example.declared.order.updated",
            {"order_id": "o-1", "customer": "acme", "plan": "enterprise", "revision": revision},
        )
        workflow_harness.advance_time("2s")
    assert not Run.objects.filter(status="succeeded").exists()  # still not quiet for 5s
    workflow_harness.advance_time("3s")
    run = run_of("declarative-order-sync")
    assert workflow_harness.result(run) == {"synced": 3}
    assert run.priority == 10


def test_example_invoice_mailing_throttles_without_dropping(workflow_harness, loaded):
    for invoice in range(3):
        workflow_harness.emit(
            "example.declared.invoice.created", {"customer": "acme", "invoice": invoice}
        )
    runs = Run.objects.filter(workflow__name="declarative-invoice-mailing")
    assert sorted(runs.values_list("status", flat=True)) == ["succeeded", "succeeded", "waiting"]
    workflow_harness.advance_time("1m")
    assert sorted(runs.values_list("status", flat=True)) == ["succeeded"] * 3


def test_example_tenant_digest_batches_a_tenants_orders(workflow_harness, loaded):
    for order in ("o-1", "o-2"):
        workflow_harness.emit(
            "example.declared.order.created", {"tenant": "acme", "order_id": order}
        )
    workflow_harness.emit("example.declared.order.created", {"tenant": "globex", "order_id": "o-3"})
    workflow_harness.advance_time("5s")
    runs = Run.objects.filter(workflow__name="declarative-tenant-digest").order_by("created_at")
    batches = [
        [e["data"]["order_id"] for e in workflow_harness.result(run)["orders"]] for run in runs
    ]
    assert batches == [["o-1", "o-2"], ["o-3"]]


def test_example_purchase_approval_with_a_form_a_reminder_and_search_attributes(
    workflow_harness, loaded, manager
):
    workflow_harness.emit(
        "example.declared.purchase.requested",
        {"amount": 500, "supplier": "acme", "requester": "ada@example.com"},
    )
    run = run_of("declarative-purchase-approval")
    assert run.search == {"requester": "ada@example.com", "supplier": "acme"}
    workflow_harness.advance_time("44h30m")  # the reminder is due 4h before the 2-day timeout
    approval = run.approvals.get()
    assert approval.reminded_at is not None
    workflow_harness.decide(
        run, "approve", "approve", user=manager, values={"amount": 450, "centre": "ops"}
    )
    assert workflow_harness.refresh(run).status == "succeeded"
    assert mail.outbox[-1].subject == "Approved: 450 (ops)"
