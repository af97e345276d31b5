"""``{% workflow_diagram workflow %}`` and ``{% run_diagram run %}``: the server-drawn SVG
diagram of a workflow, or of a run with its state (see automation/graphs)."""

from __future__ import annotations

from typing import Any

from django import template

from automation.graphs import Graph, render_svg, run_graph, workflow_graph
from automation.graphs.model import STATE_WORDS
from automation.models import Run, Workflow

register = template.Library()


@register.inclusion_tag("app/graph.html")
def workflow_diagram(workflow: Workflow) -> dict[str, Any]:
    return _context(workflow_graph(workflow), "wfg-workflow", run=None)


@register.inclusion_tag("app/graph.html")
def run_diagram(run: Run) -> dict[str, Any]:
    return _context(run_graph(run), "wfg-run", run=run)


def _context(graph: Graph, uid: str, run: Run | None) -> dict[str, Any]:
    present = {node.state for node in graph.nodes.values() if node.state}
    return {
        "graph": graph,
        "svg": render_svg(graph, uid),
        "run": run,
        "legend": [(state, word) for state, word in STATE_WORDS.items() if state in present],
    }
