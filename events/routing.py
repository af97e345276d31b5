"""Routing of stored events: claim each event once, start the runs its triggers match and resume
the runs waiting for it, then (in the routing task) advance the first run it started.

A webhook's trip runs one way: events record it (events.services), the publisher sends "route
event X" after commit (events.publisher, events.tasks), this module claims and routes it through
the automation triggers, and the engine runs what they started.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from automation.engine import leases
from automation.engine.executor import run_advance
from automation.engine.runs import waits_resolve_for_event
from automation.lib import logcontext, requestuser
from automation.lib.db import update_returning
from automation.triggers import run_start_for_target, runs_start_for_event, target_version
from events.models import Event
from events.services import event_record
from events.upcasting import latest_data, latest_shape

logger = logging.getLogger(__name__)

#: Called with (event, problems) in the transaction that claims and routes each event, after its
#: runs started: what else watches every event (rules) without events importing it.
RouteHook = Callable[[Event, list[str]], Any]
_route_hooks: list[RouteHook] = []


def route_hook_add(hook: RouteHook) -> None:
    """Have ``hook(event, problems)`` see every routed event, exactly once (in the routing
    transaction: if it fails the routing rolls back, and the event is routed again later).
    ``problems`` collects what the event's page should say (the event's routing errors)."""
    if hook not in _route_hooks:
        _route_hooks.append(hook)


# Events stored less than this long ago are left to their on_commit dispatch by the sweep.
ROUTING_GRACE = timedelta(seconds=5)


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
        event = latest_shape(event)  # triggers, runs and waits see the latest schema's shape
        problems: list[str] = []
        runs = runs_start_for_event(event, lease_first_to=lease_first_to, problems=problems)
        waits_resolve_for_event(event, problems=problems)
        for hook in _route_hooks:
            hook(event, problems)
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


def event_replay(
    *,
    event: Event,
    actor_id: Any = None,
    workflow: str | None = None,
    version: int | None = None,
) -> Event:
    """Store a copy of ``event`` caused by it (causation_id = its id) and route the copy.
    ``actor_id``: who replayed it (the runs the copy starts are theirs). The copy carries the
    latest shape of the data (upcast), validated by the type's current schema.

    With ``workflow`` (and optionally its ``version``; default its latest), the copy starts one
    run of that workflow only: no other subscriber starts and no waiting run resumes. Raises
    UnknownTarget when that workflow cannot take the event, storing nothing."""
    if workflow is None:
        return _replay_copy(event, actor_id)
    target = target_version(workflow=workflow, version=version, event_type=event.type)
    with transaction.atomic():
        copy = _replay_copy(event, actor_id)
        # Claimed here, so the routing after commit finds it routed and starts nothing else.
        copy.routed_at = timezone.now()
        Event.objects.filter(id=copy.id).update(routed_at=copy.routed_at)
        run_start_for_target(latest_shape(copy), target=target)
    return copy


def _replay_copy(event: Event, actor_id: Any) -> Event:
    copy, _ = event_record(
        type=event.type,
        data=latest_data(event),
        source=event.source,
        subject=event.subject,
        correlation_id=event.correlation_id,
        causation_id=str(event.id),
        headers=event.headers,
        occurred_at=event.occurred_at,
        actor_id=actor_id,
    )
    return copy
