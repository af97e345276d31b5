"""Reads of the events domain: filtered event lists, the runs an event started, its effects."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime

from automation.lib.errors import DomainError
from automation.lib.ids import BadIdPrefix, id_lookup
from events.models import Event


class BadFilter(DomainError, ValueError):
    """A filter value cannot be used; the message names the parameter."""

    code = "invalid_filter"


def events_filter(params: Mapping[str, str]) -> QuerySet[Event]:
    """Events filtered by ``id`` (a whole id or the short id the pages show), ``type`` (exact, or
    ``order.*``), ``source``, ``correlation_id``, ``subject``, ``received_after`` and
    ``received_before`` (ISO 8601), newest first."""
    events = Event.objects.all()
    if params.get("id"):
        try:
            events = events.filter(id_lookup("id", params["id"]))
        except BadIdPrefix as exc:
            raise BadFilter(str(exc)) from exc
    event_type = params.get("type")
    if event_type:
        if event_type.endswith(".*"):
            events = events.filter(type__startswith=event_type[:-1])
        else:
            events = events.filter(type=event_type)
    for name in ("source", "correlation_id", "subject"):
        if params.get(name):
            events = events.filter(**{name: params[name]})
    if params.get("received_after"):
        events = events.filter(received_at__gte=_datetime(params, "received_after"))
    if params.get("received_before"):
        events = events.filter(received_at__lt=_datetime(params, "received_before"))
    return events


def _datetime(params: Mapping[str, str], name: str) -> datetime:
    value = parse_datetime(params[name].replace(" ", "+"))
    if value is None or value.tzinfo is None:
        raise BadFilter(f"{name} must be an ISO 8601 time with a zone, e.g. 2026-01-31T12:00Z")
    # In UTC: PostgreSQL refuses zone offsets beyond ±15:59 that Python accepts.
    return value.astimezone(UTC)


def event_runs(event: Event) -> list:
    """The runs this event started, with their workflow (one query)."""
    return list(event.runs.select_related("workflow").order_by("created_at"))


def event_flow(event: Event) -> list:
    """What the flow control of each workflow it matched did with this event (started,
    delayed, debounced into a run, skipped and why), with the workflow and run (one query)."""
    return list(event.trigger_outcomes.select_related("workflow", "run").order_by("created_at"))


def events_caused_by_runs(run_ids: list) -> QuerySet[Event]:
    """Events emitted by these runs (their causation id is the run's id)."""
    return Event.objects.filter(causation_id__in=[str(run_id) for run_id in run_ids])


def events_caused_by(event: Event) -> QuerySet[Event]:
    """Events caused directly by this event (replays)."""
    return Event.objects.filter(causation_id=str(event.id))
