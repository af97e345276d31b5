"""A step waiting for any or all of several events under one deadline.

The step has one ``Wait`` per event it lists (``part`` 0, 1, ...; ``mode`` any or all), so each
is routed and looked back for like a single wait. Whoever fills a part decides the step in the
same transaction: the first part of an ``any`` wait completes it (the other parts close), the
last open part of an ``all`` wait completes it. The step's journal record is locked first, so
two events filling the last two parts at once are serialised and exactly one completes it.
"""

from __future__ import annotations

from typing import Any

from automation.engine import clock, journal
from automation.models import StepRecord, StepStatus, Wait

MODES = ("any", "all")
MAX_EVENTS = 20  # events one step may wait for: each is an open Wait routed on every event


class EventsOutcome(dict):  # type: ignore[type-arg]
    """What ``ctx.wait_for_events`` returns: ``{"mode", "arrived", "events", "timed_out"}``.
    ``arrived`` lists the indexes of the events that came, ``events`` holds each event (or
    None) in the order they were asked for. Falsy when the timeout passed, as a single wait's
    TimedOut is, so ``if not outcome:`` reads "timed out" (``arrived`` still says what came)."""

    def __bool__(self) -> bool:
        return not self.get("timed_out")


def outcome(parts: list[Wait], mode: str, *, timed_out: bool) -> dict[str, Any]:
    """The step's output from its parts (the matched ones with their event loaded)."""
    events = [
        part.event.as_trigger() if part.status == Wait.Status.MATCHED and part.event else None
        for part in parts
    ]
    return {
        "mode": mode,
        "arrived": [i for i, event in enumerate(events) if event is not None],
        "events": events,
        "timed_out": timed_out,
    }


def _lock_waiting_step(wait: Wait) -> bool:
    """Lock the step's record while it still waits (call inside a transaction)."""
    return (
        StepRecord.objects.select_for_update()
        .filter(run_id=wait.run_id, step_id=wait.step_id, status=StepStatus.WAITING)
        .exists()
    )


def _parts(run_id: Any, step_id: str) -> list[Wait]:
    return list(
        Wait.objects.filter(run_id=run_id, step_id=step_id).select_related("event").order_by("part")
    )


def fill(wait: Wait, event: Any) -> bool | None:
    """Give ``event`` to one part of a wait for several events (inside a transaction).
    None: not taken (the step no longer waits, the part is filled, or another part of the
    step holds this event already). False: taken, the step still waits for its other parts.
    True: taken, and the step is decided."""
    if not _lock_waiting_step(wait):
        return None
    siblings = Wait.objects.filter(run_id=wait.run_id, step_id=wait.step_id)
    if siblings.filter(event_id=event.id).exists():
        return None  # one event fills one part: an all-wait for two "x" events needs two
    now = clock.now()
    if not siblings.filter(pk=wait.pk, status=Wait.Status.OPEN).update(
        status=Wait.Status.MATCHED, event_id=event.id, resolved_at=now
    ):
        return None
    if wait.mode == "all" and siblings.filter(status=Wait.Status.OPEN).exists():
        return False
    siblings.filter(status=Wait.Status.OPEN).update(status=Wait.Status.CANCELLED, resolved_at=now)
    output = outcome(_parts(wait.run_id, wait.step_id), wait.mode, timed_out=False)
    journal.complete_waiting(wait.run_id, wait.step_id, output)
    return True


def time_out(run_id: Any, step_id: str, mode: str) -> bool:
    """The step's deadline passed (inside a transaction): its open parts close and it completes
    with what arrived so far. False when an event decided it first."""
    probe = Wait(run_id=run_id, step_id=step_id)
    if not _lock_waiting_step(probe):
        return False
    Wait.objects.filter(run_id=run_id, step_id=step_id, status=Wait.Status.OPEN).update(
        status=Wait.Status.TIMED_OUT, resolved_at=clock.now()
    )
    output = outcome(_parts(run_id, step_id), mode, timed_out=True)
    return journal.complete_waiting(run_id, step_id, output)
