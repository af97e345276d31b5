from __future__ import annotations

from django.db import models
from django.utils import timezone

from automation.ids import uuid7


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

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            # The same delivery retried by its sender is one event.
            models.UniqueConstraint(
                fields=["source", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="event_idempotency_key_unique_per_source",
            ),
        ]
        indexes = [
            # Event lists, newest first, and the retention purge.
            models.Index(fields=["-received_at"], name="event_received_idx"),
            # wait_for_event's lookback: recent events of one type.
            models.Index(fields=["type", "-received_at"], name="event_type_received_idx"),
            # Filter by correlation id (API, admin, run pages).
            models.Index(fields=["correlation_id"], name="event_correlation_idx"),
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
        """The event as workflows see it: ``trigger`` in templates and CEL, ``event`` in code."""
        return {
            "id": str(self.id),
            "type": self.type,
            "source": self.source,
            "subject": self.subject,
            "data": self.data,
            "body": self.data,
            "headers": self.headers,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "occurred_at": self.occurred_at.isoformat(),
            "received_at": self.received_at.isoformat(),
        }
