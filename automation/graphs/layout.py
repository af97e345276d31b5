"""Where each node of a diagram goes: layers top to bottom (the longest path from the start),
nodes of a layer side by side, ordered after their predecessors to keep edges from crossing;
nodes drawn beside another (compensations, children, the failure handler) to the right."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from automation.graphs.model import Edge, Graph

NODE_W, NODE_H = 176, 62
H_GAP, V_GAP = 24, 46
LANE = 72  # room on the left for edges that skip layers
SIDE_GAP = 56
PAD = 16


@dataclass
class Box:
    x: float
    y: float
    layer: int

    @property
    def cx(self) -> float:
        return self.x + NODE_W / 2


@dataclass
class Layout:
    boxes: dict[str, Box]
    back: set[int]  # indexes of edges that go back up (a loop in a code workflow)
    width: float
    height: float
    main_right: float


def layout(graph: Graph) -> Layout:
    flow = [node.id for node in graph.flow_nodes()]
    in_flow = set(flow)
    edges = [
        (i, e)
        for i, e in enumerate(graph.edges)
        if e.kind in ("flow", "skip") and {e.src, e.dst} <= in_flow
    ]
    order, back = _topological(flow, edges)
    layers = _layers(order, [(i, e) for i, e in edges if i not in back])
    drawn = {node_id: i for i, node_id in enumerate(flow)}
    rows = _rows(order, layers, [e for i, e in edges if i not in back], drawn)
    main_w = max((len(row) * (NODE_W + H_GAP) - H_GAP for row in rows), default=NODE_W)
    boxes: dict[str, Box] = {}
    for index, row in enumerate(rows):
        row_w = len(row) * (NODE_W + H_GAP) - H_GAP
        x0 = LANE + (main_w - row_w) / 2
        for position, node_id in enumerate(row):
            boxes[node_id] = Box(x0 + position * (NODE_W + H_GAP), _y(index), index)
    main_right = LANE + main_w
    right = _place_sides(graph, boxes, main_right)
    height = _y(len(rows)) - V_GAP + PAD
    return Layout(boxes, back, right + PAD + (LANE / 2 if back else 0), height, main_right)


def _y(layer: int) -> float:
    return PAD + layer * (NODE_H + V_GAP)


def _topological(flow: list[str], edges: list[tuple[int, Edge]]) -> tuple[list[str], set[int]]:
    """Nodes in an order where every edge but the back ones points forward (depth first from
    the start; an edge to a node still being visited is a back edge)."""
    out: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for index, edge in edges:
        out[edge.src].append((index, edge.dst))
    state: dict[str, int] = {}
    finished: list[str] = []
    back: set[int] = set()
    for root in flow:
        if root in state:
            continue
        stack = [(root, iter(out[root]))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            for index, child in children:
                if state.get(child) == 1:
                    back.add(index)
                elif child not in state:
                    state[child] = 1
                    stack.append((child, iter(out[child])))
                    break
            else:
                state[node] = 2
                finished.append(node)
                stack.pop()
    return finished[::-1], back


def _layers(order: list[str], edges: list[tuple[int, Edge]]) -> dict[str, int]:
    layer = dict.fromkeys(order, 0)
    incoming: dict[str, list[str]] = defaultdict(list)
    for _, edge in edges:
        incoming[edge.dst].append(edge.src)
    for node in order:
        if incoming[node]:
            layer[node] = max(layer[src] for src in incoming[node]) + 1
    return layer


def _rows(
    order: list[str], layers: dict[str, int], edges: list[Edge], rank: dict[str, int]
) -> list[list[str]]:
    """Each layer's nodes, ordered by where their predecessors stand (then as first drawn)."""
    rows: list[list[str]] = [[] for _ in range(max(layers.values(), default=-1) + 1)]
    preds: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        preds[edge.dst].append(edge.src)
    for node in order:
        rows[layers[node]].append(node)
    place: dict[str, float] = {}
    for row in rows:
        row.sort(key=lambda n: (_mean([place[p] for p in preds[n] if p in place]), rank[n]))
        for position, node in enumerate(row):
            place[node] = position - (len(row) - 1) / 2
    return [row for row in rows if row]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _place_sides(graph: Graph, boxes: dict[str, Box], main_right: float) -> float:
    used: dict[int, int] = defaultdict(int)
    right = main_right
    for node in graph.nodes.values():
        owner = boxes.get(node.side_of) if node.side_of else None
        if owner is None:
            continue
        x = main_right + SIDE_GAP + used[owner.layer] * (NODE_W + H_GAP)
        used[owner.layer] += 1
        boxes[node.id] = Box(x, owner.y, owner.layer)
        right = max(right, x + NODE_W)
    return right
