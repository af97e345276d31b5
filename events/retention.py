"""Retention: delete routed events past their age, keeping the triggers of active runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from automation.lib.db import delete_in_batches
from automation.models import ACTIVE_STATUSES
from events.models import Event


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
    cutoff = timezone.now() - older_than
    return Event.objects.filter(received_at__lt=cutoff, routed_at__isnull=False).exclude(
        runs__status__in=ACTIVE_STATUSES
    )
