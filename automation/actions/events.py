"""``event.emit``: store an event (and start what subscribes to it), exactly once per step."""

from __future__ import annotations

from typing import Any

from automation import NonRetryableError, action


@action(
    "event.emit",
    stores_input=("*",),  # stored as an event, shown on its page and in the API
    input_schema={
        "type": "object",
        "required": ["type"],
        "additionalProperties": False,
        "properties": {
            "type": {"type": "string", "minLength": 1, "maxLength": 200},
            "data": {"type": "object"},
            "subject": {"type": "string"},
        },
    },
)
def emit_event(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Emit an event caused by this run. A step that runs again re-uses its idempotency key,
    so the event is stored once."""
    from automation.models import Run
    from events.services import InvalidEvent, event_record

    # Runs the event starts keep this run's requester (four-eyes holds along the chain). A
    # workflow's ctx knows it; a parallel branch's ctx does not, and asks the database.
    if hasattr(ctx, "requester_id"):
        requester_id = ctx.requester_id
    else:
        requester_id = Run.objects.filter(pk=ctx.run_id).values_list("started_by_id", flat=True)
        requester_id = requester_id.first()
    try:
        event, created = event_record(
            type=input["type"],
            data=input.get("data", {}),
            subject=input.get("subject", ""),
            source=f"run:{ctx.run_id}",
            correlation_id=ctx.correlation_id,
            causation_id=ctx.run_id,
            idempotency_key=ctx.idempotency_key(ctx.current_step_id),
            actor_id=requester_id,
        )
    except InvalidEvent as exc:
        raise NonRetryableError(f"event.emit: {exc}") from None
    return {"event_id": str(event.id), "type": event.type, "duplicate": not created}
