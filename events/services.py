"""Writes of the events domain: store an event, then route it after commit.

``event_record`` is the one way an event enters the system (webhooks, the API, signals,
schedules and workflows all call it). Routing is dispatched with ``transaction.on_commit`` and
``events.sweep_unrouted`` routes whatever a crash between commit and dispatch left behind.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import unicodedata
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_celery_beat import validators as cron_validators
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from automation.engine import dispatch
from automation.engine.runs import waits_resolve_for_event
from automation.lib import logcontext, requestuser
from automation.lib.db import delete_in_batches, insert_plain, update_returning
from automation.lib.requestuser import request_user
from automation.triggers import runs_start_for_event
from events import schemas, signatures
from events.models import Event, TypeFrom, VerificationScheme, WebhookEndpoint
from events.payloads import BadPayload, PathNotFound, parse_json_object, resolve_path
from events.signals import event_recorded

logger = logging.getLogger(__name__)

EVENT_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*$")
# Events stored less than this long ago are left to their on_commit dispatch by the sweep.
ROUTING_GRACE = timedelta(seconds=5)


class InvalidEvent(ValueError):
    """The event cannot be stored; the message says which field and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


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
    _validate(
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
        dispatch.route(event.id)  # after commit; with "outbox" the router finds it in the table
    event_recorded.send_after_commit(event_id=event.id, type=event.type, source=event.source)
    return event, True


def _validate(type: str, data: Any, **texts: str | None) -> None:
    validate_event_type(type)
    if not isinstance(data, dict):
        raise InvalidEvent("data", "a JSON object is required")
    for field, value in texts.items():
        if value and len(value) > _MAX_LENGTHS[field]:
            raise InvalidEvent(field, f"at most {_MAX_LENGTHS[field]} characters")
    try:
        schemas.data_validate(type, data)
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


def event_route(*, event_id: Any) -> int:
    """Start the runs this event triggers and resume the runs waiting for it, exactly once.

    Claiming (setting ``routed_at``) and routing share one transaction: a crash in between
    leaves the event unrouted for the sweep, and a concurrent second routing finds it claimed.
    Returns the number of runs started.
    """
    return len(_route(event_id))


def event_route_and_advance(*, event_id: Any) -> int:
    """Route the event, then advance the first run it started right here (what the routing
    task does: the first step runs without another trip through the broker). The first run's
    lease is taken in the routing transaction, one commit less; if this worker dies before
    advancing it, the recovery sweep takes the run over once the lease expires."""
    from automation.engine import leases
    from automation.engine.executor import run_advance

    owner = leases.new_owner()
    runs = _route(event_id, lease_first_to=owner)
    if runs and runs[0].lease_owner == owner:
        run_advance(runs[0].id, owner=owner, fresh=runs[0])
    return len(runs)


def _route(event_id: Any, *, lease_first_to: str = "") -> list:
    # Every log line of the routing names the event; the runs are the event actor's, never the
    # user of a request whose thread a backend routes in.
    with logcontext.scope(event_id=event_id), requestuser.detached():
        return _route_claimed(event_id, lease_first_to=lease_first_to)


def _route_claimed(event_id: Any, *, lease_first_to: str = "") -> list:

    with transaction.atomic():
        unrouted = Event.objects.filter(id=event_id, routed_at__isnull=True)
        # ``data`` (up to WEBHOOK_MAX_BODY_BYTES of JSON) is read only when a trigger or a wait
        # looks into it: an event no workflow wants, or whose filter is refused, costs no parse.
        event = update_returning(unrouted, defer=("data",), routed_at=timezone.now())
        if event is None:
            return []  # routed already, or being routed by another worker
        logcontext.bind(correlation_id=event.correlation_id)
        problems: list[str] = []
        runs = runs_start_for_event(event, lease_first_to=lease_first_to, problems=problems)
        waits_resolve_for_event(event, problems=problems)
        if problems:  # shown on the event's page: a filter over its limits is not silent
            Event.objects.filter(id=event_id).update(route_errors=problems[:50])
    return runs


def events_route_unrouted(*, limit: int = 500, grace: timedelta | None = None) -> int:
    """Route events that were stored but never routed. Returns how many it routed.

    In publish mode events younger than ``ROUTING_GRACE`` are left to their after-commit
    dispatch; in outbox mode nothing else routes them, so there is no grace.
    """
    if grace is None:
        grace = ROUTING_GRACE if settings.EVENTS_ROUTING == "publish" else timedelta(0)
    cutoff = timezone.now() - grace
    pending = list(
        Event.objects.filter(routed_at__isnull=True, received_at__lte=cutoff)
        .order_by("received_at")
        .values_list("id", flat=True)[:limit]
    )
    routed = 0
    for event_id in pending:
        try:
            event_route(event_id=event_id)
            routed += 1
        except Exception:  # one broken event never blocks the others
            with logcontext.scope(event_id=event_id):
                logger.exception("routing event %s failed; it stays unrouted", event_id)
    return routed


# --- Replay ---------------------------------------------------------------------------------


def event_replay(*, event: Event, actor_id: Any = None) -> Event:
    """Store a copy of ``event`` caused by it (causation_id = its id) and route the copy.
    ``actor_id``: who replayed it (the runs the copy starts are theirs)."""
    copy, _ = event_record(
        type=event.type,
        data=event.data,
        source=event.source,
        subject=event.subject,
        correlation_id=event.correlation_id,
        causation_id=str(event.id),
        headers=event.headers,
        occurred_at=event.occurred_at,
        actor_id=actor_id,
    )
    return copy


# --- Webhooks -------------------------------------------------------------------------------

# Request headers never stored with an event (credentials and signatures).
SECRET_HEADER_WORDS = ("authorization", "cookie", "signature", "secret", "token", "api-key")


def headers_without_secrets(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers worth keeping with an event, lower-cased, credentials and signatures removed."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if any(word in lowered for word in SECRET_HEADER_WORDS):
            continue
        kept[lowered] = value[:1000]
    return kept


def webhook_receive(
    *, endpoint: WebhookEndpoint, body: bytes, headers: Mapping[str, str]
) -> tuple[Event, bool]:
    """Verify, parse and store one webhook delivery; returns ``(event, created)``.

    Raises ``SignatureError`` (401), ``BadPayload`` or ``InvalidEvent`` (400). A repeated
    delivery (same webhook-id, X-GitHub-Delivery, Stripe event id or idempotency header)
    returns the event stored the first time, with ``created`` False.
    """
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadPayload("malformed_json", "The body is not UTF-8 encoded JSON.") from None
    signed_at = signatures.verify(endpoint=endpoint, body=body, headers=headers, now=timezone.now())
    payload = parse_json_object(body)
    return event_record(
        type=_webhook_type(endpoint, payload, headers),
        data=_webhook_data(endpoint, payload),
        source=endpoint.source,
        idempotency_key=_webhook_delivery_id(endpoint, payload, headers, body),
        headers=headers_without_secrets(headers),
        occurred_at=signed_at,
    )


_DEFAULT_TYPE_FROM = {
    VerificationScheme.STANDARD_WEBHOOKS: (TypeFrom.JSON_PATH, "type"),
    VerificationScheme.STRIPE: (TypeFrom.JSON_PATH, "type"),
    VerificationScheme.GITHUB: (TypeFrom.HEADER, "X-GitHub-Event"),
    VerificationScheme.NONE: (TypeFrom.JSON_PATH, "type"),
}


def webhook_type_rule(endpoint: WebhookEndpoint) -> tuple[str, str]:
    """How this endpoint picks the event type: (fixed|header|json_path, value)."""
    if endpoint.type_from:
        return endpoint.type_from, endpoint.type_value
    return _DEFAULT_TYPE_FROM[VerificationScheme(endpoint.scheme)]


def _webhook_type(
    endpoint: WebhookEndpoint, payload: dict[str, Any], headers: Mapping[str, str]
) -> str:
    how, value = webhook_type_rule(endpoint)
    if how == TypeFrom.FIXED:
        found: Any = value
    elif how == TypeFrom.HEADER:
        found = headers.get(value, "")
        if not found:
            raise BadPayload("missing_type", f"The {value} header (the event type) is missing.")
    else:
        try:
            found = resolve_path(payload, value)
        except PathNotFound as exc:
            raise BadPayload(
                "missing_type", f"The body has no {exc} (where this endpoint reads the type)."
            ) from None
    if not isinstance(found, str):
        raise BadPayload("missing_type", f"The event type at {value} must be a string.")
    return endpoint.type_prefix + found


def _webhook_data(endpoint: WebhookEndpoint, payload: dict[str, Any]) -> dict[str, Any]:
    path = endpoint.data_path
    if not path and endpoint.scheme == VerificationScheme.STANDARD_WEBHOOKS:
        # The Standard Webhooks payload convention: {"type", "timestamp", "data"}.
        data = payload.get("data")
        return data if isinstance(data, dict) else payload
    if not path:
        return payload
    try:
        data = resolve_path(payload, path)
    except PathNotFound as exc:
        raise BadPayload("missing_data", f"The body has no {exc} (this endpoint's data).") from None
    if not isinstance(data, dict):
        raise BadPayload("missing_data", f"The body's {path} must be a JSON object.")
    return data


def _webhook_delivery_id(
    endpoint: WebhookEndpoint, payload: dict[str, Any], headers: Mapping[str, str], body: bytes
) -> str | None:
    if endpoint.idempotency_header:
        return headers.get(endpoint.idempotency_header) or None
    if endpoint.scheme == VerificationScheme.STANDARD_WEBHOOKS:
        return headers.get("webhook-id") or None
    if endpoint.scheme == VerificationScheme.GITHUB:
        return signatures.github_replay_key(body)  # the delivery id is not signed
    if endpoint.scheme == VerificationScheme.STRIPE:
        event_id = payload.get("id")
        return event_id if isinstance(event_id, str) and event_id else None
    return headers.get("idempotency-key") or None


# --- Webhook endpoints ----------------------------------------------------------------------


def webhook_secret_generate(scheme: str) -> str:
    """A new random secret in the form the scheme's senders expect."""
    if scheme == VerificationScheme.STANDARD_WEBHOOKS:
        return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    if scheme == VerificationScheme.STRIPE:
        return "whsec_" + secrets.token_hex(32)
    if scheme == VerificationScheme.GITHUB:
        return secrets.token_hex(32)
    return ""


def webhook_endpoint_create(
    *, slug: str, scheme: str, secret: str = "", **options: Any
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; returns it and its secret (generated unless given), to show once.

    ``options``: description, type_from, type_value, type_prefix, data_path,
    idempotency_header, max_body_bytes, active. Raises ValidationError naming the field.
    """
    secret = secret or webhook_secret_generate(scheme)
    endpoint = WebhookEndpoint(slug=slug, scheme=scheme, secret=secret, **options)
    endpoint.full_clean()
    endpoint.save()
    return endpoint, secret


def webhook_endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, secret: str = "", grace: timedelta | None = None
) -> str:
    """Give the endpoint a new secret; the old one still verifies for ``grace``.

    Returns the new secret (shown once). ``grace`` defaults to WEBHOOK_SECRET_ROTATION_GRACE.
    """
    if grace is None:
        grace = timedelta(seconds=settings.WEBHOOK_SECRET_ROTATION_GRACE)
    new_secret = secret or webhook_secret_generate(endpoint.scheme)
    with transaction.atomic():
        # Locked, so two rotations at once cannot both keep the same "previous" secret.
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret = locked.secret
        locked.previous_secret_expires_at = timezone.now() + grace
        locked.secret = new_secret
        locked.full_clean()
        locked.save(
            update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"]
        )
    endpoint.refresh_from_db()
    return new_secret


# --- Schedules ------------------------------------------------------------------------------


def schedule_create(
    *,
    name: str,
    event_type: str,
    data: dict[str, Any] | None = None,
    cron: str = "",
    every_seconds: int | None = None,
    timezone: str = "",
) -> PeriodicTask:
    """A django-celery-beat PeriodicTask that emits ``event_type`` on a cron or an interval.

    ``cron`` is five fields, ``minute hour day-of-month month day-of-week`` (e.g. ``0 9 * * 1``),
    read in ``timezone`` (an IANA name such as ``Europe/Oslo``; default: TIME_ZONE). A field
    out of range (``61 * * * *``) is a ValueError naming it, and nothing is stored. The same
    row is editable in admin under Periodic tasks.
    """
    validate_event_type(event_type)
    if not isinstance(data or {}, dict):
        raise InvalidEvent("data", "a JSON object is required")
    if bool(cron) == (every_seconds is not None):
        raise ValueError("give exactly one of cron (e.g. '0 9 * * 1') or every_seconds")
    schedule = _cron_schedule(cron, timezone) if cron else _interval_schedule(every_seconds)
    return PeriodicTask.objects.create(
        name=name,
        task="events.emit_scheduled",
        kwargs=json.dumps({"type": event_type, "data": data or {}}),
        **schedule,
    )


#: The five cron fields, each with the django-celery-beat validator that beat's parser agrees
#: with (a value it would refuse at the first tick is refused when the schedule is made).
CRON_FIELDS = [
    ("minute", "minute (0-59)", cron_validators.minute_validator),
    ("hour", "hour (0-23)", cron_validators.hour_validator),
    ("day_of_month", "day of month (1-31)", cron_validators.day_of_month_validator),
    ("month_of_year", "month (1-12)", cron_validators.month_of_year_validator),
    ("day_of_week", "day of week (0-6, sun-sat)", cron_validators.day_of_week_validator),
]


def _cron_schedule(cron: str, timezone: str) -> dict[str, CrontabSchedule]:
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"cron {cron!r} must have 5 fields: minute hour day month weekday")
    for value, (_, label, validate) in zip(fields, CRON_FIELDS, strict=True):
        try:
            validate(value)
        except DjangoValidationError:
            raise ValueError(f"cron {cron!r}: {value!r} is not a valid {label}") from None
    zone = timezone or settings.TIME_ZONE
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone {zone!r} is unknown; use an IANA name: Europe/Oslo") from None
    crontab, _ = CrontabSchedule.objects.get_or_create(
        **{name: value for value, (name, _, _) in zip(fields, CRON_FIELDS, strict=True)},
        timezone=zone,
    )
    return {"crontab": crontab}


def _interval_schedule(every_seconds: int | None) -> dict[str, IntervalSchedule]:
    if every_seconds is None or every_seconds < 1:
        raise ValueError("every_seconds must be at least 1")
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=every_seconds, period=IntervalSchedule.SECONDS
    )
    return {"interval": interval}


# --- Retention ------------------------------------------------------------------------------


def events_purge(
    *, older_than: timedelta, batch_size: int = 1000, max_batches: int | None = None
) -> int:
    """Delete routed events received more than ``older_than`` ago, ``batch_size`` per
    transaction. Events that started a run still active are kept (the run reads its trigger);
    finished runs keep their data, and lose only the link to the event. Returns how many."""
    expired = events_expired(older_than=older_than)
    return delete_in_batches(expired, batch_size=batch_size, max_batches=max_batches)


def events_expired(*, older_than: timedelta) -> Any:
    """Routed events received more than ``older_than`` ago, except the triggers of active runs."""
    from automation.models import ACTIVE_STATUSES

    cutoff = timezone.now() - older_than
    return Event.objects.filter(received_at__lt=cutoff, routed_at__isnull=False).exclude(
        runs__status__in=ACTIVE_STATUSES
    )
