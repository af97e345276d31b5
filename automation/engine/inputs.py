"""A workflow's input schema: the JSON Schema (draft 7) the input of a run started by a person
or a client (API, command line, the Start run form) must match. Runs started by an event take
the event as their trigger and are not checked: the event was accepted when it was sent.

Declarative workflows keep it as ``input_schema`` in the stored definition (so it is pinned to
the version); code workflows declare it with ``@workflow(..., input_schema={...})``.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError

from automation.engine.errors import UnknownWorkflow, WorkflowError

#: A schema is a form's description, not a data set: bigger ones are refused when saved, so
#: that checking one input stays cheap.
MAX_SCHEMA_BYTES = 32 * 1024
#: Problems reported for one input (a person fixes the first ones, then sends again).
MAX_ERRORS = 50


class InvalidInput(WorkflowError):
    """The input breaks the workflow's input schema; ``errors``: (path, message) pairs."""

    def __init__(self, workflow: str, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        listed = "; ".join(f"{path}: {message}" for path, message in errors)
        super().__init__(f"the input of {workflow!r} does not match its input schema: {listed}")


def schema_problems(schema: Any) -> list[tuple[str, str]]:
    """(path inside the schema, message) of each reason ``schema`` cannot be an input schema."""
    if not isinstance(schema, dict):
        return [("", "must be a JSON Schema object, e.g. {type: object, properties: {...}}")]
    size = len(json.dumps(schema, default=str))
    if size > MAX_SCHEMA_BYTES:
        return [("", f"is {size} bytes; an input schema may have at most {MAX_SCHEMA_BYTES}")]
    if schema.get("type", "object") != "object":
        return [("type", "a run's input is a JSON object: use type: object")]
    try:
        Draft7Validator.check_schema(schema)
    except SchemaError as exc:
        return [(".".join(map(str, exc.absolute_path)), f"not a valid JSON Schema: {exc.message}")]
    return []


def format_input_path(parts: list[Any]) -> str:
    """``["items", 0, "sku"]`` -> ``input.items[0].sku`` (what a person sees in an error)."""
    return "input" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def input_errors(schema: dict[str, Any] | None, data: Any) -> list[tuple[str, str]]:
    """(path, message) of each way ``data`` breaks ``schema`` (empty: it matches, or no schema).
    A missing required property is reported at its own path, so a form can show it there."""
    if not schema:
        return []
    found: list[tuple[str, str]] = []
    for error in Draft7Validator(schema).iter_errors(data):
        parts = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [name for name in error.validator_value if name not in error.instance]
            found.extend((format_input_path([*parts, name]), "is required") for name in missing)
        else:
            found.append((format_input_path(parts), error.message))
        if len(found) >= MAX_ERRORS:
            break
    return sorted(found)[:MAX_ERRORS]


def version_input_schema(version: Any) -> dict[str, Any] | None:
    """The input schema of a WorkflowVersion: its definition's, or its code workflow's."""
    definition = version.definition or {}
    if definition:
        return definition.get("input_schema")
    from automation.engine import registry  # registry imports this module

    try:
        return registry.get_workflow(version.workflow.name, version.number).input_schema
    except UnknownWorkflow:
        return None  # the code is gone: starting the run fails there, with its own message


def check_input(version: Any, data: Any) -> None:
    """Raise InvalidInput listing every path of ``data`` the version's input schema rejects."""
    errors = input_errors(version_input_schema(version), data)
    if errors:
        raise InvalidInput(version.workflow.name, errors)
