"""Reads for the rules page, the event page and the dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q

from events.models import Event
from rules.models import EventCause, Rule


@dataclass(frozen=True)
class RuleOverview:
    rule: Rule
    open_matches: int  # keys with a partial match or a window open
    derived: int  # events it emitted
    last_fired: Event | None


def rules_overview() -> list[RuleOverview]:
    """Every rule with its state. Three queries, whatever the number of rules: derived events
    are found by source through the event log's (source, received_at) index."""
    rules = list(
        Rule.objects.annotate(open_matches=Count("keys", filter=Q(keys__opened_at__isnull=False)))
    )
    sources = [rule.source for rule in rules]
    counts = dict(
        Event.objects.filter(source__in=sources)
        .values("source")
        .annotate(n=Count("id"))
        .values_list("source", "n")
    )
    last: dict[str, Event] = {}
    for rule in rules:
        found = Event.objects.filter(source=rule.source).only("id", "type", "received_at").first()
        if found is not None:
            last[rule.source] = found
    return [
        RuleOverview(rule, rule.open_matches, counts.get(rule.source, 0), last.get(rule.source))
        for rule in rules
    ]


def event_causes(event: Any) -> list[Event]:
    """The events that made a derived event, oldest first (the first 100)."""
    ids = EventCause.objects.filter(derived=event).values_list("cause_id", flat=True)
    return list(Event.objects.filter(id__in=ids).order_by("received_at", "id")[:100])


def event_effects(event: Any) -> list[Event]:
    """The derived events an event took part in."""
    ids = EventCause.objects.filter(cause=event).values_list("derived_id", flat=True)
    return list(Event.objects.filter(id__in=ids).order_by("-received_at")[:50])


def recent_anomalies(*, limit: int = 5) -> list[Event]:
    """The newest events emitted by anomaly rules."""
    sources = [
        f"rule:{name}"
        for name in Rule.objects.filter(kind=Rule.Kind.ANOMALY).values_list("name", flat=True)
    ]
    if not sources:
        return []
    return list(Event.objects.filter(source__in=sources).order_by("-received_at")[:limit])
