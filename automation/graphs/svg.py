"""A laid-out diagram as accessible inline SVG: a title and a description that reads the
whole flow as text, every node labelled in words (its kind, its state from a run, its `if`),
colour only repeating what the words say. No script, no external file: it renders in the
operator UI, in the admin and in a saved page alike."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from automation.graphs.layout import NODE_H, NODE_W, Layout, layout
from automation.graphs.model import STATE_WORDS, Edge, Graph, Node

KIND_WORDS = {
    "start": "start",
    "end": "end",
    "action": "action",
    "step": "step",
    "approval": "approval",
    "wait": "wait for event",
    "sleep": "sleep",
    "child": "child workflow",
    "parallel": "parallel",
    "branch": "branch",
    "join": "join",
    "compensation": "compensation",
    "on_failure": "failure handler",
    "workflow": "workflow",
    "emit": "emit event",
    "value": "recorded value",
}
#: The narrowest a wide diagram is drawn (px): smaller, its 12 px text would shrink below ~8 px.
MIN_WIDTH = 420

STYLE = """
.wfg text,.wfg rect{stroke-linecap:butt;stroke-linejoin:miter}
.wfg text{stroke:none;font:12px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;fill:#1f2933}
.wfg .wfg-label{font-weight:600;font-size:13px}
.wfg .wfg-tag{font-size:10px;letter-spacing:.04em;text-transform:uppercase;fill:#52606d}
.wfg .wfg-detail{font-size:11px;fill:#3e4c59}
.wfg .wfg-edge-label{font-size:10px;fill:#52606d;paint-order:stroke;stroke:#fff;stroke-width:4px}
.wfg rect{fill:#fff;stroke:#9aa5b1;stroke-width:1.5}
.wfg .k-start rect,.wfg .k-end rect{fill:#f5f7fa}
.wfg .k-approval rect{stroke:#7c5cc4}
.wfg .k-wait rect,.wfg .k-sleep rect{stroke:#b7791f}
.wfg .k-parallel rect,.wfg .k-join rect{stroke:#2b6cb0}
.wfg .k-compensation rect,.wfg .k-on_failure rect{stroke:#9b2c2c;stroke-dasharray:5 3}
.wfg .k-workflow rect{stroke:#2f855a;stroke-dasharray:2 2}
.wfg .s-done rect{fill:#e3f6e8;stroke:#1e7b34;stroke-width:2.5}
.wfg .s-running rect{fill:#e1efff;stroke:#1c5fb8;stroke-width:2.5}
.wfg .s-waiting rect{fill:#fff4d6;stroke:#a86b00;stroke-width:2.5}
.wfg .s-failed rect{fill:#fde2e1;stroke:#b42318;stroke-width:2.5}
.wfg .s-skipped rect{fill:#f2f3f5;stroke:#7b8794;stroke-dasharray:4 3}
.wfg .s-compensated rect{fill:#efe6fb;stroke:#6b3fb5;stroke-width:2.5}
.wfg .s-cancelled rect{fill:#eceff1;stroke:#616e7c}
.wfg .s-skipped text{fill:#52606d}
.wfg path{fill:none;stroke:#7b8794;stroke-width:1.5}
.wfg .e-skip path{stroke-dasharray:5 4}
.wfg .e-compensate path{stroke:#9b2c2c;stroke-dasharray:5 3}
.wfg .e-child path{stroke:#2f855a}
.wfg .e-back path{stroke-dasharray:2 3}
.wfg .e-taken path{stroke:#1e7b34;stroke-width:2.5}
.wfg a:focus rect{stroke:#1c5fb8;stroke-width:3}
"""


def render_svg(graph: Graph, uid: str) -> SafeString:
    """The diagram as an <svg> element; ``uid`` keeps its ids unique in the page."""
    placed = layout(graph)
    # An image's children are hidden from assistive technology: a diagram with links (child
    # workflows and runs) is a group, so its links stay reachable.
    role = "group" if any(node.href for node in graph.nodes.values()) else "img"
    parts = [
        f'<svg class="wfg" id="{uid}" role="{role}" aria-labelledby="{uid}-t {uid}-d" '
        f'viewBox="0 0 {placed.width:.0f} {placed.height:.0f}" '
        f'width="{placed.width:.0f}" height="{placed.height:.0f}" '
        f'preserveAspectRatio="xMidYMin meet" data-source="{graph.source}" '
        # Inline, to win over a page's own rules for icons (svg {width: 18px}). It shrinks to
        # a narrow screen down to MIN_WIDTH (text stays readable); below, its box scrolls.
        f'style="width:{placed.width:.0f}px;max-width:100%;'
        f"min-width:{min(placed.width, MIN_WIDTH):.0f}px;"
        f'height:auto;stroke:none;fill:none">',
        f'<title id="{uid}-t">{escape(_title(graph))}</title>',
        f'<desc id="{uid}-d">{escape(describe(graph))}</desc>',
        f"<style>{STYLE}</style>",
        _markers(uid),
    ]
    parts += [_edge(graph, placed, index, edge, uid) for index, edge in enumerate(graph.edges)]
    parts += [_node(node, placed) for node in graph.nodes.values() if node.id in placed.boxes]
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above went through escape()


def _title(graph: Graph) -> str:
    if graph.source == "journals":
        return f"Diagram of {graph.title}: the paths its latest {graph.runs_read} runs took"
    return f"Diagram of {graph.title}"


def describe(graph: Graph) -> str:
    """The diagram in words: each node with its kind, state and where it leads."""
    lines = []
    for node in graph.nodes.values():
        words = [f"{node.label} ({KIND_WORDS.get(node.kind, node.kind)})"]
        if node.condition:
            words.append(f"if {node.condition}")
        if node.state:
            words.append(STATE_WORDS[node.state])
        targets = [
            f"{_edge_word(e)} {graph.nodes[e.dst].label}"
            for e in graph.edges
            if e.src == node.id and e.dst in graph.nodes
        ]
        if targets:
            words.append("then " + ", ".join(targets))
        lines.append(", ".join(words))
    return ". ".join(lines) + "."


def _edge_word(edge: Edge) -> str:
    return {
        "skip": "when skipped",
        "compensate": "undone by",
        "child": "starts",
    }.get(edge.kind, "to")


def _markers(uid: str) -> str:
    return (
        "<defs>"
        + "".join(
            f'<marker id="{uid}-a-{kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" '
            f'style="fill:{color};stroke:none"/></marker>'
            for kind, color in (
                ("flow", "#7b8794"),
                ("compensate", "#9b2c2c"),
                ("child", "#2f855a"),
                ("taken", "#1e7b34"),
            )
        )
        + "</defs>"
    )


def _edge(graph: Graph, placed: Layout, index: int, edge: Edge, uid: str) -> str:
    src, dst = placed.boxes.get(edge.src), placed.boxes.get(edge.dst)
    if src is None or dst is None:
        return ""
    kind = "back" if index in placed.back else edge.kind
    if edge.kind in ("compensate", "child"):
        points = (src.x + NODE_W, src.y + NODE_H / 2, dst.x, dst.y + NODE_H / 2)
        d, mid = _line(*points)
    elif kind == "back":
        d, mid = _around(src.x + NODE_W, src.y + NODE_H / 2, dst.x + NODE_W, dst.y + NODE_H / 2, 1)
    elif dst.layer - src.layer > 1 or dst.layer <= src.layer:
        d, mid = _around(src.x, src.y + NODE_H / 2, dst.x, dst.y + NODE_H / 2, -1)
    else:
        d, mid = _down(src.cx, src.y + NODE_H, dst.cx, dst.y)
    taken = _taken(graph, edge)
    classes = f"wfg-edge e-{kind}" + (" e-taken" if taken else "")
    marker = "taken" if taken else edge.kind if edge.kind in ("compensate", "child") else "flow"
    label = edge.label
    if graph.source == "journals" and edge.kind == "flow" and graph.runs_read > 1:
        label = f"{edge.count} run{'s' if edge.count != 1 else ''}"
    text = ""
    if label:
        text = (
            f'<text class="wfg-edge-label" x="{mid[0]:.0f}" y="{mid[1] + 3:.0f}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    return (
        f'<g class="{classes}" data-edge="{escape(edge.src)}&gt;{escape(edge.dst)}">'
        f'<path d="{d}" marker-end="url(#{uid}-a-{marker})"/>{text}</g>'
    )


def _taken(graph: Graph, edge: Edge) -> bool:
    """On a run's diagram, the edges the run went along: from a step it passed (done,
    compensated, or skipped by its `if`) to one it reached."""
    src, dst = graph.nodes.get(edge.src), graph.nodes.get(edge.dst)
    if src is None or dst is None or edge.kind != "flow":
        return False
    return src.state in ("done", "compensated", "skipped") and dst.state not in ("", "cancelled")


Point = tuple[float, float]


def _down(x1: float, y1: float, x2: float, y2: float) -> tuple[str, Point]:
    bend = (y2 - y1) / 2
    d = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + bend:.1f} {x2:.1f},{y2 - bend:.1f} {x2:.1f},{y2:.1f}"
    return d, ((x1 + x2) / 2, (y1 + y2) / 2)


def _line(x1: float, y1: float, x2: float, y2: float) -> tuple[str, Point]:
    return f"M{x1:.1f},{y1:.1f} L{x2 - 2:.1f},{y2:.1f}", ((x1 + x2) / 2, (y1 + y2) / 2 - 8)


def _around(x1: float, y1: float, x2: float, y2: float, side: int) -> tuple[str, Point]:
    """A curve that leaves and enters on one side (left: -1, right: 1), around the nodes
    between."""
    reach = 44 + min(abs(y2 - y1), 400) / 20
    cx1, cx2 = x1 + side * reach, x2 + side * reach
    d = f"M{x1:.1f},{y1:.1f} C{cx1:.1f},{y1:.1f} {cx2:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
    return d, ((x1 + 3 * cx1 + 3 * cx2 + x2) / 8, (y1 + y2) / 2)


def _node(node: Node, placed: Layout) -> str:
    box = placed.boxes[node.id]
    rx = NODE_H / 2 if node.kind in ("start", "end") else 8
    tag = KIND_WORDS.get(node.kind, node.kind)
    if node.state:
        tag += f" · {STATE_WORDS[node.state]}"
    third = f"if {node.condition}" if node.condition else node.detail
    tooltip = "; ".join(
        filter(
            None, [node.label, tag, f"if {node.condition}" if node.condition else "", node.detail]
        )
    )
    x, y, cx = box.x, box.y, box.cx
    body = (
        f"<title>{escape(tooltip)}</title>"
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="{rx:.0f}"/>'
        f'<text class="wfg-tag" x="{cx:.1f}" y="{y + 15:.1f}" text-anchor="middle">'
        f"{escape(_fit(tag, 30))}</text>"
        f'<text class="wfg-label" x="{cx:.1f}" y="{y + 34:.1f}" text-anchor="middle">'
        f"{escape(_fit(node.label, 22))}</text>"
        f'<text class="wfg-detail" x="{cx:.1f}" y="{y + 51:.1f}" text-anchor="middle">'
        f"{escape(_fit(third, 26))}</text>"
    )
    state = node.state or "none"
    group = (
        f'<g class="wfg-node k-{node.kind} s-{state}" data-node="{escape(node.id)}" '
        f'data-state="{state}">{body}</g>'
    )
    if node.href:
        return f'<a href="{escape(node.href)}">{group}</a>'
    return group


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
