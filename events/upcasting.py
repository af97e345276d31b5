"""Upcasters: read an old event in the latest shape of its type's schema, never rewriting it.

An event records the schema version that validated it (``Event.schema_version``; None when its
type had no schema then, read as version 0). To bring its data to version N, each version
after its own is applied in turn: first the declarative steps stored with that version
(``EventSchema.upcast``), then a code upcaster registered for the version before it::

    from events.upcasting import upcaster

    @upcaster("order.created", from_version=1)
    def split_name(data):
        first, _, last = data.pop("name", "").partition(" ")
        return {**data, "customer": {"first": first, "last": last}}

Declarative steps (a list, applied in order; paths are dotted, under ``data``):

- ``{"rename": {"from": "order.total", "to": "amount"}}`` (a new name in the same object)
- ``{"default": {"path": "currency", "value": "EUR"}}`` (set only when missing)
- ``{"move": {"from": "zip", "to": "address.zip"}}`` (creates the objects on the way)

Workflows, waits, rules and replays read events through ``latest_shape`` / ``latest_data``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from events import schemas
from events.models import Event

__all__ = ["latest_data", "latest_shape", "upcast_errors", "upcaster"]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

# (event type, from version) -> function. Filled at import time by @upcaster, like the
# workflow registry: code is registered once per process, never per request.
_code: dict[tuple[str, int], Upcaster] = {}

STEP_KINDS = {"rename": ("from", "to"), "move": ("from", "to"), "default": ("path", "value")}


def upcaster(event_type: str, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register ``fn(data) -> data`` turning ``event_type`` data of ``from_version`` into the
    next version's shape. It receives a copy and may change it in place."""
    if from_version < 0:
        raise ValueError("from_version is a schema version: 0 (before any schema) or more")

    def register(fn: Upcaster) -> Upcaster:
        _code[(event_type, from_version)] = fn
        return fn

    return register


def latest_version(event_type: str) -> int | None:
    known = schemas.type_schemas(event_type)
    return None if known is None else known.version


def needs_upcast(event: Event) -> bool:
    """Whether ``event`` was stored in an older shape than its type's latest (no data read)."""
    latest = latest_version(event.type)
    return latest is not None and (event.schema_version or 0) < latest


def latest_data(event: Event) -> dict[str, Any]:
    """``event.data`` in the latest shape of its type (the stored data itself when current)."""
    if not needs_upcast(event):
        return event.data
    known = schemas.type_schemas(event.type)
    assert known is not None
    data = copy.deepcopy(event.data)
    for version in range((event.schema_version or 0) + 1, known.version + 1):
        for step in known.upcasts.get(version, ()):
            data = _apply(step, data)
        code = _code.get((event.type, version - 1))
        if code is not None:
            data = code(data)
    return data


def latest_shape(event: Event) -> Event:
    """An unsaved copy of ``event`` whose data is in the latest shape (``event`` itself when it
    is current). What routing hands to triggers, waits and rules."""
    if not needs_upcast(event):
        return event
    shaped = copy.copy(event)
    shaped.data = latest_data(event)
    shaped.schema_version = latest_version(event.type)
    return shaped


def upcast_errors(steps: Any) -> list[str]:
    """What is wrong with declarative upcast steps, each naming its place (``upcast[1].move``)."""
    if not isinstance(steps, list):
        return ['upcast: a list of steps is required, e.g. [{"rename": {"from": "a", "to": "b"}}]']
    errors = []
    for index, step in enumerate(steps):
        where = f"upcast[{index}]"
        if not isinstance(step, dict) or len(step) != 1 or next(iter(step)) not in STEP_KINDS:
            errors.append(f"{where}: one of {', '.join(sorted(STEP_KINDS))} per step")
            continue
        kind, options = next(iter(step.items()))
        keys = STEP_KINDS[kind]
        if not isinstance(options, dict) or set(options) != set(keys):
            errors.append(f"{where}.{kind}: needs exactly {' and '.join(keys)}")
            continue
        for key in ("from", "to", "path"):
            if key in options and not _is_path(options[key]):
                errors.append(f"{where}.{kind}.{key}: a dotted path such as address.zip")
        if kind == "rename" and _is_path(options["to"]) and "." in options["to"]:
            errors.append(f"{where}.rename.to: a name in the same object; use move to move it")
    return errors


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and all(part for part in value.split("."))


def _apply(step: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    kind, options = next(iter(step.items()))
    if kind == "default":
        parent, name = _parent(data, options["path"], create=True)
        if parent is not None:
            parent.setdefault(name, copy.deepcopy(options["value"]))
        return data
    source, name = _parent(data, options["from"], create=False)
    if source is None or name not in source:
        return data  # nothing to rename or move in this event
    value = source.pop(name)
    if kind == "rename":
        source[options["to"]] = value
        return data
    target, new_name = _parent(data, options["to"], create=True)
    if target is not None:
        target[new_name] = value
    return data


def _parent(data: dict[str, Any], path: str, *, create: bool) -> tuple[dict | None, str]:
    *parents, name = path.split(".")
    here: Any = data
    for part in parents:
        if create and part not in here:
            here[part] = {}
        here = here.get(part) if isinstance(here, dict) else None
        if not isinstance(here, dict):
            return None, name  # a value stands where an object would be: leave the data be
    return here, name
