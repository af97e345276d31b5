"""Templates in definitions are path lookups and nothing else.

``{{ trigger.body.email }}``, ``{{ steps.createUser.output.userId }}``,
``{{ steps.items.output[0].sku }}``, ``{{ trigger.headers["x-request-id"] }}``. A string that is
exactly one template keeps the value's type; inside a longer string the value is written as
text (JSON for objects, lists, booleans and null). A path that does not resolve raises
TemplateError naming it. Only strings of the definition are rendered: a value taken from an
event is inserted as data and never looked at again, so ``{{ 7*7 }}`` in a payload stays text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from automation.engine.errors import NonRetryableError

TEMPLATE_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_SEGMENT_RE = re.compile(r'\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\["([^"\\]*)"\]')
_ROOT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ROOTS = ("trigger", "steps", "input", "run", "error")


class TemplateError(NonRetryableError):
    """A template that is not a path, or a path that does not resolve."""


def parse_path(text: str) -> list[str | int]:
    """``steps.a.output[0]["k-1"]`` → ["steps", "a", "output", 0, "k-1"]. Raises TemplateError."""
    path = text.strip()
    root = _ROOT_RE.match(path)
    if root is None:
        raise TemplateError(
            f"{{{{{text}}}}} is not a path; templates are lookups like "
            "{{ trigger.data.email }} or {{ steps.createUser.output.userId }}"
        )
    parts: list[str | int] = [root.group(0)]
    position = root.end()
    while position < len(path):
        segment = _SEGMENT_RE.match(path, position)
        if segment is None:
            raise TemplateError(
                f"{{{{{text}}}}} is not a path (at {path[position:][:20]!r}); templates are "
                'lookups like {{ trigger.data.items[0].sku }} or {{ trigger.headers["x-id"] }}, '
                "never expressions"
            )
        name, index, key = segment.groups()
        parts.append(int(index) if index is not None else (name if name is not None else key))
        position = segment.end()
    return parts


def templates_in(text: str) -> Iterator[str]:
    """The raw text inside each ``{{ }}`` of ``text``; TemplateError for an unbalanced brace."""
    remainder = TEMPLATE_RE.sub("", text)
    if "{{" in remainder or "}}" in remainder:
        raise TemplateError(f"unbalanced '{{{{' or '}}}}' in {text[:80]!r}")
    for match in TEMPLATE_RE.finditer(text):
        yield match.group(1)


def format_path(parts: list[str | int]) -> str:
    out = str(parts[0])
    for part in parts[1:]:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _ROOT_RE.fullmatch(part):
            out += f".{part}"
        else:
            out += f'["{part}"]'
    return out


def lookup(scope: dict[str, Any], parts: list[str | int]) -> Any:
    """The value at ``parts``; TemplateError naming the path and where it stopped."""
    current: Any = scope
    for depth, part in enumerate(parts):
        if (isinstance(part, int) and isinstance(current, list) and part < len(current)) or (
            isinstance(part, str) and isinstance(current, dict) and part in current
        ):
            current = current[part]
        else:
            where = format_path(parts[:depth]) if depth else "the context"
            raise TemplateError(
                f"{{{{ {format_path(parts)} }}}} does not resolve: {where} has no "
                f"{part if isinstance(part, int) else repr(part)}"
            )
    return current


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def render_string(text: str, scope: dict[str, Any]) -> Any:
    found = list(templates_in(text))
    if not found:
        return text
    whole = TEMPLATE_RE.fullmatch(text)
    if whole is not None and len(found) == 1:
        return lookup(scope, parse_path(found[0]))
    # Substitute in one pass: inserted values are never scanned for templates again.
    return TEMPLATE_RE.sub(lambda m: _as_text(lookup(scope, parse_path(m.group(1)))), text)


def render(value: Any, scope: dict[str, Any]) -> Any:
    """``value`` (a definition fragment) with every template in its strings resolved."""
    if isinstance(value, str):
        return render_string(value, scope)
    if isinstance(value, dict):
        return {key: render(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, scope) for item in value]
    return value


def paths_in(value: Any, where: str) -> Iterator[tuple[str, list[str | int]]]:
    """(location, parsed path) of every template in a definition fragment, for validation.
    Raises TemplateError (with ``.location``) on a template that is not a path."""
    if isinstance(value, str):
        try:
            for raw in templates_in(value):
                yield where, parse_path(raw)
        except TemplateError as exc:
            exc.location = where  # type: ignore[attr-defined]
            raise
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from paths_in(
                item, f"{where}.{key}" if _ROOT_RE.fullmatch(key) else f'{where}["{key}"]'
            )
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths_in(item, f"{where}[{index}]")


def has_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value
