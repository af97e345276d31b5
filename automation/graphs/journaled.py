"""A code workflow as a diagram, drawn from its journals: a Python function has no shape to
read before it runs, so the diagram shows the paths its latest runs actually took, each edge
with how many of them took it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from statistics import mean
from typing import Any

from automation.graphs.declared import workflow_href
from automation.graphs.model import Graph, Node
from automation.models import Run, StepRecord

#: How many runs a code workflow's diagram is drawn from (the latest ones).
RUNS_READ = 50
#: More distinct steps than this (ids made in a loop) would not be readable as a diagram.
MAX_STEPS = 40

KINDS = {
    "step": "step",
    "sleep": "sleep",
    "wait_event": "wait",
    "approval": "approval",
    "emit": "emit",
    "child": "child",
    "parallel": "parallel",
}
#: Drawn beside the flow (compensations, the failure handler) or not at all: recorded values
#: (``ctx.now()``, ``ctx.uuid()``) are not steps, as on the run's timeline.
HIDDEN_KINDS = (StepRecord.Kind.COMPENSATION, StepRecord.Kind.ON_FAILURE, StepRecord.Kind.VALUE)
FIELDS = ("run_id", "step_id", "kind", "seq", "started_at", "id")
#: The kinds whose input the diagram names (the workflow a child runs, the type an emit sends,
#: the function a branch runs): only those keys are read, inputs can be large.
SHOWN_INPUTS = (StepRecord.Kind.CHILD, StepRecord.Kind.EMIT, StepRecord.Kind.BRANCH)


def journal_graph(title: str, runs: Iterable[Any]) -> Graph:
    """The paths the given runs took (``runs``: Run ids), merged into one diagram."""
    run_ids = list(runs)
    graph = Graph(title=title, source="journals", runs_read=len(run_ids))
    records = StepRecord.objects.filter(run_id__in=run_ids).order_by(*FIELDS[-2:]).values(*FIELDS)
    inputs = _inputs(run_ids)
    by_run: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        record["input"] = inputs.get(record["step_id"])
        by_run[record["run_id"]].append(record)
    stages = {run_id: _stages(by_run.get(run_id, [])) for run_id in run_ids}
    keep = _order(stages.values())
    graph.not_drawn = max(0, len(keep) - MAX_STEPS)
    keep = set(list(keep)[:MAX_STEPS])
    graph.add(Node("start", "Start", "start", "run started"))
    for stage_list in stages.values():
        _draw_run(graph, stage_list, keep)
    graph.add(Node("end", "End", "end"))
    _sides(graph, by_run)
    return graph


def _inputs(run_ids: list[Any]) -> dict[str, dict[str, Any]]:
    """What the diagram names of each child, emit and branch step, by step id (the latest
    run's): the keys ``workflow``, ``type`` and ``fn`` of its input."""
    rows = (
        StepRecord.objects.filter(run_id__in=run_ids, kind__in=SHOWN_INPUTS)
        .order_by("started_at", "id")
        .values_list("step_id", "input__workflow", "input__type", "input__fn")
    )
    return {step_id: {"workflow": w, "type": t, "fn": f} for step_id, w, t, f in rows}


def recent_runs(workflow: Any, include: Any = None, version: Any = None) -> list[Any]:
    """The ids of the runs a code workflow's diagram is drawn from (of ``version`` only, when
    given), ``include`` among them."""
    runs = Run.objects.filter(workflow=workflow)
    if version is not None:
        runs = runs.filter(version=version)
    ids = list(runs.order_by("-created_at", "-id").values_list("id", flat=True)[:RUNS_READ])
    if include is not None and include not in ids:
        ids.append(include)
    return ids


def _stages(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """A run's steps in the order it reached them; a parallel step is followed by one stage
    holding its branches (``name[0]``, ``name[1]`` …), which have no order among themselves."""
    ordered = sorted((r for r in records if r["seq"] is not None), key=lambda r: r["seq"])
    branches: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if record["kind"] == StepRecord.Kind.BRANCH:
            branches[record["step_id"].rsplit("[", 1)[0]].append(record)
    stages: list[list[dict[str, Any]]] = []
    for record in ordered:
        if record["kind"] in HIDDEN_KINDS:
            continue
        stages.append([record])
        if record["kind"] == StepRecord.Kind.PARALLEL and branches.get(record["step_id"]):
            stages.append(sorted(branches[record["step_id"]], key=lambda r: r["step_id"]))
    return stages


def _order(all_stages: Iterable[list[list[dict[str, Any]]]]) -> dict[str, float]:
    """Every step id, ordered by where runs reach it on average (first seen breaks ties)."""
    positions: dict[str, list[int]] = defaultdict(list)
    for stages in all_stages:
        for index, stage in enumerate(stages):
            for record in stage:
                positions[record["step_id"]].append(index)
    order = {step_id: mean(seen) for step_id, seen in positions.items()}
    return dict(sorted(order.items(), key=lambda item: item[1]))


def _draw_run(graph: Graph, stages: list[list[dict[str, Any]]], keep: set[str]) -> None:
    previous = ["start"]
    for stage in stages:
        current = [r for r in stage if r["step_id"] in keep]
        if not current:
            continue
        for record in current:
            graph.add(_node(record))
            for src in previous:
                graph.link(src, record["step_id"])
        previous = [r["step_id"] for r in current]
    for src in previous:
        graph.link(src, "end")


def _node(record: dict[str, Any]) -> Node:
    kind = KINDS.get(record["kind"], "step")
    named = record["input"] or {}
    if record["kind"] == StepRecord.Kind.BRANCH:
        fn = str(named.get("fn") or "").rsplit(":", 1)[-1]
        return Node(record["step_id"], record["step_id"], "branch", fn or "parallel branch")
    detail = ""
    if kind == "child" and named.get("workflow"):
        detail = f"runs {named['workflow']}"
    elif kind == "emit" and named.get("type"):
        detail = f"emits {named['type']}"
    elif kind != "step":
        detail = StepRecord.Kind(record["kind"]).label.lower()
    return Node(record["step_id"], record["step_id"], kind, detail)


def _sides(graph: Graph, by_run: dict[Any, list[dict[str, Any]]]) -> None:
    """Compensations beside the step they undo, child workflows beside the step that started
    them, the failure handler beside the end: from any run that recorded them."""
    for records in by_run.values():
        for record in records:
            step_id, kind = record["step_id"], record["kind"]
            if kind == StepRecord.Kind.COMPENSATION:
                owner = step_id.removeprefix("compensate:")
                if owner in graph.nodes:
                    label = f"Undo {owner}"
                    graph.add(Node(step_id, label, "compensation", "compensation", side_of=owner))
                    graph.link(owner, step_id, "compensate", "undo")
            elif kind == StepRecord.Kind.ON_FAILURE:
                graph.add(Node("on_failure", "If the run fails", "on_failure", side_of="end"))
            elif kind == StepRecord.Kind.CHILD and step_id in graph.nodes:
                _child_side(graph, step_id, record["input"] or {})


def _child_side(graph: Graph, step_id: str, named: dict[str, Any]) -> None:
    name = str(named.get("workflow") or "")
    if not name or f"child:{step_id}" in graph.nodes:
        return
    href = workflow_href(name)
    node = Node(f"child:{step_id}", name, "workflow", "child workflow", side_of=step_id, href=href)
    graph.add(node)
    graph.link(step_id, node.id, "child", "child")
