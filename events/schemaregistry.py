"""The schema registry: versions of each event type's JSON Schema, saved under its
compatibility mode (events.compat), with the declarative upcast steps of each version.

``schema_register`` is the one way a version is added from the API; the admin runs the same
checks through ``EventSchema.clean`` (events.validation).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from automation.lib.errors import DomainError
from events import compat, payloads, schemas, upcasting
from events.models import Compatibility, EventSchema
from events.validation import event_type_error

__all__ = [
    "ConcurrentVersion",
    "IncompatibleSchema",
    "InvalidSchema",
    "previous_version",
    "schema_register",
]


class InvalidSchema(DomainError, ValueError):
    """The request does not describe a schema version; ``fields`` names each problem."""

    code = "invalid_schema"

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(
            "Fix the fields named: " + "; ".join(f"{k}: {v}" for k, v in fields.items())
        )
        self.fields = fields

    def details(self) -> dict[str, Any]:
        return {"fields": {field: [problem] for field, problem in self.fields.items()}}


class IncompatibleSchema(DomainError):
    """The new version breaks the type's compatibility mode; nothing was stored."""

    code = "incompatible_schema"
    status = 409

    def __init__(self, problems: list[str], previous: int) -> None:
        super().__init__(
            f"Not compatible with version {previous}: " + "; ".join(problems) + ". Change the "
            'schema, or send "compatibility": "none" to allow breaking changes for this type.'
        )
        self.problems = problems

    def details(self) -> dict[str, Any]:
        return {"problems": self.problems}


class ConcurrentVersion(DomainError):
    """Two versions of one type were saved at once; the other one won."""

    code = "concurrent_version"
    status = 409


def previous_version(event_type: str, *, before: int | None = None) -> EventSchema | None:
    """The highest active version of ``event_type`` (below ``before`` when given)."""
    rows = EventSchema.objects.filter(type=event_type, active=True)
    if before is not None:
        rows = rows.filter(version__lt=before)
    return rows.order_by("-version").first()


def compatibility_problems(
    previous: EventSchema | None, schema: dict[str, Any], mode: str
) -> list[str]:
    """Why ``schema`` may not follow ``previous`` under ``mode`` (empty: it may)."""
    if previous is None:
        return []
    return compat.problems(previous.schema, schema, mode)


def schema_register(
    *,
    type: str,
    schema: Any,
    compatibility: str | None = None,
    upcast: Any = None,
    description: str = "",
) -> tuple[EventSchema, bool]:
    """Save ``schema`` as the next version of ``type`` and return ``(row, created)``.

    The same schema as the latest version stores nothing (``created`` False; a new
    ``compatibility`` is then set on the latest version, the type's mode). Raises InvalidSchema
    for a bad type, schema, mode or upcast steps and IncompatibleSchema (409) when the version
    breaks the mode (the one given, else the type's), naming each path and rule.
    """
    _check(type, schema, compatibility, upcast)
    with transaction.atomic():
        previous = previous_version(type)
        mode = compatibility or (previous.compatibility if previous else Compatibility.BACKWARD)
        if previous is not None and previous.schema == schema and not upcast:
            if compatibility and compatibility != previous.compatibility:
                previous.compatibility = compatibility
                previous.save(update_fields=["compatibility"])
            return previous, False
        problems = compatibility_problems(previous, schema, mode)
        if problems:
            raise IncompatibleSchema(problems, previous.version if previous else 0)
        highest = EventSchema.objects.filter(type=type).aggregate(v=Max("version"))["v"] or 0
        try:
            with transaction.atomic():
                row = EventSchema.objects.create(
                    type=type,
                    version=highest + 1,
                    schema=schema,
                    compatibility=mode,
                    upcast=upcast or [],
                    description=description,
                )
        except IntegrityError:
            raise ConcurrentVersion(
                f"Another version of {type} was saved at the same time; GET "
                f"/api/schemas/{type}/ and send yours again if it is still needed."
            ) from None
    schemas.cache_clear()
    return row, True


def _check(type: Any, schema: Any, compatibility: Any, upcast: Any) -> None:
    fields: dict[str, str] = {}
    problem = event_type_error(type) if isinstance(type, str) else "a string is required"
    if problem:
        fields["type"] = problem
    try:
        # As deep as an event may be: much deeper, the check and the compatibility walk recurse
        # past Python's limit (a 500, before).
        payloads.check_depth(schema, what="schema")
        schemas.schema_check(schema)
    except payloads.BadPayload as exc:
        fields["schema"] = exc.message
    except ValueError as exc:
        fields["schema"] = str(exc)
    if compatibility is not None and compatibility not in Compatibility.values:
        fields["compatibility"] = f"one of {', '.join(Compatibility.values)}"
    if upcast is not None:
        errors = upcasting.upcast_errors(upcast)
        if errors:
            fields["upcast"] = "; ".join(errors)
    if fields:
        raise InvalidSchema(fields)
