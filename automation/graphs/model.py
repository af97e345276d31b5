"""What a workflow diagram is made of, before it is laid out: nodes (steps and the few
synthetic ones: start, end, joins, compensations, children) and edges between them."""

from __future__ import annotations

from dataclasses import dataclass, field

#: The states a run's page paints on a node, each with the word shown in it (colour is never
#: the only sign of a state).
STATE_WORDS = {
    "done": "done",
    "running": "running",
    "waiting": "waiting",
    "failed": "failed",
    "skipped": "skipped",
    "compensated": "compensated",
    "cancelled": "cancelled",
}


@dataclass
class Node:
    id: str
    label: str
    kind: str  # start, end, action, approval, wait, sleep, child, parallel, join, compensation,
    # on_failure, step (a code step), emit, value, workflow (a child's workflow)
    detail: str = ""
    condition: str = ""  # the step's `if`, shown on the node
    side_of: str = ""  # drawn beside this node instead of in the flow
    href: str = ""
    state: str = ""  # from a run: a key of STATE_WORDS, or "" (not reached)


@dataclass
class Edge:
    src: str
    dst: str
    kind: str = "flow"  # flow, skip, compensate, child, back
    label: str = ""
    count: int = 0  # journals: how many of the runs read took this path


@dataclass
class Graph:
    title: str
    source: str  # "definition" (declarative) or "journals" (code: paths runs took)
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    runs_read: int = 0  # journals: how many runs the drawing comes from
    not_drawn: int = 0  # journals: steps left out to keep the drawing readable
    #: Declarative parallel steps: the step ids of each branch, by the branch's journal id
    #: (``name[0]``): branch steps have no journal rows of their own.
    branches: dict[str, list[str]] = field(default_factory=dict)

    def add(self, node: Node) -> Node:
        self.nodes.setdefault(node.id, node)
        return self.nodes[node.id]

    def link(self, src: str, dst: str, kind: str = "flow", label: str = "") -> Edge:
        for edge in self.edges:
            if (edge.src, edge.dst, edge.kind) == (src, dst, kind):
                edge.count += 1
                return edge
        edge = Edge(src, dst, kind, label, count=1)
        self.edges.append(edge)
        return edge

    def flow_nodes(self) -> list[Node]:
        return [node for node in self.nodes.values() if not node.side_of]
