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

from automation.lib.errors import DomainError


class UnstorableJSON(DomainError, ValueError):
    """JSON that parses but cannot be stored; ``path`` names the value (``data.items[2]``)."""

    code = "unstorable_value"

    def __init__(self, path: str, problem: str) -> None:
        self.path = path or "(the document)"
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def loads(raw: bytes | str) -> Any:
    """``json.loads``, then ``check_storable`` when the text may hold something unstorable:
    raises ``ValueError`` for malformed JSON or bytes that are not UTF-8, and ``UnstorableJSON``,
    naming the path, for what cannot be stored.

    Bytes are decoded strictly as UTF-8 here rather than by ``json.loads``, which would also
    take UTF-16 and UTF-32 and let a surrogate encoded raw through (it decodes with
    'surrogatepass'). Strict UTF-8 text holds a surrogate only as an escape, and a float
    overflows only with a three-digit exponent or a long run of digits, so a scan of the text
    (a few per cent of a parse) decides whether the walk (about five parses) is needed."""
    text = _utf8(raw) if isinstance(raw, bytes) else raw
    constants: list[str] = []

    def constant(name: str) -> float:
        constants.append(name)
        return float(name)

    value = json.loads(text, parse_constant=constant)
    if constants or _SURROGATE_ESCAPE.search(text) or _may_overflow(raw):
        check_storable(value)
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
#: Digits as 0, E as e and "+" dropped: a three-digit exponent reads e000, and a mantissa long
#: enough to overflow with a two-digit exponent has a hundred digits in a row. (A regex for
#: these costs several parses on a body full of numbers; translate and find are C loops.)
_NUMBER_SHAPE = bytes.maketrans(b"123456789E", b"000000000e")


def _may_overflow(raw: bytes | str) -> bool:
    """Whether ``raw`` may hold a number too large for a double (false alarms only cost a walk:
    the same characters in a string)."""
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    shape = data.translate(_NUMBER_SHAPE, b"+")
    return b"e000" in shape or b"0" * 100 in shape


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")  # strict: a raw surrogate is a decoding error
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"it is not UTF-8 (byte 0x{raw[exc.start]:02x} at position {exc.start} cannot be "
            "decoded); encode JSON as UTF-8"
        ) from None


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
                child_path = _key_path(where, str(key))
                _check_text(str(key), child_path, key=True)
                stack.append((child, child_path))
        elif isinstance(node, list | tuple):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(node))


def deeper_than(value: Any, limit: int) -> bool:
    """Whether objects/arrays in ``value`` nest more than ``limit`` levels. Storing (json.dumps)
    and most walks recurse once per level: a few hundred levels overflow Python's stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, dict | list):
            stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _key_path(where: str, key: str) -> str:
    # A lone surrogate in the key is shown as its escape, so the message itself stays valid.
    shown = key.encode("utf-8", "backslashreplace").decode("utf-8")
    return f"{where}.{shown}" if where else shown


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
