"""JSON Schemas for event data: check a schema when it is saved, validate events against it.

The active schemas are cached per process (one query per EVENTS_CONFIG_CACHE_SECONDS) because
validation runs on every ingested event; saving or deleting a schema clears this process's
cache at once, and other processes pick the change up within that many seconds.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from jsonschema import exceptions as schema_errors
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from automation.lib.errors import DomainError
from events.models import EventSchema

_validators: dict[str, Validator] = {}
_loaded_at: float = float("-inf")


class SchemaViolation(DomainError, ValueError):
    """Event data does not satisfy its schema; ``path`` names the failing place (data.x[0])."""

    code = "schema_violation"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def schema_check(schema: Any) -> None:
    """Raise ValueError naming the failing place when ``schema`` is not a valid JSON Schema."""
    if not isinstance(schema, dict):
        raise ValueError('A JSON Schema must be an object, e.g. {"type": "object"}.')
    cls = validator_for(schema)
    try:
        cls.check_schema(schema)
    except schema_errors.SchemaError as exc:
        where = _json_path("schema", exc.absolute_path)
        raise ValueError(f"{where}: {exc.message}") from None


def data_validate(event_type: str, data: Any) -> None:
    """Raise SchemaViolation when a schema is registered for ``event_type`` and data fails it."""
    validator = _current().get(event_type)
    if validator is None:
        return
    error = schema_errors.best_match(validator.iter_errors(data))
    if error is not None:
        raise SchemaViolation(_json_path("data", error.absolute_path), error.message)


def cache_clear(**_: Any) -> None:
    global _loaded_at
    _loaded_at = float("-inf")


def _current() -> dict[str, Validator]:
    global _validators, _loaded_at
    if time.monotonic() - _loaded_at < settings.EVENTS_CONFIG_CACHE_SECONDS:
        return _validators
    latest: dict[str, Validator] = {}
    # Highest version first: the first one seen per type wins.
    for row in EventSchema.objects.filter(active=True).order_by("type", "-version"):
        if row.type not in latest:
            latest[row.type] = validator_for(row.schema)(row.schema)
    _validators, _loaded_at = latest, time.monotonic()
    return latest


def _json_path(root: str, parts: Any) -> str:
    path = root
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path
