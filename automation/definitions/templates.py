"""Templates in definitions are path lookups and nothing else.

``{{ trigger.body.email }}``, ``{{ steps.createUser.output.userId }}``,
``{{ steps.items.output[0].sku }}``, ``{{ trigger.headers["x-request-id"] }}``. A string that is
exactly one template keeps the value's type; inside a longer string the value is written as
text (JSON for objects, lists, booleans and null). A path that does not resolve raises
TemplateError naming it. Only strings of the definition are rendered: a value taken from an
event is inserted as data and never looked at again, so ``{{ 7*7 }}`` in a payload stays text.

``{{ secrets.NAME }}`` (see ``secrets``) renders as the placeholder ``[secret:NAME]`` unless
the caller asks for the values (``secrets=`` a dict, which collects the ones used).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Collection, Iterator
from typing import Any

from automation.definitions import secrets as secret_store
from automation.engine.errors import NonRetryableError

TEMPLATE_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_SEGMENT_RE = re.compile(r'\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\["([^"\\]*)"\]')
_ROOT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ROOTS = ("trigger", "steps", "input", "run", "error", "secrets")


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


def skipped(scope: dict[str, Any], step_id: Any) -> bool:
    """Whether the step was skipped by its ``if``: then any path into it reads as null, so a
    run that did all its work never fails over a step it rightly did not take."""
    entry = scope.get("steps", {}).get(step_id) if isinstance(step_id, str) else None
    return isinstance(entry, dict) and entry.get("skipped") is True


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _resolve(
    scope: dict[str, Any], raw: str, secrets: dict[str, str] | None, absent: Collection[str]
) -> Any:
    parts = parse_path(raw)
    if parts[0] == "steps" and len(parts) > 1 and (parts[1] in absent or skipped(scope, parts[1])):
        return None
    if parts[0] != secret_store.ROOT:
        return lookup(scope, parts)
    problem = secret_store.name_error(parts)
    if problem is not None:
        raise TemplateError(f"{{{{{raw}}}}}: {problem}")
    name = str(parts[1])
    if secrets is None:
        return secret_store.placeholder(name)
    secrets[name] = secret_store.value(name)
    return secrets[name]


def render_string(
    text: str,
    scope: dict[str, Any],
    secrets: dict[str, str] | None = None,
    absent: Collection[str] = (),
) -> Any:
    found = list(templates_in(text))
    if not found:
        return text
    whole = TEMPLATE_RE.fullmatch(text)
    if whole is not None and len(found) == 1:
        # A copy: a step that changes its input must not change the trigger or an earlier
        # output for later steps (a replay, which skips that step, would see them unchanged).
        return copy.deepcopy(_resolve(scope, found[0], secrets, absent))
    # Substitute in one pass: inserted values are never scanned for templates again.
    return TEMPLATE_RE.sub(lambda m: _as_text(_resolve(scope, m.group(1), secrets, absent)), text)


def render(
    value: Any,
    scope: dict[str, Any],
    *,
    secrets: dict[str, str] | None = None,
    absent: Collection[str] = (),
) -> Any:
    """``value`` (a definition fragment) with every template in its strings resolved. Secrets
    render as placeholders, or as their values when ``secrets`` is a dict (which then holds
    the ones used, by name, so errors can be redacted). A path into a step of ``absent`` (one
    that did not run, for on_failure) or into a skipped step renders as null."""
    if isinstance(value, str):
        return render_string(value, scope, secrets, absent)
    if isinstance(value, dict):
        return {
            key: render(item, scope, secrets=secrets, absent=absent) for key, item in value.items()
        }
    if isinstance(value, list):
        return [render(item, scope, secrets=secrets, absent=absent) for item in value]
    return value


def uses_secrets(value: Any) -> bool:
    """Whether a definition fragment has a ``{{ secrets.… }}`` template."""
    if isinstance(value, str):
        return any(
            _ROOT_RE.match(raw.strip()) is not None
            and _ROOT_RE.match(raw.strip()).group(0) == secret_store.ROOT
            for raw in TEMPLATE_RE.findall(value)
        )
    if isinstance(value, dict):
        return any(uses_secrets(item) for item in value.values())
    if isinstance(value, list):
        return any(uses_secrets(item) for item in value)
    return False


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
