"""Parse JSON from outside so that whatever parses can also be stored, on either database.

Python's ``json`` accepts what neither database can hold: lone UTF-16 surrogates (``"\\ud800"``,
which SQLite stores and then fails to read back, breaking every page that lists the row), the
non-standard constants ``NaN``/``Infinity`` and numbers that overflow to infinity (``1e999``),
which SQLite's JSON check and PostgreSQL's jsonb refuse at INSERT time. Refusing them while
parsing turns a late database error (a 500, or an IntegrityError mistaken for a duplicate) into
a 400 that names the value's path.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any


class UnstorableJSON(ValueError):
    """JSON that parses but cannot be stored; ``path`` names the value (``data.items[2]``)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path or "(the document)"
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def loads(raw: bytes | str) -> Any:
    """``json.loads``, then ``check_storable`` when the text may hold something unstorable:
    raises ``ValueError`` (``json.JSONDecodeError``) for malformed JSON and ``UnstorableJSON``,
    naming the path, for what cannot be stored.

    The walk costs about five parses, so it runs only when the parser met a non-finite number
    or the text has a surrogate escape (UTF-8 text cannot hold a surrogate otherwise)."""
    suspect: list[str] = []

    def constant(name: str) -> float:
        suspect.append(name)
        return float(name)

    def number(text: str) -> float:
        value = float(text)
        if math.isinf(value):
            suspect.append(text)
        return value

    value = json.loads(raw, parse_constant=constant, parse_float=number)
    if suspect or _SURROGATE_ESCAPE[type(raw)].search(raw):
        check_storable(value)
    return value


_SURROGATE_ESCAPE = {
    bytes: re.compile(rb"\\u[dD][89a-fA-F]"),
    str: re.compile(r"\\u[dD][89a-fA-F]"),
}


def check_storable(value: Any, path: str = "") -> None:
    """Raise ``UnstorableJSON`` naming the first key or value that cannot be stored: a
    non-finite float, or a string with a lone surrogate. (``\\u0000`` is valid Unicode: SQLite
    stores it, jsonb refuses it with a DataError that callers answer with 400.)"""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            _check_text(node, where)
        elif isinstance(node, float) and not math.isfinite(node):
            raise UnstorableJSON(
                where,
                f"{node} (NaN, Infinity or a number too large for a double, such as 1e999) "
                "cannot be stored; send a finite number, a string or null.",
            )
        elif isinstance(node, dict):
            for key, child in node.items():
                child_path = f"{where}.{key}" if where else str(key)
                _check_text(str(key), where, key=True)
                stack.append((child, child_path))
        elif isinstance(node, list | tuple):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(node))


def _check_text(text: str, where: str, *, key: bool = False) -> None:
    what = "a key" if key else "the string"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnstorableJSON(
            where,
            f"{what} contains a lone surrogate (an unpaired \\ud800-\\udfff escape), which is "
            "not valid Unicode; encode the text as UTF-8.",
        ) from None
