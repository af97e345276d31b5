"""Which events a workflow or a waiting step wants: type patterns, exact matches and CEL.

CEL (the Common Expression Language of Kubernetes and Inngest) is not Turing-complete and has no
side effects; expressions are compiled once and cached, and a bad one is rejected with the
parser's message.
"""

from __future__ import annotations

import fnmatch
import re
from functools import lru_cache
from typing import Any

MAX_EXPRESSION_LENGTH = 2000
MAX_COMPREHENSIONS = 4
MISSING = object()
_COMPREHENSIONS = {"map", "filter", "all", "exists", "exists_one"}
_MACRO_CALL = re.compile(r"\.\s*([A-Za-z_]+)\s*$")
_STRING = re.compile(r"'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"", re.DOTALL)


class ExpressionError(ValueError):
    """A CEL expression that does not compile, or fails on the data it is given."""


def type_matches(pattern: str, event_type: str) -> bool:
    """Exact type, or a wildcard: ``order.*`` matches order.created and order.line.added."""
    if not pattern:
        return False
    if "*" not in pattern and "?" not in pattern:
        return pattern == event_type
    return fnmatch.fnmatchcase(event_type, pattern)


def source_matches(pattern: str, source: str) -> bool:
    """Whether an event's stored source fits a trigger's or a wait's ``source`` pattern:
    exact, or a wildcard (``webhook:*``). No pattern: every source."""
    return not pattern or fnmatch.fnmatchcase(source, pattern)


def lookup(data: Any, path: str) -> Any:
    """``data["a"]["b"][0]`` for the path ``a.b.0``; ``MISSING`` when absent."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def data_matches(match: dict[str, Any], data: dict[str, Any]) -> bool:
    """Every key (a dotted path into ``data``) equals its value."""
    return all(lookup(data, path) == expected for path, expected in match.items())


@lru_cache(maxsize=1024)
def compile_expression(expression: str) -> Any:
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"expression is {len(expression)} characters; the limit is {MAX_EXPRESSION_LENGTH}"
        )
    _check_cost(expression)
    # Imported on first use: the package imports its command-line tool's prompt_toolkit, a
    # quarter of a second on the start of every process (web, worker, command) otherwise.
    import cel

    try:
        return cel.compile(expression)
    except (ValueError, RuntimeError) as exc:
        raise ExpressionError(str(exc)) from None


def _check_cost(expression: str) -> None:
    """Bound what an expression can cost on large data: comprehensions (``map``, ``filter``,
    ``all``, ``exists``) may not nest (a nested pair is quadratic in the data) and at most
    MAX_COMPREHENSIONS appear. CEL has no loops otherwise, and the length is capped."""
    code = _STRING.sub('""', expression)  # parentheses inside string literals do not count
    stack: list[bool] = []  # per open parenthesis: is it a comprehension's?
    count = 0
    for index, char in enumerate(code):
        if char == "(":
            macro = _MACRO_CALL.search(code, 0, index)
            is_comprehension = bool(macro and macro.group(1) in _COMPREHENSIONS)
            if is_comprehension and any(stack):
                raise ExpressionError(
                    "comprehensions (map, filter, all, exists) may not be nested: their cost "
                    "grows with the product of the list sizes"
                )
            count += is_comprehension
            stack.append(is_comprehension)
        elif char == ")" and stack:
            stack.pop()
    if count > MAX_COMPREHENSIONS:
        raise ExpressionError(
            f"{count} comprehensions in one expression; the limit is {MAX_COMPREHENSIONS}"
        )


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    program = compile_expression(expression)
    try:
        return program.execute(context)
    except KeyError as exc:
        raise ExpressionError(f"{expression!r}: no such field {exc}") from None
    # The data decides these too: an index past a list's end, a division by zero, an overflow.
    except (IndexError, ArithmeticError, TypeError, ValueError, RuntimeError) as exc:
        raise ExpressionError(f"{expression!r}: {exc}") from None


def condition(expression: str, context: dict[str, Any]) -> bool:
    """Evaluate a CEL condition, which must produce a boolean."""
    result = evaluate(expression, context)
    if not isinstance(result, bool):
        raise ExpressionError(
            f"{expression!r} gave {type(result).__name__} {result!r}; conditions give true or false"
        )
    return result
