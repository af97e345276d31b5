"""Event rules: definitions that watch the event stream for patterns across events, and the
state of each rule per correlation key, kept in rows (never in a worker's memory).

A rule's state for one key is a RuleKey row: the partial match of a sequence or an absence, the
window of a threshold, an aggregate or an anomaly. Routing workers lock that row (an UPDATE
first) before they read it, so two workers routing events of one key take turns and a window
fires once. ``due_at`` is the row's timer: the deadline of an absence, the end of a window; the
periodic sweep fires rows that are due. The events a row holds are RuleEvent rows; when the
rule fires they become the derived event's EventCause rows.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from events.models import Event


class Rule(models.Model):
    """A rule definition (``kind``: sequence, absence, threshold, aggregate, anomaly)."""

    class Kind(models.TextChoices):
        SEQUENCE = "sequence", "Sequence"
        ABSENCE = "absence", "Absence"
        THRESHOLD = "threshold", "Threshold"
        AGGREGATE = "aggregate", "Aggregate"
        ANOMALY = "anomaly", "Anomaly"

    name = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    description = models.TextField(blank=True)
    definition = models.JSONField()
    checksum = models.CharField(max_length=64, editable=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def source(self) -> str:
        """The ``source`` of the events this rule emits."""
        return f"rule:{self.name}"


class RuleKey(models.Model):
    """One rule's state for one correlation key (see the module docstring)."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="keys")
    key = models.CharField(max_length=200, blank=True)
    # Kind-specific figures: a sequence's step, an aggregate's running sum, an anomaly's
    # history of past window counts. Small and bounded; the events themselves are RuleEvents.
    state = models.JSONField(default=dict, blank=True)
    # When the current partial match or window opened.
    opened_at = models.DateTimeField(null=True, blank=True)
    # The row's timer: when the sweep must look at it (a deadline, a window's end).
    due_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "key"], name="rule_key_unique"),
        ]
        indexes = [
            # The rules sweep: rows whose deadline or window end has come.
            models.Index(
                fields=["due_at"], condition=models.Q(due_at__isnull=False), name="rule_key_due_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule.name} {self.key!r}"


class RuleEvent(models.Model):
    """An event held by a rule key's current partial match or window."""

    rule_key = models.ForeignKey(RuleKey, on_delete=models.CASCADE, related_name="events")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # Routing claims an event once; this makes a second count a conflict, not a row.
            models.UniqueConstraint(fields=["rule_key", "event"], name="rule_event_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_key} {self.event_id}"


class EventCause(models.Model):
    """A derived event and one of the events that made it (its causation links)."""

    derived = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="rule_causes")
    cause = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="rule_effects")
    rule = models.ForeignKey(Rule, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["derived", "cause"], name="event_cause_unique"),
        ]
        # The event page: the derived events an event took part in (cause -> derived). The
        # other direction is served by the unique constraint's index.
        indexes = [models.Index(fields=["cause"], name="event_cause_cause_idx")]

    def __str__(self) -> str:
        return f"{self.derived_id} <- {self.cause_id}"
