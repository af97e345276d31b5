"""What replaying a run needs besides its journal: the code (or definition) of its workflow
version, and its trigger as the workflow function sees it."""

from __future__ import annotations

from typing import Any

from automation.engine import ports, registry
from automation.models import Run, TriggerOutcome, Workflow

__all__ = ["EventView", "spec_of", "trigger_of"]


class EventView:
    """The trigger event as workflow code sees it: ``event.data``, ``event.type``, …"""

    def __init__(self, trigger: dict[str, Any]) -> None:
        self._trigger = trigger

    def __getattr__(self, name: str) -> Any:
        try:
            return self._trigger[name]
        except KeyError:
            raise AttributeError(f"event has no attribute {name!r}") from None

    def __getitem__(self, name: str) -> Any:
        return self._trigger[name]

    def as_dict(self) -> dict[str, Any]:
        return dict(self._trigger)


def spec_of(run: Run) -> registry.WorkflowSpec:
    if run.workflow.kind == Workflow.Kind.DECLARATIVE:
        build = ports.spec_builder()  # automation.definitions.interpreter.workflow_spec
        return build(run.workflow.name, run.version.number, run.version.definition)
    return registry.get_workflow(run.workflow.name, run.version.number)


def _batched(run: Run) -> bool:
    """Whether the run's trigger batches events (read from the version, so the runs of other
    workflows cost no query)."""
    if run.workflow.kind == Workflow.Kind.DECLARATIVE:
        return bool(((run.version.definition or {}).get("trigger") or {}).get("batch"))
    known = registry.known_versions(run.workflow.name)
    if run.version.number not in known:
        return False
    return registry.get_workflow(run.workflow.name, run.version.number).flow.batch is not None


def trigger_of(run: Run) -> EventView:
    if run.trigger_event is not None:
        trigger = run.trigger_event.as_trigger()
        if _batched(run):
            # Its batch, in the order the events joined it: "trigger" is the first.
            joined = (
                TriggerOutcome.objects.filter(run_id=run.id, outcome=TriggerOutcome.Outcome.BATCHED)
                .select_related("event")
                .order_by("created_at", "id")
            )
            trigger["events"] = [outcome.event.as_trigger() for outcome in joined]
        return EventView(trigger)
    return EventView(
        {
            "id": None,
            "type": None,
            "source": "manual",
            "subject": "",
            "data": run.input,
            "body": run.input,
            "headers": {},
            "correlation_id": run.correlation_id,
            "causation_id": "",
            "occurred_at": None,
            "received_at": None,
        }
    )
