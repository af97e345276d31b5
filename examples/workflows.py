"""One workflow per pattern of the seed documents. Each reacts to an ``example.*`` event.

Start one from the shell::

    python manage.py shell -c "from events.services import emit; \
        emit('example.user.signed_up', {'email': 'ada@example.com', 'plan': 'pro'})"
"""

from __future__ import annotations

from typing import Any

from automation import StepFailed, workflow
from examples import actions


@workflow(
    "example-onboarding", on="example.user.signed_up", filter='trigger.data.plan != "internal"'
)
def onboarding(ctx: Any, event: Any) -> dict[str, Any]:
    """Sequential: each step feeds the next; the CRM step is undone if a later step fails."""
    user = ctx.action("createUser", "example.create-user", {"email": event.data["email"]})
    ctx.action("welcome", "example.send-email", {"to": user["email"], "template": "welcome"})
    crm = ctx.step(
        "syncToCrm", actions.add_to_crm, user["userId"], compensate=actions.remove_from_crm
    )
    ctx.emit("example.user.onboarded", {"userId": user["userId"]})
    return {"userId": user["userId"], "crmId": crm["crmId"]}


@workflow("example-order-fanout", on="example.order.placed")
def order_fanout(ctx: Any, event: Any) -> list[str]:
    """Parallel: three independent notifications, run concurrently by any workers."""
    order_id = event.data["orderId"]
    return ctx.parallel(
        "notify",
        [
            (actions.notify_warehouse, order_id),
            (actions.send_receipt, order_id),
            (actions.update_analytics, order_id),
        ],
    )


@workflow("example-invoice-routing", on="example.invoice.created")
def invoice_routing(ctx: Any, event: Any) -> dict[str, Any]:
    """Conditional: large invoices need a manager's approval, small ones pass."""
    if event.data["total"] <= 1000:
        return {"approved": True, "by": "policy"}
    decision = ctx.approval(
        "managerOk",
        title=f"Approve invoice {event.data['invoiceId']} of {event.data['total']}?",
        assignees=["group:managers"],
        context={"invoice": event.data},
        timeout="2d",
    )
    return {"approved": decision["approved"], "by": decision["decided_by"] or "timeout"}


@workflow("example-payment", on="example.order.confirmed")
def payment(ctx: Any, event: Any) -> dict[str, Any]:
    """Event chain (first link) and idempotency: charge once, then tell whoever listens."""
    receipt = ctx.step("charge", actions.charge, event.data, ctx.idempotency_key("charge"))
    ctx.emit("example.payment.captured", {"orderId": event.data["orderId"], **receipt})
    return receipt


@workflow("example-shipping", on="example.payment.captured")
def shipping(ctx: Any, event: Any) -> dict[str, Any]:
    """Event chain (second link): started by the event the payment workflow emitted."""
    return {"shipped": event.data["orderId"]}


@workflow("example-trip-booking", on="example.trip.requested")
def trip_booking(ctx: Any, event: Any) -> dict[str, Any]:
    """Saga: when a booking fails, the ones made before it are cancelled in reverse order."""
    trip = event.data
    flight = ctx.step("flight", actions.book, "flight", trip, compensate=actions.cancel_booking)
    hotel = ctx.step("hotel", actions.book, "hotel", trip, compensate=actions.cancel_booking)
    car = ctx.step("car", actions.book, "car", trip, compensate=actions.cancel_booking)
    return {"bookings": [flight["booking"], hotel["booking"], car["booking"]]}


@workflow("example-trial-reminders", on="example.trial.started")
def trial_reminders(ctx: Any, event: Any) -> str:
    """Long-running: sleeps for days without holding a worker."""
    email = event.data["email"]
    ctx.sleep("week1", "7d")
    ctx.action("reminder1", "example.send-email", {"to": email, "template": "trial-halfway"})
    ctx.sleep("week2", "7d")
    ctx.action("reminder2", "example.send-email", {"to": email, "template": "trial-ends"})
    return "reminded"


@workflow("example-expense-approval", on="example.expense.submitted")
def expense_approval(ctx: Any, event: Any) -> dict[str, Any]:
    """Human in the loop: a manager approves or rejects; the employee is told either way."""
    decision = ctx.approval(
        "approve",
        title=f"Expense of {event.data['amount']} by {event.data['employee']}",
        assignees=["group:managers"],
        context=event.data,
        timeout="3d",
    )
    verdict = "approved" if decision["approved"] else "rejected"
    ctx.action("tell", "example.send-email", {"to": event.data["employee"], "template": verdict})
    return {"decision": verdict, "comment": decision["comment"]}


@workflow(
    "example-crm-sync",
    on="example.record.changed",
    retry={"max_attempts": 4, "backoff": "exponential", "initial": "1s", "max": "1m"},
)
def crm_sync(ctx: Any, event: Any) -> dict[str, Any]:
    """Retry with dead letter: a rate-limited call is retried with backoff; when the attempts
    run out the run fails (the dead-letter list in admin) and can be retried from there."""
    return ctx.step("sync", actions.flaky_sync, event.data, ctx.run_id)


@workflow("example-kyc", on="example.customer.registered")
def kyc(ctx: Any, event: Any) -> dict[str, Any]:
    """Timeout: wait for the verification result, escalate when it does not come in time."""
    result = ctx.wait_for_event(
        "verified",
        "example.kyc.completed",
        match={"customerId": event.data["customerId"]},
        timeout="3d",
    )
    if not result:
        ctx.action("escalate", "example.send-email", {"to": "compliance", "template": "kyc-late"})
        return {"verified": False, "escalated": True}
    return {"verified": result["data"]["passed"], "escalated": False}


@workflow("example-order-with-fallback", on="example.bulk.order")
def order_with_fallback(ctx: Any, event: Any) -> dict[str, Any]:
    """Composition: a child workflow does the payment; its failure is handled here."""
    try:
        receipt = ctx.child("pay", "example-payment-child", event.data)
    except StepFailed as failed:
        return {"paid": False, "reason": failed.error.get("message")}
    return {"paid": True, "receipt": receipt}


@workflow("example-payment-child")
def payment_child(ctx: Any, event: Any) -> dict[str, Any]:
    return ctx.step("charge", actions.charge, event.data, ctx.idempotency_key("charge"))


@workflow("example-return-pickup", on="example.return.requested")
def return_pickup(ctx: Any, event: Any) -> dict[str, Any]:
    """Wait for any of several events and for a signal; answer queries while it waits.

    The courier's scan or the customer's drop-off, whichever comes first, within 3 days; then
    a warehouse clerk confirms the parcel with the signal ``inspected`` (``{"ok": true}``)."""
    order = event.data["order"]
    arrival = ctx.wait_for_events(
        "arrival",
        any=[
            {"event": "example.return.scanned", "match": {"order": order}},
            {"event": "example.return.dropped_off", "match": {"order": order}},
        ],
        timeout="3d",
    )
    if not arrival:
        return {"order": order, "outcome": "never arrived"}
    how = ["courier", "drop-off"][arrival["arrived"][0]]
    inspection = ctx.wait_for_signal("inspection", "inspected", timeout="7d")
    if not inspection:
        return {"order": order, "outcome": "not inspected", "via": how}
    refund = bool(inspection["data"].get("ok"))
    return {"order": order, "outcome": "refunded" if refund else "refused", "via": how}


@workflow.query(return_pickup)
def where(run: Any) -> dict[str, Any]:
    """Where the return is: waiting for the parcel, for the inspection, or done."""
    if "inspection" in run.steps:
        return {"stage": "done", "outcome": (run.output or {}).get("outcome")}
    if "arrival" in run.steps:
        return {"stage": "waiting for inspection"}
    return {"stage": "waiting for the parcel"}


@workflow("example-refund", on="example.refund.requested")
def refund(ctx: Any, event: Any) -> dict[str, Any]:
    """Search attributes and a guarded code change: the run can be found by customer and order
    (``GET /api/runs/?search.customer=acme``), and the receipt email added in a later release
    runs only for refunds that reach it on the new code (``ctx.patched``), so the refunds in
    flight when it shipped still replay (``manage.py check_replay``)."""
    ctx.set_search_attributes(
        {"customer": event.data["customer"], "order": event.data["orderId"], "stage": "asked"}
    )
    ctx.action("tell", "example.send-email", {"to": event.data["customer"], "template": "refund"})
    receipt = ctx.patched("refund-receipt")
    if receipt:
        ctx.action(
            "receipt", "example.send-email", {"to": "accounting", "template": "refund-receipt"}
        )
    ctx.set_search_attributes({"stage": "done"})
    return {"refunded": event.data["orderId"], "receipt": receipt}
