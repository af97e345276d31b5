"""A run's state painted on its workflow's diagram: each node done, running, waiting,
failed, skipped, compensated or cancelled, from the run's journal."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from automation.graphs.model import Graph
from automation.models import Run, RunStatus, StepRecord, StepStatus

STATES = {
    StepStatus.SUCCEEDED: "done",
    StepStatus.RUNNING: "running",
    StepStatus.WAITING: "waiting",
    StepStatus.FAILED: "failed",
    StepStatus.SKIPPED: "skipped",
    StepStatus.CANCELLED: "cancelled",
}
RUN_STATES = {
    RunStatus.PENDING: "",
    RunStatus.RUNNING: "running",
    RunStatus.WAITING: "waiting",
    RunStatus.SUCCEEDED: "done",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "cancelled",
}


def run_overlay(graph: Graph, run: Run) -> Graph:
    """Paint ``run``'s journal on ``graph`` (in place; returned for chaining)."""
    _set(graph, "start", "done" if run.started_at else "")
    records = list(
        run.steps.only("step_id", "kind", "status", "output").order_by("started_at", "id")
    )
    for record in records:
        _paint(graph, record)
    for record in records:  # after every step is painted: an undo overrides "done"
        if record.kind == StepRecord.Kind.COMPENSATION and record.status == StepStatus.SUCCEEDED:
            _set(graph, record.step_id.removeprefix("compensate:"), "compensated")
    if run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED):
        _set(graph, "end", RUN_STATES[run.status])
    _child_links(graph, run)
    return graph


def _set(graph: Graph, node_id: str, state: str) -> None:
    node = graph.nodes.get(node_id)
    if node is not None:
        node.state = state


def _paint(graph: Graph, record: StepRecord) -> None:
    state = STATES.get(record.status, "")
    members = graph.branches.get(record.step_id)
    if members is None:
        _set(graph, record.step_id, state)
        if record.kind == StepRecord.Kind.CHILD:
            _set(graph, f"child:{record.step_id}", state)
        if record.kind == StepRecord.Kind.PARALLEL and record.status == StepStatus.SUCCEEDED:
            _set(graph, f"{record.step_id}#join", "done")
        return
    # A declarative branch: its steps are one journal row; a finished branch tells which
    # of them its `if` skipped.
    outputs: Any = record.output if record.status == StepStatus.SUCCEEDED else None
    for step_id in members:
        entry = outputs.get(step_id) if isinstance(outputs, dict) else None
        if isinstance(entry, dict):
            _set(graph, step_id, "skipped" if entry.get("skipped") else "done")
        else:
            _set(graph, step_id, state)


def _child_links(graph: Graph, run: Run) -> None:
    """A child node on a run's diagram opens the child run itself."""
    sides = [n for n in graph.nodes.values() if n.kind == "workflow" and n.id.startswith("child:")]
    if not sides:
        return
    children = dict(Run.objects.filter(parent_run=run).values_list("parent_step_id", "id"))
    for node in sides:
        child_id = children.get(node.side_of)
        if child_id is not None:
            node.href = reverse("app:run", args=[child_id])
