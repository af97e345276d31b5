"""The engine's event sink (automation.engine.ports.EventSink), filled by EventsConfig.ready:
what a run emits goes into the event log, and a new wait looks back on it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Q

from events import upcasting
from events.models import Event
from events.services import event_record


class EventLog:
    def record(
        self,
        *,
        type: str,
        data: dict[str, Any],
        source: str,
        subject: str,
        correlation_id: str,
        causation_id: str,
        idempotency_key: str,
        actor_id: Any,
    ) -> Event:
        event, _ = event_record(
            type=type,
            data=data,
            source=source,
            subject=subject,
            correlation_id=correlation_id,
            causation_id=causation_id,
            idempotency_key=idempotency_key,
            actor_id=actor_id,
        )
        return event

    def lookback(
        self,
        *,
        event_type: str,
        since: datetime,
        data_equals: dict[str, Any],
        exclude_id: Any,
        exclude_ids: Iterable[Any],
        limit: int,
    ) -> list[Event]:
        exact = {"data__" + "__".join(path.split(".")): v for path, v in data_equals.items()}
        window = (
            Event.objects.filter(type=event_type, received_at__gte=since)
            .exclude(id=exclude_id)
            .exclude(id__in=exclude_ids)
            .order_by("-received_at")
        )
        latest = upcasting.latest_version(event_type)
        if latest is None:
            return list(window.filter(**exact)[:limit])
        # Events stored in an older shape are matched by their latest shape, in Python: the
        # database only knows the fields they were stored with.
        found = list(window.filter(schema_version__gte=latest).filter(**exact)[:limit])
        older = window.filter(Q(schema_version__lt=latest) | Q(schema_version__isnull=True))
        found += [
            shaped
            for shaped in map(upcasting.latest_shape, older[:limit])
            if all(_at(shaped.data, path) == value for path, value in data_equals.items())
        ]
        return sorted(found, key=lambda event: event.received_at, reverse=True)[:limit]


_MISSING = object()


def _at(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data
