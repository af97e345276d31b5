"""What a CEL expression can cost on large data, read from its syntax tree.

The ``cel`` package compiles and runs expressions but exposes no syntax tree, so this module
tokenizes and parses CEL itself (the grammar is small). Comments and string literals are tokens
here, so neither can hide a comprehension or fake one.

Cost is counted in powers of the input's size ``n``. Looking up an input (``trigger``,
``event``, ``steps``…) converts the whole value from Python: O(n). A comprehension (``exists``,
``map``…) over a list taken from the input runs its body n times. So a comprehension over an
input whose body looks up an input, or that holds another comprehension over an input, is
O(n²): 30,000 elements took 28 s, holding the GIL. Expressions of degree 2 or more are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_DEGREE = 1
COMPREHENSIONS = frozenset(
    {
        "all",
        "exists",
        "exists_one",
        "existsOne",
        "map",
        "filter",
        "transformList",
        "transformMap",
        "transformMapEntry",
    }
)

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<raw>(?:[rR][bB]?|[bB][rR])(?:'''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|"[^"\n]*"))
  | (?P<string>[bB]?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"
        |'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
  | (?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[uU]?)
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%!<>?:.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)


class CostError(ValueError):
    """An expression that cannot be analysed, or whose cost grows too fast with the data."""


@dataclass
class Node:
    kind: str  # ident, select, call, index, list, map, literal, op
    name: str = ""  # identifier, field or function name; a string literal's value
    children: list[Node] = field(default_factory=list)
    target: Node | None = None  # the receiver of a method call, the operand of a select


def tokenize(expression: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None:
            raise CostError(f"unexpected character {expression[position]!r} at {position}")
        kind = match.lastgroup or ""
        text = match.group()
        position = match.end()
        if kind != "space":
            tokens.append(("string" if kind == "raw" else kind, text))
    return tokens


class _Parser:
    """Recursive descent over CEL's grammar; operators only need their operands here."""

    def __init__(self, expression: str) -> None:
        self.tokens = tokenize(expression)
        self.at = 0

    def peek(self) -> str:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.tokens) or (expected and self.peek() != expected):
            raise CostError(f"expected {expected or 'more'} at token {self.at}")
        self.at += 1
        return self.tokens[self.at - 1]

    def parse(self) -> Node:
        node = self.expr()
        if self.at != len(self.tokens):
            raise CostError(f"unexpected {self.peek()!r} at token {self.at}")
        return node

    def expr(self) -> Node:
        node = self.binary(0)
        if self.peek() == "?":
            self.take()
            then = self.binary(0)
            self.take(":")
            node = Node("op", children=[node, then, self.expr()])
        return node

    _LEVELS = (
        ("||",),
        ("&&",),
        ("==", "!=", "<", "<=", ">", ">=", "in"),
        ("+", "-"),
        ("*", "/", "%"),
    )

    def binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        while self.peek() in self._LEVELS[level]:
            self.take()
            node = Node("op", children=[node, self.binary(level + 1)])
        return node

    def unary(self) -> Node:
        if self.peek() in ("!", "-"):
            self.take()
            return Node("op", children=[self.unary()])
        return self.member()

    def member(self) -> Node:
        node = self.primary()
        message = self.peek() == "{" and node.kind in ("ident", "select")  # Name{field: 1}
        while self.peek() in (".", "[") or message:
            symbol = self.take()[1]
            if symbol == ".":
                name = self.take()[1]
                if self.peek() == "(":
                    node = Node("call", name=name, children=self.arguments(")"), target=node)
                else:
                    node = Node("select", name=name, target=node)
            elif symbol == "[":
                node = Node("index", children=[self.expr()], target=node)
                self.take("]")
            else:  # a message literal: only the field values are expressions
                node = Node("op", children=[value for _, value in self.entries(opened=True)])
            message = self.peek() == "{" and node.kind in ("ident", "select")
        return node

    def primary(self) -> Node:
        kind, text = self.take()
        if text == ".":  # a leading dot names the root scope: .trigger
            kind, text = self.take()
        if kind == "ident":
            if self.peek() == "(":
                return Node("call", name=text, children=self.arguments(")"))
            return Node("ident", name=text)
        if kind in ("number", "string"):
            return Node("literal", name=_string_value(text) if kind == "string" else text)
        if text == "(":
            node = self.expr()
            self.take(")")
            return node
        if text == "[":
            return Node("list", children=self.arguments("]", opened=True))
        if text == "{":
            pairs = self.entries(opened=True)
            return Node("map", children=[part for pair in pairs for part in pair])
        raise CostError(f"unexpected {text!r}")

    def arguments(self, closing: str, *, opened: bool = False) -> list[Node]:
        if not opened:
            self.take()
        items: list[Node] = []
        while self.peek() != closing:
            items.append(self.expr())
            if self.peek() != ",":
                break
            self.take()
        self.take(closing)
        return items

    def entries(self, *, opened: bool = False) -> list[tuple[Node, Node]]:
        if not opened:
            self.take("{")
        pairs: list[tuple[Node, Node]] = []
        while self.peek() != "}":
            key = self.expr()
            self.take(":")
            pairs.append((key, self.expr()))
            if self.peek() != ",":
                break
            self.take()
        self.take("}")
        return pairs


def _string_value(text: str) -> str:
    """A string literal's text without prefix and quotes (escapes left as written)."""
    body = text.lstrip("rRbB")
    quote = 3 if body[:3] in ("'''", '"""') else 1
    return body[quote:-quote]


def parse(expression: str) -> Node:
    return _Parser(expression).parse()


@dataclass(frozen=True)
class _Cost:
    degree: int  # the power of the input's size that the evaluation time grows with
    data: bool  # whether the value comes from the input (so its size is unbounded)


def degree(node: Node, bound: dict[str, bool] | None = None) -> int:
    """The power of the input's size an evaluation of ``node`` costs (1: linear)."""
    return _cost(node, bound or {}).degree


def _cost(node: Node, bound: dict[str, bool]) -> _Cost:
    if node.kind == "ident":
        if node.name in bound:
            return _Cost(0, bound[node.name])
        return _Cost(1, True)  # an input: converted whole on every lookup
    if node.kind == "call" and node.target is not None and node.name in COMPREHENSIONS:
        return _comprehension(node, node.target, bound)
    parts = [_cost(child, bound) for child in node.children]
    if node.target is not None:
        parts.append(_cost(node.target, bound))
    if node.kind == "literal" or not parts:
        return _Cost(0, False)
    return _Cost(max(part.degree for part in parts), any(part.data for part in parts))


def _comprehension(node: Node, target: Node, bound: dict[str, bool]) -> _Cost:
    over = _cost(target, bound)
    args = node.children
    variables = [arg.name for arg in args[:-1] if arg.kind == "ident"][:2]
    if len(args) == 3 and node.name == "map" and len(variables) == 2:
        variables = variables[:1]  # map(x, filter, transform): one variable
    inner = dict(bound)
    inner.update({name: over.data for name in variables})
    body = [_cost(arg, inner) for arg in args[len(variables) :]]
    body_degree = max((part.degree for part in body), default=0)
    data = over.data or any(part.data for part in body)
    if over.data:
        return _Cost(max(over.degree, 1 + body_degree), data)
    return _Cost(max(over.degree, body_degree), data)


def count_comprehensions(node: Node) -> int:
    own = int(node.kind == "call" and node.target is not None and node.name in COMPREHENSIONS)
    below = [*node.children, *([node.target] if node.target is not None else [])]
    return own + sum(count_comprehensions(child) for child in below)
