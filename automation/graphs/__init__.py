"""Workflow diagrams, drawn on the server as SVG: a declarative workflow from its definition,
a code workflow from the journals of its latest runs, and a run's state on either."""

from __future__ import annotations

from typing import Any

from automation.graphs.declared import definition_graph
from automation.graphs.journaled import journal_graph, recent_runs
from automation.graphs.model import Edge, Graph, Node
from automation.graphs.overlay import run_overlay
from automation.graphs.svg import describe, render_svg
from automation.models import Run, Workflow, WorkflowVersion

__all__ = [
    "Edge",
    "Graph",
    "Node",
    "definition_graph",
    "describe",
    "journal_graph",
    "render_svg",
    "run_graph",
    "run_overlay",
    "workflow_graph",
]


def workflow_graph(workflow: Workflow, version: WorkflowVersion | None = None) -> Graph:
    """A declarative workflow's version (the latest by default) or a code workflow's paths
    (those its runs on ``version`` took, when given)."""
    if workflow.kind == Workflow.Kind.DECLARATIVE:
        latest = version or workflow.latest_version()
        if latest is not None and isinstance(latest.definition, dict):
            title = f"{workflow.name} v{latest.number}"
            return definition_graph(latest.definition, title)
    title = f"{workflow.name} v{version.number}" if version else workflow.name
    return journal_graph(title, recent_runs(workflow, version=version))


def run_graph(run: Run) -> Graph:
    """The diagram of the version ``run`` is pinned to, with the run's state on it."""
    workflow: Any = run.workflow
    if workflow.kind == Workflow.Kind.DECLARATIVE and isinstance(run.version.definition, dict):
        graph = definition_graph(run.version.definition, f"{workflow.name} v{run.version.number}")
    else:
        graph = journal_graph(workflow.name, recent_runs(workflow, include=run.id))
    return run_overlay(graph, run)
