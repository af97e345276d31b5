"""Stand-ins for the external systems the examples talk to (a CRM, a payment provider, …).

They keep what they did in ``LEDGER`` so a demo (or a test) can see each external effect, and
they fail on demand through their input, to show retries and compensations.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from automation import NonRetryableError, RetryAfter, action
from automation.models import StepRecord

logger = logging.getLogger(__name__)

# effect name -> list of inputs it was called with (per process; for demos and tests)
LEDGER: dict[str, list[Any]] = defaultdict(list)


def _did(effect: str, payload: Any) -> None:
    LEDGER[effect].append(payload)
    logger.info("example effect %s: %s", effect, payload)


@action("example.create-user")
def create_user(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
    _did("create-user", input)
    return {"userId": f"user-{input['email'].split('@')[0]}", "email": input["email"]}


@action("example.send-email")
def send_email(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
    _did("send-email", input)
    return {"sent": True, "to": input["to"]}


def add_to_crm(user_id: str) -> dict[str, Any]:
    _did("crm-add", user_id)
    return {"crmId": f"crm-{user_id}"}


def remove_from_crm(output: dict[str, Any]) -> None:
    _did("crm-remove", output["crmId"])


def notify_warehouse(order_id: str) -> str:
    _did("warehouse", order_id)
    return "warehouse notified"


def send_receipt(order_id: str) -> str:
    _did("receipt", order_id)
    return "receipt sent"


def update_analytics(order_id: str) -> str:
    _did("analytics", order_id)
    return "analytics updated"


def book(kind: str, trip: dict[str, Any]) -> dict[str, Any]:
    if trip.get("fail") == kind:
        raise NonRetryableError(f"no {kind} available for {trip['destination']}")
    _did(f"book-{kind}", trip["destination"])
    return {"kind": kind, "booking": f"{kind}-{trip['destination']}"}


def cancel_booking(output: dict[str, Any]) -> None:
    _did(f"cancel-{output['kind']}", output["booking"])


def flaky_sync(record: dict[str, Any], run_id: str, step_id: str = "sync") -> dict[str, Any]:
    """Fails the first ``record['failures']`` calls of this run's step (rate-limited), then
    succeeds. The calls are counted in the run's journal, so every run of the demo retries
    the same way, whichever worker runs it and however often it is restarted."""
    call = _call_number(run_id, step_id)
    if call <= record.get("failures", 0):
        raise RetryAfter(1, f"rate limited on call {call}")
    _did("sync", record["id"])
    return {"synced": record["id"], "calls": call}


def _call_number(run_id: str, step_id: str) -> int:
    """This call's number: the attempts the journal records before it, plus one (an operator's
    retry from the dead letter is recorded there too, and is not a call)."""
    earlier = StepRecord.objects.filter(run_id=run_id, step_id=step_id).values_list(
        "attempts", flat=True
    )
    history = next(iter(earlier), [])
    return 1 + sum(1 for a in history if a.get("error", {}).get("type") != "Retried")


def charge(order: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    """A payment provider call: the idempotency key makes a repeated call charge once."""
    charges = LEDGER["charges-by-key"]
    if idempotency_key not in charges:
        charges.append(idempotency_key)
        _did("charge", {"amount": order["amount"], "key": idempotency_key})
    return {"charged": order["amount"], "key": idempotency_key}


# --- the same stand-ins as actions, for the declarative examples (examples/declarative/) ----

_TRIP = {
    "type": "object",
    "required": ["kind", "trip"],
    "properties": {
        "kind": {"enum": ["flight", "hotel", "car"]},
        "trip": {"type": "object", "required": ["destination"]},
    },
}


@action("example.book", input_schema=_TRIP)
def book_action(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return book(input["kind"], input["trip"])


@action(
    "example.cancel-booking",
    input_schema={"type": "object", "required": ["kind", "booking"]},
)
def cancel_booking_action(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
    cancel_booking(input)
    return {"cancelled": input["booking"]}


@action("example.crm-add", input_schema={"type": "object", "required": ["userId"]})
def crm_add_action(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return add_to_crm(input["userId"])


@action("example.crm-remove", input_schema={"type": "object", "required": ["crmId"]})
def crm_remove_action(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
    remove_from_crm(input)
    return {"removed": input["crmId"]}


@action(
    "example.charge",
    input_schema={
        "type": "object",
        "required": ["orderId", "amount"],
        "properties": {"amount": {"type": "number", "exclusiveMinimum": 0}},
    },
)
def charge_action(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Charges once per step, however often the step runs (its idempotency key)."""
    return charge(input, ctx.idempotency_key(ctx.current_step_id))


@action("example.sync", input_schema={"type": "object", "required": ["id"]})
def sync_action(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return flaky_sync(input, ctx.run_id, ctx.current_step_id)
