"""Reads for the operator UI: the runs list and the dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import TruncMinute
from django.utils import timezone

from automation.engine import search
from automation.lib.ids import BadIdPrefix, id_lookup
from automation.models import (
    ACTIVE_STATUSES,
    Run,
    RunStatus,
    StepRecord,
    Wait,
    Workflow,
    WorkflowVersion,
)


def runs_filtered(
    *, workflow: str = "", status: str = "", q: str = "", attributes: dict[str, str] | None = None
) -> QuerySet:
    """Runs of a workflow, in a status, whose correlation id is ``q`` or whose id it names
    (a whole id or the short id the pages show), holding the search ``attributes``."""
    runs = search.filter_runs(
        Run.objects.select_related("workflow", "version", "trigger_event"), attributes or {}
    )
    if workflow:
        runs = runs.filter(workflow__name=workflow)
    if status in RunStatus.values:
        runs = runs.filter(status=status)
    if q:
        runs = runs.filter(run_search(q))
    return runs


def run_search(q: str) -> Q:
    """Runs whose correlation id is ``q``, or whose id it names (a whole id or a short id)."""
    q = q.strip()
    try:
        by_id = id_lookup("id", q)
    except BadIdPrefix:  # not an id: only a correlation id can match
        by_id = Q(pk__in=[])
    return Q(correlation_id=q) | by_id


def search_attributes_asked(params: Any) -> dict[str, str]:
    """The runs page's search attribute filters: its ``attr`` field (``key=value``) and any
    ``search.<key>=value`` of the query string, as the API takes them. SearchAttributeError
    names the problem."""
    pairs = search.parse_filters(params)
    attr = params.get("attr", "").strip()
    if attr:
        key, sep, value = attr.partition("=")
        if not sep:
            raise search.SearchAttributeError(
                f"search attribute {attr!r}: write key=value, e.g. customer=acme"
            )
        key = search.check_key(key.strip())
        pairs[key] = search.as_text(key, value.strip())
    if len(pairs) > search.MAX_FILTERS:
        raise search.SearchAttributeError(f"at most {search.MAX_FILTERS} search attributes")
    return pairs


#: How many of a workflow's latest runs its row in the workflows list shows.
LAST_RUNS = 5


def workflows_overview() -> list[Workflow]:
    """Every workflow by name, with ``latest`` (its latest version number), ``trigger`` (that
    version's event type), ``in_flight`` (active runs) and ``last_runs`` (newest first)."""
    latest = WorkflowVersion.objects.filter(workflow=OuterRef("pk")).order_by("-number")
    in_flight = (
        Run.objects.filter(workflow=OuterRef("pk"), status__in=ACTIVE_STATUSES)
        .order_by()
        .values("workflow")
        .annotate(n=Count("pk"))
        .values("n")
    )
    recent = Run.objects.order_by("-created_at").only("id", "status", "created_at", "workflow")
    return list(
        Workflow.objects.order_by("name")
        .annotate(
            latest=Subquery(latest.values("number")[:1]),
            trigger=Subquery(latest.values("trigger_event")[:1]),
            in_flight=Subquery(in_flight),
        )
        .prefetch_related(Prefetch("runs", queryset=recent[:LAST_RUNS], to_attr="last_runs"))
    )


def workflow_versions(workflow: Workflow) -> QuerySet:
    """The workflow's versions, newest first, each with ``in_flight``: its active runs."""
    return (
        workflow.versions.select_related("created_by")
        .annotate(in_flight=Count("runs", filter=Q(runs__status__in=ACTIVE_STATUSES)))
        .order_by("-number")
    )


def workflow_recent_runs(workflow: Workflow, limit: int = 10) -> list[Run]:
    return list(workflow.runs.select_related("version").order_by("-created_at")[:limit])


def workflow_names() -> list[str]:
    return list(Workflow.objects.order_by("name").values_list("name", flat=True))


def run_timeline(run: Run) -> list[StepRecord]:
    """The run's journal in the order it happened, without internal value records."""
    return list(StepRecord.objects.filter(run=run).exclude(kind=StepRecord.Kind.VALUE).timeline())


@dataclass
class Dashboard:
    events_last_minute: int
    events_last_hour: int
    runs_by_status: dict[str, int]
    failed_last_day: int
    succeeded_last_day: int
    approvals_waiting: int
    chart: list[dict[str, Any]]  # one bar per minute of the last hour
    chart_max: int


def _per_minute(queryset: QuerySet, field: str, since: Any) -> dict[Any, int]:
    rows = (
        queryset.filter(**{f"{field}__gte": since})
        .annotate(minute=TruncMinute(field))
        .values("minute")
        .annotate(n=Count("pk"))
    )
    return {row["minute"]: row["n"] for row in rows}


def dashboard(user: Any) -> Dashboard:
    from approvals.selectors import approvals_for
    from events.models import Event

    now = timezone.now()
    hour_ago = (now - timedelta(minutes=59)).replace(second=0, microsecond=0)
    day_ago = now - timedelta(days=1)
    active = dict(
        Run.objects.filter(status__in=ACTIVE_STATUSES)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    finished = dict(
        Run.objects.filter(finished_at__gte=day_ago)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    events = _per_minute(Event.objects.all(), "received_at", hour_ago)
    done = _per_minute(Run.objects.filter(status=RunStatus.SUCCEEDED), "finished_at", hour_ago)
    failed = _per_minute(Run.objects.filter(status=RunStatus.FAILED), "finished_at", hour_ago)
    chart = []
    for i in range(60):
        minute = hour_ago + timedelta(minutes=i)
        chart.append(
            {
                "minute": minute,
                "events": events.get(minute, 0),
                "succeeded": done.get(minute, 0),
                "failed": failed.get(minute, 0),
            }
        )
    last_minute = Event.objects.filter(received_at__gte=now - timedelta(minutes=1)).count()
    peak = max([max(c["events"], c["succeeded"] + c["failed"]) for c in chart] + [1])
    return Dashboard(
        events_last_minute=last_minute,
        events_last_hour=sum(events.values()),
        runs_by_status={s: active.get(s, 0) for s in ACTIVE_STATUSES},
        failed_last_day=finished.get(RunStatus.FAILED, 0),
        succeeded_last_day=finished.get(RunStatus.SUCCEEDED, 0),
        approvals_waiting=approvals_for(user, status="pending").count(),
        chart=chart,
        chart_max=peak,
    )


def listened_event_types(limit: int) -> tuple[str, ...]:
    """The event type patterns something waits for: active workflows' triggers and open waits,
    at most ``limit`` of them."""
    triggers = (
        WorkflowVersion.objects.filter(workflow__active=True)
        .exclude(trigger_event="")
        .values_list("trigger_event", flat=True)
        .distinct()
    )
    waits = (
        Wait.objects.filter(status=Wait.Status.OPEN).values_list("event_type", flat=True).distinct()
    )
    return tuple(sorted({*triggers[:limit], *waits[:limit]}))[:limit]
