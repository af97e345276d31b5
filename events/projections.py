"""Projections: fold the event log into your own Django models, each event exactly once.

::

    from events.projections import projection

    @projection(on="order.*", models=[OrderTotal])
    def order_totals(event):
        row, _ = OrderTotal.objects.get_or_create(customer=event.data["customer"])
        row.total += event.data["amount"]
        row.save()

A projection reads the log in order (``received_at``, then id) from its checkpoint
(``ProjectionCheckpoint``). The periodic task ``events.project`` (every SWEEP_INTERVAL, in the
workers) applies the next events of each projection and moves the checkpoint **in the same
transaction** as the handler's writes: a worker killed half-way leaves both as they were, and
the next pass applies the same events again, once. Two workers never fold one projection at
the same time (the checkpoint row is locked; the second skips it).

Events younger than PROJECTION_SETTLE_SECONDS are left for the next pass: a transaction that
stamped an event earlier may still be committing, and a checkpoint moved past it would skip it.

A handler that raises stops its projection at that event (its writes for that event are undone,
the checkpoint stays before it, the error is shown in the admin and retried on every pass);
other projections go on. Handlers see events in the latest shape of their schema
(events.upcasting). ``manage.py rebuild_projection NAME`` empties ``models`` and folds the log
again from the start.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from automation.lib import logcontext
from events.models import Event, ProjectionCheckpoint
from events.upcasting import latest_shape

__all__ = ["Projection", "projection", "projection_rebuild", "projections_advance"]

logger = logging.getLogger(__name__)

Handler = Callable[[Event], None]
BATCH_SIZE = 500  # events per transaction: short enough not to hold locks for long


@dataclass(frozen=True)
class Projection:
    name: str
    on: str  # event type: exact, or a prefix such as order.*
    handler: Handler
    models: tuple[type[models.Model], ...] = ()


# Filled at import time by @projection, like the workflow registry.
_projections: dict[str, Projection] = {}


def projection(
    *, on: str, name: str | None = None, models: Iterable[type[models.Model]] = ()
) -> Callable[[Handler], Handler]:
    """Register ``handler(event)`` as a projection of events of type ``on`` (``order.*`` for a
    prefix). ``name`` (default: the function's name) is what ``rebuild_projection`` takes;
    ``models`` are emptied by a rebuild."""

    def register(handler: Handler) -> Handler:
        key = name or handler.__name__
        _projections[key] = Projection(key, on, handler, tuple(models))
        return handler

    return register


def registered() -> list[Projection]:
    return sorted(_projections.values(), key=lambda p: p.name)


def get(name: str) -> Projection:
    if name not in _projections:
        known = ", ".join(sorted(_projections)) or "none"
        raise KeyError(f"no projection named {name!r} (registered: {known})")
    return _projections[name]


def projections_advance(*, limit: int = BATCH_SIZE) -> int:
    """One pass: apply up to ``limit`` settled events to each projection. Returns how many
    events were applied in all; one failing projection never stops the others."""
    applied = 0
    for proj in registered():
        try:
            applied += projection_advance(proj, limit=limit)
        except Exception:
            logger.exception("projection %s could not advance; it is retried next pass", proj.name)
    return applied


def projection_advance(proj: Projection, *, limit: int = BATCH_SIZE) -> int:
    """Apply the next settled events (at most ``limit``) to ``proj`` in one transaction with its
    checkpoint. Returns how many were applied (0 when another process holds it)."""
    seen, _ = ProjectionCheckpoint.objects.get_or_create(name=proj.name)
    if not pending(proj, seen).exists():
        return 0  # nothing new: no lock taken (on SQLite a lock is the database's write lock)
    with transaction.atomic():
        checkpoint = _lock(proj.name)
        if checkpoint is None:
            return 0  # another worker is folding it right now
        return _apply_batch(proj, checkpoint, limit)


def _lock(name: str) -> ProjectionCheckpoint | None:
    rows = ProjectionCheckpoint.objects.filter(name=name)
    if connection.features.has_select_for_update_skip_locked:
        return rows.select_for_update(skip_locked=True).first()
    # SQLite has no row locks: a write first takes the database's write lock, so a second
    # process waits here and then reads the checkpoint the first one committed.
    rows.update(updated_at=timezone.now())
    return rows.first()


def _apply_batch(proj: Projection, checkpoint: ProjectionCheckpoint, limit: int) -> int:
    applied = 0
    for event in pending(proj, checkpoint)[:limit]:
        try:
            with transaction.atomic(), logcontext.scope(event_id=event.id):
                proj.handler(latest_shape(event))
        except Exception as exc:
            logger.exception("projection %s stopped at event %s", proj.name, event.id)
            # The exception and where it was raised; never the locals (secrets leak).
            checkpoint.error = f"{type(exc).__name__}: {exc}\n" + traceback.format_exc(limit=5)
            checkpoint.error_event_id = event.id
            break
        checkpoint.last_received_at, checkpoint.last_event_id = event.received_at, event.id
        checkpoint.error, checkpoint.error_event_id = "", None
        applied += 1
    checkpoint.applied += applied
    checkpoint.save()
    return applied


def _matching(proj: Projection) -> models.QuerySet[Event]:
    if proj.on.endswith(".*"):
        return Event.objects.filter(type__startswith=proj.on[:-1])
    if proj.on == "*":
        return Event.objects.all()
    return Event.objects.filter(type=proj.on)


def _after(
    events: models.QuerySet[Event], checkpoint: ProjectionCheckpoint
) -> models.QuerySet[Event]:
    if checkpoint.last_received_at is None:
        return events
    return events.filter(
        Q(received_at__gt=checkpoint.last_received_at)
        | Q(received_at=checkpoint.last_received_at, id__gt=checkpoint.last_event_id)
    )


def pending(proj: Projection, checkpoint: ProjectionCheckpoint) -> models.QuerySet[Event]:
    """Events of ``proj`` after its checkpoint, settled, in log order."""
    settled = timezone.now() - timedelta(seconds=settings.PROJECTION_SETTLE_SECONDS)
    events = _after(_matching(proj).filter(received_at__lte=settled), checkpoint)
    return events.order_by("received_at", "id")


LAG_COUNT_CAP = 10_000  # counting further costs a scan of the log on every scrape


def lag(proj: Projection, checkpoint: ProjectionCheckpoint | None) -> tuple[int, float]:
    """(events not applied yet, counted up to LAG_COUNT_CAP; age in seconds of the oldest)."""
    events = _after(_matching(proj), checkpoint or ProjectionCheckpoint(name=proj.name))
    events = events.order_by("received_at", "id")
    oldest = events.values_list("received_at", flat=True).first()
    if oldest is None:
        return 0, 0.0
    return events[:LAG_COUNT_CAP].count(), (timezone.now() - oldest).total_seconds()


def projection_rebuild(name: str, *, batch: int = BATCH_SIZE) -> int:
    """Empty the projection's models, reset its checkpoint, and fold the whole log again
    (settled events; later ones are applied by the periodic pass). Returns events applied."""
    proj = get(name)
    with transaction.atomic():
        checkpoint, _ = ProjectionCheckpoint.objects.get_or_create(name=name)
        checkpoint = ProjectionCheckpoint.objects.select_for_update().get(pk=checkpoint.pk)
        for model in proj.models:
            model._default_manager.all().delete()
        checkpoint.last_received_at = checkpoint.last_event_id = None
        checkpoint.applied, checkpoint.error, checkpoint.error_event_id = 0, "", None
        checkpoint.rebuilt_at = timezone.now()
        checkpoint.save()
    total = 0
    while True:
        applied = projection_advance(proj, limit=batch)
        total += applied
        checkpoint.refresh_from_db()
        if applied < batch or checkpoint.error:
            return total
