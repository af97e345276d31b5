"""The replay check: replay stored journals of code workflows against the code now loaded,
without side effects, and report where the code no longer walks the path a run recorded.

Run it before a deploy (``manage.py check_replay``): a divergence found there would otherwise
fail the run (DeterminismError) the next time a worker wakes it.

The replay reads recorded results only. ``ReplayContext`` stops at the first operation the
journal has no finished result for (the end of recorded history: that is where the run goes on
with the new code), so no action, step function, timer or wait is started; the whole check runs
in a transaction that is rolled back, so even a workflow body that writes by itself leaves
nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from automation.engine import registry, search
from automation.engine.context import Context
from automation.engine.errors import (
    DeterminismError,
    ReplayEnd,
    StepFailed,
    UnknownWorkflow,
)
from automation.engine.specs import spec_of, trigger_of
from automation.models import Run, RunStatus, StepRecord, StepStatus, Workflow

FINISHED_STEP = (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED)


@dataclass(frozen=True)
class ReplayOutcome:
    """How one run replayed: ``ok``, ``diverged`` (``step`` and ``message`` say where and
    why) or ``skipped`` (``message`` says why it was not checked)."""

    run_id: str
    workflow: str
    version: int
    run_status: str
    result: str
    step: str = ""
    message: str = ""


class ReplayContext(Context):
    """A Context that only reads the journal: the first operation with no finished record
    ends the replay (ReplayEnd) instead of doing work."""

    def __init__(self, run: Run, journal: list[StepRecord], spec: Any) -> None:
        super().__init__(run, journal, spec, owner=None)
        self.cancelling = True  # no cancel request or deadline check: nothing is executed

    def _enter(
        self, step_id: str, kind: str, *, ordered: bool = True
    ) -> tuple[StepRecord | None, int | None]:
        record, seq = super()._enter(step_id, kind, ordered=ordered)
        if record is None or record.status not in FINISHED_STEP:
            raise ReplayEnd(step_id)
        return record, seq

    def _mark_patch(self, change_id: str) -> StepRecord:
        raise ReplayEnd(f"patch:{change_id}")

    def set_search_attributes(self, attributes: dict[str, Any]) -> None:
        """Checked, never written."""
        search.merged(self.run.search or {}, attributes)

    def unreached(self) -> StepRecord | None:
        """The first recorded operation the code did not reach, if any."""
        left = [r for r in self._by_seq.values() if r.seq is not None and r.seq >= self._seq]
        return min(left, key=lambda r: r.seq or 0) if left else None


def runs_to_check(
    *, workflow: str | None = None, since: datetime | None = None, limit: int = 1000
) -> list[Run]:
    """The newest ``limit`` runs of code workflows (of ``workflow``, created at or after
    ``since``), newest first."""
    runs = Run.objects.filter(workflow__kind=Workflow.Kind.CODE).select_related(
        "workflow", "version", "trigger_event"
    )
    if workflow:
        runs = runs.filter(workflow__name=workflow)
    if since is not None:
        runs = runs.filter(created_at__gte=since)
    return list(runs.order_by("-created_at")[:limit])


def check_runs(runs: list[Run]) -> Iterator[ReplayOutcome]:
    for run in runs:
        yield replay_run(run)


def replay_run(run: Run) -> ReplayOutcome:
    """Replay ``run`` against the loaded code; nothing it does is kept."""
    with transaction.atomic():
        try:
            return _replay(run)
        finally:
            transaction.set_rollback(True)


def _outcome(run: Run, result: str, step: str = "", message: str = "") -> ReplayOutcome:
    return ReplayOutcome(
        run_id=str(run.id),
        workflow=run.workflow.name,
        version=run.version.number,
        run_status=run.status,
        result=result,
        step=step,
        message=message,
    )


def _replay(run: Run) -> ReplayOutcome:
    known = registry.known_versions(run.workflow.name)
    if known and run.version.number > known[-1]:
        return _outcome(run, "skipped", message="its version is newer than the loaded code")
    try:
        spec = spec_of(run)
    except UnknownWorkflow as exc:
        if run.finished:
            return _outcome(run, "skipped", message="finished, and its version left the code")
        return _outcome(run, "diverged", "(workflow)", str(exc))
    ctx = ReplayContext(run, list(StepRecord.objects.filter(run=run)), spec)
    try:
        spec.fn(ctx, trigger_of(run))
    except ReplayEnd:
        return _outcome(run, "ok")
    except DeterminismError as exc:
        return _outcome(run, "diverged", exc.step_id or "(workflow)", str(exc))
    except StepFailed:
        pass  # the failure the journal recorded: the run fails (or compensates) there again
    except Exception as exc:  # the body now raises where the recorded run went on
        if run.status != RunStatus.FAILED:
            return _outcome(
                run, "diverged", "(workflow)", f"the workflow now raises {exc!r} on replay"
            )
    left = ctx.unreached()
    if left is not None:
        return _outcome(
            run,
            "diverged",
            left.step_id,
            f"the journal has {left.kind} {left.step_id!r} at operation #{(left.seq or 0) + 1}; "
            "the code now ends before reaching it",
        )
    return _outcome(run, "ok")
