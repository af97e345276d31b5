"""A declarative definition as a diagram: every step in order, `if` conditions with the path
taken when they are false, parallel branches between a fork and a join, compensations and
child workflows beside the step they belong to, and the failure handler beside the end."""

from __future__ import annotations

from typing import Any

from django.urls import NoReverseMatch, reverse

from automation.definitions.validation import step_kind
from automation.graphs.model import Graph, Node

#: Where the flow goes on from: (node id, edge kind). An edge of kind "skip" bypasses a step
#: with an `if`: the path taken when its condition is false.
Tails = list[tuple[str, str]]

KINDS = {"wait_for_event": "wait"}


def definition_graph(definition: dict[str, Any], title: str = "") -> Graph:
    """The diagram of one version's definition (a valid one: it was saved)."""
    graph = Graph(title=title or str(definition.get("name", "")), source="definition")
    trigger = definition.get("trigger") or {}
    start = graph.add(Node("start", "Start", "start", _trigger_text(trigger)))
    tails = _chain(graph, definition.get("steps", []), [(start.id, "flow")])
    end = graph.add(Node("end", "End", "end", "output" if "output" in definition else ""))
    _join(graph, tails, end.id)
    if "on_failure" in definition:
        call = definition["on_failure"]
        graph.add(
            Node(
                "on_failure",
                "If the run fails",
                "on_failure",
                call.get("action", ""),
                side_of="end",
            )
        )
    return graph


def _trigger_text(trigger: dict[str, Any]) -> str:
    if not trigger.get("event"):
        return "started by hand or the API"
    return f"on {trigger['event']}" + (" (filtered)" if trigger.get("filter") else "")


def _chain(graph: Graph, steps: list[dict[str, Any]], tails: Tails) -> Tails:
    for step in steps:
        if "parallel" in step:
            tails = _parallel(graph, step, tails)
        else:
            node = graph.add(_node(step))
            _join(graph, tails, node.id)
            _extras(graph, step)
            tails = _after(node.id, step, tails)
    return tails


def _after(node_id: str, step: dict[str, Any], tails: Tails) -> Tails:
    """The step, and when it has an `if`, a bypass from the step before it to the one after
    (one per conditional step: a skipped step is passed through, as its journal row says)."""
    if "if" not in step:
        return [(node_id, "flow")]
    return [(node_id, "flow"), *[(src, "skip") for src, kind in tails if kind == "flow"]]


def _join(graph: Graph, tails: Tails, dst: str) -> None:
    for src, kind in tails:
        graph.link(src, dst, kind, "if false" if kind == "skip" else "")


def _parallel(graph: Graph, step: dict[str, Any], tails: Tails) -> Tails:
    branches = step["parallel"]
    fork = graph.add(_node(step, detail=f"{len(branches)} branches at once"))
    _join(graph, tails, fork.id)
    join = graph.add(Node(f"{step['id']}#join", "All branches done", "join"))
    for index, branch in enumerate(branches, start=1):
        graph.branches[f"{step['id']}[{index - 1}]"] = [inner["id"] for inner in branch]
        first = len(graph.edges)
        ends = _chain(graph, branch, [(fork.id, "flow")])
        if len(graph.edges) > first:
            graph.edges[first].label = f"branch {index}"
        _join(graph, ends, join.id)
    return _after(join.id, step, tails)


def _node(step: dict[str, Any], detail: str = "") -> Node:
    kind = step_kind(step) or "action"
    return Node(
        step["id"],
        step["id"],
        KINDS.get(kind, kind),
        detail or _detail(kind, step),
        condition=str(step.get("if", "")),
    )


def _detail(kind: str, step: dict[str, Any]) -> str:
    spec = step.get(kind)
    if kind == "action":
        return str(spec)
    if kind == "approval":
        assignees = ", ".join(map(str, spec.get("assignees", [])))
        return f"approval by {assignees}" if assignees else "approval"
    if kind == "wait_for_event":
        timeout = f", up to {spec['timeout']}" if spec.get("timeout") else ""
        return f"waits for {spec.get('event', '')}{timeout}"
    if kind == "sleep":
        return f"sleeps {spec}"
    if kind == "child":
        return f"runs {spec.get('workflow', '')}"
    return ""


def _extras(graph: Graph, step: dict[str, Any]) -> None:
    """Compensation and child workflow: drawn beside the step, joined by their own edges."""
    step_id = step["id"]
    if "compensate" in step:
        undo = graph.add(
            Node(
                f"compensate:{step_id}",
                f"Undo {step_id}",
                "compensation",
                str(step["compensate"].get("action", "")),
                side_of=step_id,
            )
        )
        graph.link(step_id, undo.id, "compensate", "undo")
    if "child" in step:
        name = str(step["child"].get("workflow", ""))
        child = graph.add(
            Node(
                f"child:{step_id}",
                name,
                "workflow",
                "child workflow",
                side_of=step_id,
                href=workflow_href(name),
            )
        )
        graph.link(step_id, child.id, "child", "child")


def workflow_href(name: str) -> str:
    """The page of the workflow ``name`` ("" for a name no page URL can hold)."""
    try:
        return reverse("app:workflow", args=[name]) if name else ""
    except NoReverseMatch:
        return ""
