"""Recording events: store one, then have it routed after commit.

``event_record`` is the one way an event enters the system (webhooks, the API, signals,
schedules and workflows all call it). Routing is sent with ``transaction.on_commit`` through
events.publisher, and ``events.sweep_unrouted`` routes whatever a crash between commit and
sending left behind (events.routing). Webhooks, schedules and retention have modules of their
own (events.webhooks, events.schedules, events.retention).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from automation.lib import logcontext
from automation.lib.db import insert_plain
from automation.lib.errors import DomainError
from automation.lib.requestuser import request_user
from events import publisher, schemas
from events.models import Event
from events.signals import event_recorded

logger = logging.getLogger(__name__)

EVENT_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*$")


class InvalidEvent(DomainError, ValueError):
    """The event cannot be stored; the message says which field and why."""

    code = "invalid_event"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def details(self) -> dict[str, Any]:
        return {"field": self.field}


def validate_event_type(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidEvent("type", "a non-empty string is required")
    if len(value) > 200 or not EVENT_TYPE_RE.match(value):
        raise InvalidEvent(
            "type", "use dotted names of letters, digits, '-' and '_', e.g. order.created"
        )
    return value


def event_record(
    *,
    type: str,
    data: dict[str, Any],
    source: str,
    subject: str = "",
    correlation_id: str = "",
    causation_id: str = "",
    idempotency_key: str | None = None,
    headers: dict[str, str] | None = None,
    occurred_at: datetime | None = None,
    actor_id: Any = None,
) -> tuple[Event, bool]:
    """Store an event, or return the one already stored under ``(source, idempotency_key)``
    by the same actor (keys are scoped per actor; events without one share the source's).

    ``actor_id``: the user who caused it (see ``Event.actor``); the runs it starts are theirs.
    Returns ``(event, created)``. The event is routed after the surrounding transaction commits;
    if that transaction rolls back, the event never existed. Raises ``InvalidEvent`` (naming the
    field, or the failing path in ``data``) for a bad type, non-object data or data that fails
    the type's JSON Schema.
    """
    schema_version = _validate(
        type,
        data,
        source=source,
        subject=subject,
        correlation_id=correlation_id,
        causation_id=causation_id,
        idempotency_key=idempotency_key,
    )
    fields = {
        "type": type,
        "data": data,
        "source": source,
        "subject": subject or "",
        "correlation_id": correlation_id or "",
        "causation_id": causation_id or "",
        "idempotency_key": idempotency_key or None,
        "headers": headers or {},
        "occurred_at": occurred_at or timezone.now(),
        "actor_id": actor_id,
        "schema_version": schema_version,
    }
    # Insert first: new deliveries (the common case) cost one statement, and the unique
    # constraint, not a prior SELECT, decides between concurrent duplicates. Events are
    # append-only and nothing listens to their post_save (event_recorded is the signal).
    try:
        event = insert_plain(Event, **fields)
    except IntegrityError:
        if not idempotency_key:
            raise
        # The same delivery was stored before (or by a concurrent request that committed first),
        # unless another constraint (the JSON check) refused the row: that is no duplicate.
        same = {"source": source, "idempotency_key": idempotency_key, "actor_id": actor_id}
        stored = Event.objects.filter(**same).first()
        if stored is None:
            raise
        return stored, False
    if logger.isEnabledFor(logging.DEBUG):  # the log context costs more than the line
        with logcontext.scope(event_id=event.id, correlation_id=event.correlation_id):
            logger.debug("stored %s event from %s", type, source)
    if settings.EVENTS_ROUTING == "publish":
        publisher.route_after_commit(event.id)  # with "outbox" the router finds it in the table
    event_recorded.send_after_commit(event_id=event.id, type=event.type, source=event.source)
    return event, True


def _validate(type: str, data: Any, **texts: str | None) -> int | None:
    validate_event_type(type)
    if not isinstance(data, dict):
        raise InvalidEvent("data", "a JSON object is required")
    for field, value in texts.items():
        if value and len(value) > _MAX_LENGTHS[field]:
            raise InvalidEvent(field, f"at most {_MAX_LENGTHS[field]} characters")
    try:
        return schemas.data_validate(type, data)
    except schemas.SchemaViolation as exc:
        raise InvalidEvent(exc.path, exc.message) from None


# Sources the server writes (webhooks, signal bridges, schedules, runs, application code). An
# API client claiming one would have its event routed as if it came from there, and would take
# the idempotency key of a delivery still to come (the genuine one then answered "duplicate").
# Refusing them keeps the sources, and so the (source, idempotency key) dedupe scopes, of API
# clients and of the server apart.
# "api" is what plain-JSON API events get, "cli" the emit command's default.
SERVER_SOURCE_PREFIXES = ("webhook:", "signal:", "schedule:", "run:")
SERVER_SOURCES = ("app", "api", "cli")
API_SOURCE = "api"
# What an API client's source may be: a URI reference (CloudEvents' rule) in printable ASCII,
# the characters RFC 3986 allows. Look-alikes of a server source (full-width letters, invisible
# or soft-hyphen characters) and spaces are refused rather than compared.
_URI_REFERENCE = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


def event_ingest(*, actor_id: Any, source: str | None = None, **fields: Any) -> tuple[Event, bool]:
    """Store an event an API client sent (``event_record``'s arguments) as user ``actor_id``:
    with the source it claims (a CloudEvent's), or ``api`` (plain JSON) when None. Raises
    ``InvalidEvent`` naming ``source`` when it claims one the server writes, or naming
    ``causationid`` when it claims a cause."""
    if fields.get("causation_id"):
        # The causation id names the run or event that caused this one ("emitted by" a run on
        # its page); the server writes it, a client's claim would be believed.
        raise InvalidEvent(
            "causationid",
            "the causation id is written by the server only (the run or event that caused an "
            "event); put your own reference in correlationid or in the data",
        )
    if source is None:
        return event_record(source=API_SOURCE, actor_id=actor_id, **fields)
    if not _URI_REFERENCE.fullmatch(source):
        raise InvalidEvent(
            "source",
            f"{source!r} is not a URI reference in printable ASCII (letters, digits and "
            "-._~:/?#[]@!$&'()*+,;=%, no spaces); use e.g. https://erp.example.com or /billing",
        )
    claimed = unicodedata.normalize("NFKC", source).casefold()
    if claimed.startswith(SERVER_SOURCE_PREFIXES) or claimed in SERVER_SOURCES:
        raise InvalidEvent(
            "source",
            f"{source!r} is written by the server only (sources starting with "
            f"{', '.join(SERVER_SOURCE_PREFIXES)} or equal to {', '.join(SERVER_SOURCES)}); "
            "use a source of your own, e.g. a URI naming your system",
        )
    return event_record(source=source, actor_id=actor_id, **fields)


_MAX_LENGTHS = {
    "source": 200,
    "subject": 200,
    "correlation_id": 200,
    "causation_id": 200,
    "idempotency_key": 255,
}


def emit(type: str, data: dict[str, Any] | None = None, **meta: Any) -> Event:
    """Emit an event from application code.

    Inside a transaction the event exists (and starts runs) only if that transaction commits.
    ``meta``: ``source`` (default ``app``), ``subject``, ``correlation_id``, ``causation_id``,
    ``idempotency_key``, ``occurred_at``, ``actor_id`` (default: the signed-in user of the
    request being served, if any: a save in the admin that a signal bridge turns into an event
    is theirs).
    """
    meta.setdefault("source", "app")
    if "actor_id" not in meta:
        meta["actor_id"] = getattr(request_user(), "pk", None)
    event, _ = event_record(type=type, data=data if data is not None else {}, **meta)
    return event
