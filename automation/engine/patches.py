"""``ctx.patched(change_id)``: change a workflow's code without breaking the runs in flight.

A run answers the question once per change id and replay. Its journal decides:

- a marker record ``patch:<change id>`` is there: the run took the new path before, True;
- the journal holds operations at or after this point but no marker: the run went past here on
  the old code, False (it keeps the old path, and its replay still matches its journal);
- nothing recorded here yet: new ground, so the run records the marker and answers True.

The marker has no position in the replay order (``seq`` None), so adding a ``patched()`` call
moves no recorded step.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from automation.engine import clock
from automation.engine.errors import WorkflowError
from automation.models import StepRecord, StepStatus

if TYPE_CHECKING:
    from automation.engine.context import Context

MARKER_PREFIX = "patch:"
CHANGE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")


def marker_id(change_id: str) -> str:
    if not isinstance(change_id, str) or not CHANGE_ID_RE.match(change_id):
        raise WorkflowError(
            f"patched({change_id!r}): a change id is 1-100 letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return MARKER_PREFIX + change_id


def decide(ctx: Context, change_id: str) -> bool | None:
    """True (marker recorded), False (old history goes on without it), None (new ground)."""
    step_id = marker_id(change_id)
    record = ctx.recorded(step_id)
    if record is not None:
        if record.kind != StepRecord.Kind.MARKER:
            raise WorkflowError(f"{step_id!r} is a {record.kind} in the journal, not a marker")
        return True
    if ctx.history_continues():
        return False
    return None


def record_marker(ctx: Context, change_id: str) -> StepRecord:
    now = clock.now()
    return StepRecord.objects.create(
        run=ctx.run,
        step_id=marker_id(change_id),
        seq=None,
        kind=StepRecord.Kind.MARKER,
        status=StepStatus.SUCCEEDED,
        output={"change_id": change_id},
        started_at=now,
        finished_at=now,
    )
