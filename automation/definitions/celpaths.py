"""Paths into ``steps`` inside CEL expressions: the one grammar that save-time validation and
the interpreter share, and how a path into a step skipped by its ``if`` reads.

A skipped step reads as null at any depth, as in templates. The CEL library converts the
scope to plain CEL maps (no value can answer every field with null), so an expression that
reads a skipped step is rewritten before it is compiled, once per expression and set of
skipped steps: the path becomes ``null``, or ``[]`` where a list is asked for (``size(p)``,
``p.size()``, ``p.exists(...)`` and the other macros, ``x in p``), and ``has(p)`` becomes
``false``. A path whose index reads a skipped step (``steps.a.x[steps.b.i]``) reads as null
as a whole.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["STEP_REF", "null_skipped"]

#: ``steps.<id>`` or ``steps["<id>"]``: group 1 or group 2 is the step id.
STEP_REF = re.compile(r"(?<![\w.])steps\s*(?:\.\s*([A-Za-z_]\w*)|\[\s*[\"']([^\"']*)[\"']\s*\])")
_STRING = re.compile(r"""'{3}.*?'{3}|"{3}.*?"{3}|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*\"""", re.DOTALL)
_FIELD = re.compile(r"\s*\.\s*[A-Za-z_]\w*(?!\w|\s*\()")
_OPEN_INDEX = re.compile(r"\s*\[")
_HAS_OPEN = re.compile(r"has\s*\(\s*$")
_CLOSE = re.compile(r"\s*\)")
_WANTS_LIST_BEFORE = re.compile(r"(?:(?<![\w.])size\s*\(\s*|(?<![\w.])in\s+)$")
_WANTS_LIST_AFTER = re.compile(r"\s*\.")


def step_ids(expression: str) -> set[str]:
    """The ids of the steps an expression reads (string literals left out)."""
    strings = [match.span() for match in _STRING.finditer(expression)]
    return {
        match.group(1) or match.group(2)
        for match in STEP_REF.finditer(expression)
        if not any(start <= match.start() < end for start, end in strings)
    }


@lru_cache(maxsize=2048)
def null_skipped(expression: str, skipped: frozenset[str]) -> str:
    """``expression`` with every path into a step of ``skipped`` replaced as the module
    docstring says. Unchanged when it reads none of them."""
    if not skipped or not step_ids(expression) & skipped:
        return expression
    out: list[str] = []
    pos = 0
    while pos < len(expression):
        string = _STRING.match(expression, pos)
        head = None if string else STEP_REF.match(expression, pos)
        if string:
            out.append(string.group(0))
            pos = string.end()
        elif head and (pos == 0 or not re.match(r"[\w.]", expression[pos - 1])):
            pos = _path(expression, head, skipped, out)
        else:
            out.append(expression[pos])
            pos += 1
    return "".join(out)


def _path(expression: str, head: re.Match[str], skipped: frozenset[str], out: list[str]) -> int:
    """Copy (or replace) the path starting at ``head`` into ``out``; return where it ends."""
    absent = (head.group(1) or head.group(2)) in skipped
    parts = [head.group(0)]
    pos = head.end()
    while True:
        field = _FIELD.match(expression, pos)
        index = None if field else _OPEN_INDEX.match(expression, pos)
        if field:
            parts.append(field.group(0))
            pos = field.end()
        elif index:
            end = _closing_bracket(expression, index.end())
            if end is None:
                break
            inner = expression[index.end() : end]
            absent = absent or bool(step_ids(inner) & skipped)
            parts.append(f"{index.group(0)}{null_skipped(inner, skipped)}]")
            pos = end + 1
        else:
            break
    if not absent:
        out.append("".join(parts))
        return pos
    before = "".join(out)
    has = _HAS_OPEN.search(before)
    close = _CLOSE.match(expression, pos)
    if has and close:
        out[:] = [before[: has.start()], "false"]
        return close.end()
    wants_list = _WANTS_LIST_BEFORE.search(before) or _WANTS_LIST_AFTER.match(expression, pos)
    out.append("[]" if wants_list else "null")
    return pos


def _closing_bracket(expression: str, pos: int) -> int | None:
    depth = 1
    while pos < len(expression):
        string = _STRING.match(expression, pos)
        if string:
            pos = string.end()
            continue
        char = expression[pos]
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth == 0:
            return pos
        pos += 1
    return None
