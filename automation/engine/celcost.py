"""What a CEL expression can cost on large data, read from its syntax tree.

The ``cel`` package compiles and runs expressions but exposes no syntax tree, so the tree comes
from cel-python's parser (a Lark LALR parser over CEL's published grammar). Comments never reach
the tree and a string literal is one token, so neither can hide a comprehension or fake one.

Cost is counted in powers of the input's size ``n``. Looking up an input (``trigger``,
``event``, ``steps``…) converts the whole value from Python: O(n). A comprehension (``exists``,
``map``…) over a list taken from the input runs its body n times. So a comprehension over an
input whose body looks up an input, or that holds another comprehension over an input, is
O(n²): 30,000 elements took 28 s, holding the GIL. Expressions of degree 2 or more are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from celpy.celparser import CELParser
    from lark import Tree

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
# Nodes read for what they are, never skipped over as a mere level of the grammar.
_OWN_MEANING = frozenset({"ident", "dot_ident", "literal", "member_object"})
# A hint only (the check is _check_raw_strings): a raw string's backslash before a quote.
_RAW_BACKSLASH_QUOTE = re.compile(r"""[rR][bB]?["'][^\n]*\\["']""")
_RAW_ADVICE = (
    'a raw string ending in a backslash (r"…\\") cannot be analysed when a quote follows on '
    'its line: write it as an ordinary string with the backslash doubled ("…\\\\")'
)


class CostError(ValueError):
    """An expression that cannot be analysed, or whose cost grows too fast with the data."""


@lru_cache(maxsize=1)
def _parser() -> CELParser:
    # Imported and built on first use: importing cel-python and building its parser tables
    # takes about 0.2 s, which every process start (web, worker, command) would pay otherwise.
    from celpy.celparser import CELParser

    return CELParser()


def parse(expression: str) -> Tree:
    """cel-python's syntax tree of ``expression``; CostError where its grammar refuses it."""
    from celpy.celparser import CELParseError

    try:
        tree = _parser().parse(expression)
    except CELParseError as exc:
        raise CostError(_where(expression, exc.line, exc.column)) from None
    _check_raw_strings(tree)
    return tree


def _where(expression: str, line: int | None, column: int | None) -> str:
    if line is None or column is None:
        return "its syntax is not understood"
    lines = expression.splitlines()
    text = lines[line - 1] if line <= len(lines) else ""
    near = f"unexpected {text[column - 1 : column + 9]!r} at line {line}, column {column}"
    if text[: column - 1].rstrip().endswith(","):
        return f"{near}: remove the trailing comma"
    if _RAW_BACKSLASH_QUOTE.search(expression):
        return f"{near}; {_RAW_ADVICE}"
    return near


def _check_raw_strings(tree: Tree) -> None:
    """cel-python reads a backslash before a quote as an escape in a raw string too; CEL (and
    the evaluator) ends the string at that quote. Where they disagree the tree is not what
    runs: ``r"\\" == " == " || <quadratic> || " == " // "`` parses as three strings. Such a
    token holds its own closing quote, which no raw string CEL accepts can."""
    for node in tree.iter_subtrees_topdown():  # a loop, not recursion: trees may be deep
        if node.data != "literal":
            continue
        text = str(node.children[0])
        prefix = text[: len(text) - len(text.lstrip("rRbB"))]
        if "r" not in prefix.lower():
            continue
        quote = text[len(prefix) : len(prefix) + 3]
        quote = quote if quote in ('"""', "'''") else quote[0]
        body = text[len(prefix) + len(quote) : -len(quote)]
        if (body + quote).find(quote) != len(body):
            raise CostError(_RAW_ADVICE)


@dataclass(frozen=True)
class _Cost:
    degree: int  # the power of the input's size that the evaluation time grows with
    data: bool  # whether the value comes from the input (so its size is unbounded)


def degree(tree: Tree) -> int:
    """The power of the input's size an evaluation of ``tree`` costs (1: linear)."""
    return _cost(tree, {}).degree


def count_comprehensions(tree: Tree) -> int:
    return sum(1 for node in tree.iter_subtrees() if _comprehension_name(node))


def _cost(tree: Tree, bound: dict[str, bool]) -> _Cost:
    tree = _unwrap(tree)
    if tree.data == "ident":
        name = str(tree.children[0])
        if name in bound:
            return _Cost(0, bound[name])
        return _Cost(1, True)  # an input: converted whole on every lookup
    if tree.data == "dot_ident":  # .trigger names the root scope: never a bound variable
        return _Cost(1, True)
    if _comprehension_name(tree):
        return _comprehension(tree, bound)
    # A message literal (Name{field: value}): its type name is no data, its values may be.
    children = tree.children[1:] if tree.data == "member_object" else tree.children
    parts = [_cost(child, bound) for child in children if not _is_token(child)]
    if tree.data == "literal" or not parts:
        return _Cost(0, False)
    return _Cost(max(part.degree for part in parts), any(part.data for part in parts))


def _unwrap(tree: Tree) -> Tree:
    """Skip the grammar's one-child levels (expr → conditionalor → … → primary), in a loop:
    each literal sits ten levels deep, and recursing through them would cost stack."""
    while (
        tree.data not in _OWN_MEANING
        and len(tree.children) == 1
        and not _is_token(tree.children[0])
    ):
        tree = tree.children[0]
    return tree


def _is_token(child: object) -> bool:
    # Lark's tokens are strings: telling them from trees so needs no import of lark (35 ms) on
    # the start of every process, only where an expression is first checked.
    return isinstance(child, str)


def _comprehension_name(tree: Tree) -> str:
    """The macro's name for ``target.exists(…)`` and the like; "" for anything else."""
    if tree.data == "member_dot_arg" and str(tree.children[1]) in COMPREHENSIONS:
        return str(tree.children[1])
    return ""


def _comprehension(tree: Tree, bound: dict[str, bool]) -> _Cost:
    over = _cost(tree.children[0], bound)
    args = tree.children[2].children if len(tree.children) > 2 else []  # the arguments
    names = [_ident_name(arg) for arg in args[:-1]]
    variables = [name for name in names if name][:2]
    if len(args) == 3 and _comprehension_name(tree) == "map" and len(variables) == 2:
        variables = variables[:1]  # map(x, filter, transform): one variable
    inner = dict(bound)
    inner.update({name: over.data for name in variables})
    body = [_cost(arg, inner) for arg in args[len(variables) :]]
    body_degree = max((part.degree for part in body), default=0)
    data = over.data or any(part.data for part in body)
    if over.data:
        return _Cost(max(over.degree, 1 + body_degree), data)
    return _Cost(max(over.degree, body_degree), data)


def _ident_name(tree: Tree) -> str:
    tree = _unwrap(tree)
    return str(tree.children[0]) if tree.data == "ident" else ""
