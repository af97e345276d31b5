"""Prometheus metrics, served as text at GET /metrics.

Counters and histograms are fed where things happen: the engine's lifecycle signals (runs,
steps, timers; see automation.lifecycle), event ingest (events.services) and webhook refusals
(events.views). Gauges of state (approvals waiting, active runs, the routing backlog, the broker
queue) are read from the database and the broker when /metrics is scraped, so they are right
whichever process changed them.

Several processes (gunicorn workers, Celery worker processes): set PROMETHEUS_MULTIPROC_DIR to
an empty directory shared by the processes of a host *before they start*. Each process then
writes its samples to files there and /metrics adds up the files of every process
(prometheus_client's multiprocess mode). Without it, each process counts only its own work,
which is right for the single embedded process. See docs/operating.md, "Metrics".
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db import DatabaseError
from django.db.models import Count, Min
from django.dispatch import receiver
from django.utils import timezone
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from automation import lifecycle
from automation.metric_labels import labels
from events.signals import event_recorded

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FINISHED = {"succeeded", "failed", "cancelled"}

EVENTS_INGESTED = Counter(
    "automation_events_ingested", "Events stored, by type and source.", ["type", "source"]
)
WEBHOOK_REJECTIONS = Counter(
    "automation_webhook_rejections",
    "Webhook deliveries refused, by reason (the error code answered).",
    ["reason"],
)
RUNS_STARTED = Counter("automation_runs_started", "Runs created, by workflow.", ["workflow"])
RUNS_FINISHED = Counter(
    "automation_runs_finished", "Runs that ended, by workflow and status.", ["workflow", "status"]
)
STEP_DURATION = Histogram(
    "automation_step_duration_seconds",
    "Time from a step attempt's start to its result, by step kind and status.",
    ["kind", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
STEP_RETRIES = Counter(
    "automation_step_retries", "Failed step attempts that were scheduled again.", ["kind"]
)
TIMER_LATENESS = Histogram(
    "automation_timer_lateness_seconds",
    "How long after its due time a durable timer fired, by timer kind.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)


# --- Fed by the engine's lifecycle signals --------------------------------------------------


@receiver(lifecycle.run_changed, dispatch_uid="metrics.run_changed")
def _on_run(sender: Any, *, workflow: str, status: str, created: bool, **_: Any) -> None:
    if created:
        RUNS_STARTED.labels(workflow=labels.clean(workflow)).inc()
    if status in FINISHED:
        RUNS_FINISHED.labels(workflow=labels.clean(workflow), status=status).inc()


@receiver(lifecycle.step_changed, dispatch_uid="metrics.step_changed")
def _on_step(
    sender: Any,
    *,
    kind: str,
    status: str,
    started_at: datetime | None,
    finished_at: datetime | None,
    retrying: bool,
    **_: Any,
) -> None:
    if retrying:
        STEP_RETRIES.labels(kind=kind).inc()
    if started_at is not None and finished_at is not None:
        outcome = "retrying" if retrying else status
        seconds = max(0.0, (finished_at - started_at).total_seconds())
        STEP_DURATION.labels(kind=kind, status=outcome).observe(seconds)


@receiver(lifecycle.timer_fired, dispatch_uid="metrics.timer_fired")
def _on_timer(sender: Any, *, kind: str, due_at: datetime, fired_at: datetime, **_: Any) -> None:
    TIMER_LATENESS.labels(kind=kind).observe(max(0.0, (fired_at - due_at).total_seconds()))


# --- Fed by the events app (its event_recorded signal; webhook refusals) ---------------------


@receiver(event_recorded, dispatch_uid="metrics.event_recorded")
def _on_event(sender: Any, *, type: str, source: str, **_: Any) -> None:
    EVENTS_INGESTED.labels(type=labels.event_type(type), source=labels.source_kind(source)).inc()


def webhook_rejected(reason: str) -> None:
    WEBHOOK_REJECTIONS.labels(reason=labels.clean(reason)).inc()


# --- Read at scrape time --------------------------------------------------------------------


class StateCollector(Collector):
    """Gauges of what is waiting now, from the database and the broker."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            yield from list(_database_gauges())
        except DatabaseError as exc:  # counters are still worth showing while the DB is down
            logger.warning("/metrics: database gauges unavailable (%s)", exc)
        yield from _broker_depth()


def _database_gauges() -> Iterator[GaugeMetricFamily]:
    from approvals.models import Approval
    from automation.models import ACTIVE_STATUSES, Run
    from events.models import Event

    approvals = GaugeMetricFamily(
        "automation_approvals_waiting", "Approvals waiting for a decision."
    )
    approvals.add_metric([], Approval.objects.filter(status=Approval.Status.PENDING).count())
    yield approvals
    active = GaugeMetricFamily(
        "automation_runs_active", "Runs not finished yet, by status.", labels=["status"]
    )
    counts = dict(
        Run.objects.filter(status__in=ACTIVE_STATUSES)
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("status", "n")
    )
    for status in ACTIVE_STATUSES:
        active.add_metric([str(status)], counts.get(status, 0))
    yield active
    backlog = Event.objects.filter(routed_at__isnull=True).aggregate(
        n=Count("id"), oldest=Min("received_at")
    )
    unrouted = GaugeMetricFamily(
        "automation_events_unrouted", "Events stored but not routed to workflows yet."
    )
    unrouted.add_metric([], backlog["n"])
    yield unrouted
    lag = GaugeMetricFamily(
        "automation_events_routing_lag_seconds", "Age of the oldest event not routed yet."
    )
    oldest = backlog["oldest"]
    lag.add_metric([], (timezone.now() - oldest).total_seconds() if oldest else 0.0)
    yield lag
    yield from _projection_gauges()
    yield from _circuit_gauges()


def _projection_gauges() -> Iterator[GaugeMetricFamily]:
    from events import projections
    from events.models import ProjectionCheckpoint

    behind = GaugeMetricFamily(
        "automation_projection_lag_events",
        f"Events a projection has not applied yet (counted up to {projections.LAG_COUNT_CAP}).",
        labels=["projection"],
    )
    age = GaugeMetricFamily(
        "automation_projection_lag_seconds",
        "Age of the oldest event a projection has not applied yet.",
        labels=["projection"],
    )
    checkpoints = {row.name: row for row in ProjectionCheckpoint.objects.all()}
    for proj in projections.registered():
        count, seconds = projections.lag(proj, checkpoints.get(proj.name))
        behind.add_metric([labels.clean(proj.name)], count)
        age.add_metric([labels.clean(proj.name)], seconds)
    yield behind
    yield age


#: Circuits not closed shown by key; the rest are counted by state only. Keys are hosts and
#: action names, a bounded set in practice, but a workflow calling many hosts must not grow
#: /metrics without limit.
MAX_CIRCUIT_KEYS = 50


def _circuit_gauges() -> Iterator[GaugeMetricFamily]:
    from automation.models import Circuit

    by_state = GaugeMetricFamily(
        "automation_circuits", "Circuit breakers, by state.", labels=["state"]
    )
    counts = dict(
        Circuit.objects.values("state")
        .annotate(n=Count("key"))
        .order_by()
        .values_list("state", "n")
    )
    for state in Circuit.State.values:
        by_state.add_metric([state], counts.get(state, 0))
    yield by_state
    tripped = GaugeMetricFamily(
        "automation_circuit_open",
        "1 for a circuit breaker that is open, 0.5 half-open (the most recently opened ones).",
        labels=["key"],
    )
    shown = (
        Circuit.objects.exclude(state=Circuit.State.CLOSED)
        .order_by("-opened_at", "key")
        .values_list("key", "state")[:MAX_CIRCUIT_KEYS]
    )
    for key, state in shown:
        tripped.add_metric([labels.clean(key)], 1.0 if state == Circuit.State.OPEN else 0.5)
    yield tripped


def _broker_depth() -> Iterator[GaugeMetricFamily]:
    """Messages waiting in the Celery queues, where the broker can tell (Redis, RabbitMQ, the
    embedded on-disk queue). Left out when the broker does not answer."""
    from automation.celery import app

    depth = GaugeMetricFamily(
        "automation_broker_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"]
    )
    queues = [queue.name for queue in app.amqp.queues.values()] or ["celery"]
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
            channel = connection.default_channel
            for name in queues:
                declared = channel.queue_declare(queue=name, passive=True)
                depth.add_metric([name], declared.message_count)
    except Exception as exc:
        logger.warning("/metrics: broker queue depth unavailable (%s)", exc)
        return
    yield depth


_state = CollectorRegistry()
_state.register(StateCollector())


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def exposition() -> bytes:
    """Everything /metrics shows: counters of every process (or of this one), then the state."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(_state)
