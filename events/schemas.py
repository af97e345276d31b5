"""JSON Schemas for event data: check a schema when it is saved, validate events against it.

The active schemas are cached per process (one query per EVENTS_CONFIG_CACHE_SECONDS) because
validation runs on every ingested event; saving or deleting a schema clears this process's
cache at once, and other processes pick the change up within that many seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from jsonschema import exceptions as schema_errors
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from automation.lib.errors import DomainError
from events.models import EventSchema


@dataclass(frozen=True)
class TypeSchemas:
    """What this process knows of one type's active schema versions."""

    version: int  # the highest active version: events are validated against it
    validator: Validator
    # version -> declarative upcast steps from the version before it
    upcasts: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


_types: dict[str, TypeSchemas] = {}
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


def data_validate(event_type: str, data: Any) -> int | None:
    """Raise SchemaViolation when a schema is registered for ``event_type`` and data fails it.
    Returns the version that validated the data (None: the type has no schema)."""
    known = _current().get(event_type)
    if known is None:
        return None
    error = schema_errors.best_match(known.validator.iter_errors(data))
    if error is not None:
        raise SchemaViolation(_json_path("data", error.absolute_path), error.message)
    return known.version


def type_schemas(event_type: str) -> TypeSchemas | None:
    """The active schema versions of ``event_type`` (cached), None when it has none."""
    return _current().get(event_type)


def cache_clear(**_: Any) -> None:
    global _loaded_at
    _loaded_at = float("-inf")


def _current() -> dict[str, TypeSchemas]:
    global _types, _loaded_at
    if time.monotonic() - _loaded_at < settings.EVENTS_CONFIG_CACHE_SECONDS:
        return _types
    latest: dict[str, TypeSchemas] = {}
    # Highest version first: the first one seen per type is the one events are validated by.
    rows = EventSchema.objects.filter(active=True).order_by("type", "-version")
    for row in rows.only("type", "version", "schema", "upcast"):
        if row.type not in latest:
            validator = validator_for(row.schema)(row.schema)
            latest[row.type] = TypeSchemas(version=row.version, validator=validator)
        if row.upcast:
            latest[row.type].upcasts[row.version] = row.upcast
    _types, _loaded_at = latest, time.monotonic()
    return latest


def _json_path(root: str, parts: Any) -> str:
    path = root
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path
