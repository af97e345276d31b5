"""Parse untrusted JSON bodies and read values out of them by a small path syntax.

Paths are dotted names with optional list indexes: ``type``, ``data.object.status``,
``items[0].sku``. Nothing is evaluated; a path only looks values up.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings

from automation.lib import jsonsafe
from automation.lib.errors import DomainError

_PATH_RE = re.compile(r"^[A-Za-z_][\w\-]*(\[\d+\])*(\.[A-Za-z_][\w\-]*(\[\d+\])*)*$")
_PART_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class BadPayload(DomainError, ValueError):
    """The body cannot be used; ``code`` is machine-readable, the message says what to fix."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def max_depth() -> int:
    return settings.EVENTS_MAX_JSON_DEPTH


def parse_json_object(raw: bytes, *, what: str = "body") -> dict[str, Any]:
    """Parse ``raw`` as a JSON object no deeper than EVENTS_MAX_JSON_DEPTH, or raise BadPayload.

    Values no database can store (lone surrogates, NaN, Infinity, 1e999) are refused here,
    naming their path, before anything is written."""
    try:
        value = jsonsafe.loads(raw)
    except RecursionError:
        raise _too_deep(what) from None
    except jsonsafe.UnstorableJSON as exc:
        raise BadPayload("unstorable_value", f"The {what} cannot be stored: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadPayload("malformed_json", f"The {what} is not valid JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise BadPayload(
            "not_an_object", f"The {what} must be a JSON object, not {type(value).__name__}."
        )
    # Each level opens a bracket, so a body with no more brackets than the limit (brackets in
    # strings only overcount) cannot be too deep: a byte count instead of a walk of every value.
    if raw.count(b"[") + raw.count(b"{") > max_depth():
        check_depth(value, what=what)
    return value


def check_depth(value: Any, *, what: str = "body") -> None:
    """Raise BadPayload when containers nest deeper than EVENTS_MAX_JSON_DEPTH levels."""
    limit = max_depth()
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise _too_deep(what)
        # The test is inline, not a function: it runs once per value of the body.
        if isinstance(node, dict):
            stack.extend((c, depth + 1) for c in node.values() if isinstance(c, dict | list))
        elif isinstance(node, list):
            stack.extend((c, depth + 1) for c in node if isinstance(c, dict | list))


def _too_deep(what: str) -> BadPayload:
    return BadPayload(
        "too_deep",
        f"The {what} nests objects/arrays more than {max_depth()} levels deep; flatten it.",
    )


def validate_path(path: str) -> str:
    """Raise ValueError unless ``path`` is a dotted path such as ``data.items[0].sku``."""
    if not _PATH_RE.match(path):
        raise ValueError(
            f"{path!r} is not a path; use dotted names with optional [index], "
            "e.g. data.items[0].sku"
        )
    return path


class PathNotFound(LookupError):
    pass


def resolve_path(document: Any, path: str) -> Any:
    """The value at ``path`` in ``document``; PathNotFound names the first missing part."""
    value = document
    walked = ""
    for name, index in _PART_RE.findall(path):
        if name:
            if not isinstance(value, dict) or name not in value:
                raise PathNotFound(f"{walked + '.' if walked else ''}{name}")
            value = value[name]
            walked = f"{walked}.{name}" if walked else name
        else:
            position = int(index)
            if not isinstance(value, list) or position >= len(value):
                raise PathNotFound(f"{walked}[{position}]")
            value = value[position]
            walked = f"{walked}[{position}]"
    return value
