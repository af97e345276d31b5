from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from automation.lib.ids import uuid7


class Event(models.Model):
    """Something that happened, stored before anyone is told about it (append-only).

    An event is routed after the transaction that stored it commits: every workflow subscribed
    to its type starts a run, and runs waiting for it resume. ``routed_at`` stays empty until
    then, so a sweep can find events whose routing was lost (process killed after commit).
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    type = models.CharField(max_length=200, help_text="Dotted name, e.g. order.created.")
    source = models.CharField(
        max_length=200, help_text="Where it came from: api, webhook:<slug>, signal:…, run:<id>."
    )
    subject = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    headers = models.JSONField(
        default=dict, blank=True, help_text="Request headers of webhook events, secrets removed."
    )
    correlation_id = models.CharField(max_length=200, blank=True)
    causation_id = models.CharField(
        max_length=200, blank=True, help_text="The run or event that caused this event."
    )
    # NULL, not "", for "no key": the unique constraint below only applies to real keys.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    occurred_at = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(default=timezone.now)
    routed_at = models.DateTimeField(null=True, blank=True)
    # Why routing skipped a workflow or a waiting step for this event (a trigger filter over
    # its limits, a condition that failed on this data): shown on the event's page.
    route_errors = models.JSONField(default=list, blank=True, editable=False)
    # The person who caused the event: the API user who posted it, the signed-in user whose
    # save a signal bridge turned into it, the user who replayed it, the requester of the run
    # that emitted it. Runs it starts are theirs (their requester, whom four-eyes refuses).
    # None for webhooks and schedules: an external system or the clock.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # partial index below: most events (webhooks) have none
    )
    # The version of its type's schema that validated ``data`` when it was stored; None when
    # the type had no schema then. Upcasters bring older shapes up to the latest on reading
    # (events.upcasting); the stored data is never rewritten.
    schema_version = models.PositiveIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-received_at"]
        permissions = [("replay_event", "Can replay an event (starts its workflows again)")]
        constraints = [
            # The same delivery retried by its sender is one event. Senders without an actor
            # (webhooks, schedules, commands) share a source's keys; ...
            models.UniqueConstraint(
                fields=["source", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False, actor__isnull=True),
                name="event_idempotency_key_unique_per_source",
            ),
            # ... a person's keys are theirs: another API client sending the same key stores an
            # event of its own instead of turning a genuine event into a "duplicate" of theirs.
            models.UniqueConstraint(
                fields=["source", "idempotency_key", "actor"],
                condition=models.Q(idempotency_key__isnull=False, actor__isnull=False),
                name="event_idempotency_key_unique_per_actor",
            ),
        ]
        indexes = [
            # Event lists, newest first, and the retention purge.
            models.Index(fields=["-received_at"], name="event_received_idx"),
            # wait_for_event's lookback: recent events of one type.
            models.Index(fields=["type", "-received_at"], name="event_type_received_idx"),
            # Filter by correlation id (API, admin, run pages). Partial: most events have none,
            # and a B-tree full of equal '' keys made every INSERT about twice as slow.
            models.Index(
                fields=["correlation_id"],
                condition=~models.Q(correlation_id=""),
                name="event_correlation_idx",
            ),
            # The causation chain: events emitted by a run, replays of an event (detail pages).
            # Partial for the same reason.
            models.Index(
                fields=["causation_id"],
                condition=~models.Q(causation_id=""),
                name="event_causation_idx",
            ),
            # Event lists filtered by source (API, admin), newest first.
            models.Index(fields=["source", "-received_at"], name="event_source_received_idx"),
            # Deleting a user sets the actor of their events to NULL. Partial: webhook and
            # scheduled events have no actor, and cost no index entry.
            models.Index(
                fields=["actor"],
                condition=models.Q(actor__isnull=False),
                name="event_actor_idx",
            ),
            # The routing sweep: events stored but not yet routed.
            models.Index(
                fields=["received_at"],
                condition=models.Q(routed_at__isnull=True),
                name="event_unrouted_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} ({self.id})"

    def as_trigger(self) -> dict:
        """The event as workflows see it: ``trigger`` in templates and CEL, ``event`` in code.

        ``data`` is in the latest shape of its type's schema (upcast, never rewritten)."""
        from events.upcasting import latest_data

        data = latest_data(self)
        return {
            "id": str(self.id),
            "type": self.type,
            "source": self.source,
            "subject": self.subject,
            "data": data,
            "body": data,
            "headers": self.headers,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "occurred_at": self.occurred_at.isoformat(),
            "received_at": self.received_at.isoformat(),
        }


class VerificationScheme(models.TextChoices):
    STANDARD_WEBHOOKS = "standard_webhooks", "Standard Webhooks (webhook-signature)"
    GITHUB = "github", "GitHub (X-Hub-Signature-256)"
    STRIPE = "stripe", "Stripe (Stripe-Signature)"
    NONE = "none", "None: trusted network only"


class TypeFrom(models.TextChoices):
    FIXED = "fixed", "Fixed type"
    HEADER = "header", "Request header"
    JSON_PATH = "json_path", "JSON path into the body"


class WebhookEndpoint(models.Model):
    """A URL (/hooks/<slug>/) where an external system delivers events, and how to check them.

    The secret is shown once, when it is created or rotated, and kept only so signatures can be
    verified. After a rotation the previous secret keeps working until
    ``previous_secret_expires_at``, so the sender can switch over without losing deliveries.
    """

    slug = models.SlugField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    scheme = models.CharField(max_length=30, choices=VerificationScheme.choices)
    secret = models.CharField(max_length=200, blank=True, editable=False)
    previous_secret = models.CharField(max_length=200, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    type_from = models.CharField(
        max_length=20,
        choices=TypeFrom.choices,
        blank=True,
        help_text="Blank: the scheme's convention (body `type`; X-GitHub-Event for GitHub).",
    )
    type_value = models.CharField(
        max_length=200,
        blank=True,
        help_text="The fixed type, the header name or the JSON path (e.g. `event.kind`).",
    )
    type_prefix = models.CharField(
        max_length=100, blank=True, help_text="Put before the type, e.g. `github.` → github.push."
    )
    data_path = models.CharField(
        max_length=200,
        blank=True,
        help_text="JSON path of the event data in the body; blank: the whole body "
        "(`data` is used for Standard Webhooks when blank).",
    )
    idempotency_header = models.CharField(
        max_length=100,
        blank=True,
        help_text="Header whose value identifies a delivery; blank: the scheme's "
        "(webhook-id, X-GitHub-Delivery, the Stripe event id, Idempotency-Key).",
    )
    max_body_bytes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Blank: the WEBHOOK_MAX_BODY_BYTES setting."
    )
    active = models.BooleanField(default=True, help_text="Inactive endpoints answer 404.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def source(self) -> str:
        return f"webhook:{self.slug}"

    def clean(self) -> None:
        from events.validation import webhook_endpoint_errors

        errors = webhook_endpoint_errors(self)
        if errors:
            raise ValidationError(errors)

    def verification_secrets(self, now: datetime) -> list[str]:
        """The secrets a signature may be made with right now: current, then previous in grace."""
        secrets = [self.secret] if self.secret else []
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires is not None and expires > now:
            secrets.append(self.previous_secret)
        return secrets


class Compatibility(models.TextChoices):
    """What a new version of a type's schema must keep, as Confluent Schema Registry defines it
    (against the previous version)."""

    NONE = "none", "None: any change"
    BACKWARD = "backward", "Backward: the new schema accepts the previous version's data"
    FORWARD = "forward", "Forward: the previous schema accepts the new version's data"
    FULL = "full", "Full: backward and forward"


class EventSchema(models.Model):
    """The JSON Schema the ``data`` of events of one type must satisfy (the highest version).

    Each version may carry ``upcast``: declarative steps that turn data of the previous
    version into this version's shape (events.upcasting)."""

    type = models.CharField(max_length=200, help_text="Exact event type, e.g. order.created.")
    version = models.PositiveIntegerField(default=1)
    schema = models.JSONField(help_text="A JSON Schema (draft 2020-12 unless $schema says).")
    compatibility = models.CharField(
        max_length=10,
        choices=Compatibility.choices,
        default=Compatibility.BACKWARD,
        help_text="The type's mode is its highest version's; checked against the previous one.",
    )
    upcast = models.JSONField(
        default=list,
        blank=True,
        help_text='From the previous version: [{"rename": {"from": "a", "to": "b"}}, '
        '{"default": {"path": "currency", "value": "EUR"}}, {"move": {"from": "x", "to": "y.x"}}]',
    )
    description = models.CharField(max_length=300, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["type", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["type", "version"], name="event_schema_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.type} v{self.version}"

    def clean(self) -> None:
        from events.validation import event_schema_errors

        errors = event_schema_errors(self)
        if errors:
            raise ValidationError(errors)


class ModelAction(models.TextChoices):
    CREATED = "created", "Created"
    UPDATED = "updated", "Updated"
    DELETED = "deleted", "Deleted"


class SignalBridge(models.Model):
    """Emit an event when a model instance is created, updated or deleted (edited in admin).

    With ``field`` set, only an update that changes that field fires, optionally only from
    ``from_value`` and/or to ``to_value`` (compared as text; blank means any value).
    """

    model = models.CharField(max_length=200, help_text="app_label.ModelName, e.g. billing.Invoice")
    action = models.CharField(max_length=20, choices=ModelAction.choices)
    field = models.CharField(max_length=100, blank=True, help_text="Only when this field changes.")
    from_value = models.CharField(max_length=200, blank=True, help_text="Blank: any old value.")
    to_value = models.CharField(max_length=200, blank=True, help_text="Blank: any new value.")
    event_type = models.CharField(max_length=200)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "action"]

    def __str__(self) -> str:
        change = f" {self.field}" if self.field else ""
        return f"{self.model} {self.action}{change} → {self.event_type}"

    def clean(self) -> None:
        from events.validation import signal_bridge_errors

        errors = signal_bridge_errors(self)
        if errors:
            raise ValidationError(errors)


class ProjectionCheckpoint(models.Model):
    """How far a projection (events.projections) has folded the event log, in log order
    (received_at, id). Written in the transaction that applies the events to the projection's
    models, so each event is applied exactly once, also across a kill -9."""

    name = models.CharField(max_length=200, unique=True)
    last_received_at = models.DateTimeField(null=True, blank=True)
    last_event_id = models.UUIDField(null=True, blank=True)
    applied = models.PositiveBigIntegerField(default=0, help_text="Events applied since built.")
    error = models.TextField(blank=True, help_text="Why the last attempt stopped, if it failed.")
    error_event_id = models.UUIDField(null=True, blank=True)
    rebuilt_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
