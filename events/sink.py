"""The engine's event sink (automation.engine.ports.EventSink), filled by EventsConfig.ready:
what a run emits goes into the event log, and a new wait looks back on it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

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
        return list(
            Event.objects.filter(type=event_type, received_at__gte=since)
            .filter(**exact)
            .exclude(id=exclude_id)
            .exclude(id__in=exclude_ids)
            .order_by("-received_at")[:limit]
        )
