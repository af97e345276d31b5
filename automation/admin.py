from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html

from automation.commands import circuit_close, run_retry, run_signal, runs_retry_failed
from automation.engine import search
from automation.engine.errors import WorkflowError
from automation.engine.runs import run_cancel
from automation.lib.errors import DomainError
from automation.lib.paging import LargeTablePaginator
from automation.models import (
    ACTIVE_STATUSES,
    TIMELINE_ORDER,
    Circuit,
    DeadLetterRun,
    Heartbeat,
    Run,
    RunStatus,
    Signal,
    StepRecord,
    Timer,
    Wait,
)
from automation.views import SignalForm
from automation.workflow_admin import WorkflowAdmin, WorkflowVersionAdmin

__all__ = ["WorkflowAdmin", "WorkflowVersionAdmin"]  # registered in automation.workflow_admin


def pretty(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


def failure(error: dict[str, Any]) -> str:
    """A recorded error as a person reads it: what failed and why, where, whether a retry can
    help, then the traceback in a scrollable monospace block (never one line of JSON)."""
    known = {"type", "message", "traceback", "retryable", "step", "attempt"}
    facts = [f"step {error['step']}"] if error.get("step") else []
    if error.get("attempt"):
        facts.append(f"attempt {error['attempt']}")
    if "retryable" in error:
        facts.append("a retry may succeed" if error["retryable"] else "a retry will not help")
    rest = {k: v for k, v in error.items() if k not in known}
    return format_html(
        '<div class="failure"><p class="failure-what"><strong>{}</strong> {}</p>{}{}{}</div>',
        error.get("type", "Error"),
        error.get("message", ""),
        format_html('<p class="failure-facts">{}</p>', " · ".join(facts)) if facts else "",
        pretty(rest) if rest else "",
        traceback_block(error.get("traceback", "")),
    )


def traceback_block(text: str) -> str:
    if not text:
        return ""
    return format_html(
        '<pre class="traceback" tabindex="0" aria-label="Traceback">{}</pre>', text.rstrip()
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the engine writes: people look, services change."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StepInline(admin.TabularInline):
    model = StepRecord
    fields = [
        "step_id", "kind", "status", "attempt", "started_at", "duration", "summary", "traceback",
    ]  # fmt: skip
    readonly_fields = fields
    ordering = TIMELINE_ORDER
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="duration (s)")
    def duration(self, obj: StepRecord) -> str:
        return "" if obj.duration is None else f"{obj.duration:.3f}"

    @admin.display(description="traceback")
    def traceback(self, obj: StepRecord) -> str:
        text = (obj.error or {}).get("traceback", "") if obj.status != "succeeded" else ""
        if not text:
            return ""
        return format_html(
            "<details><summary>{}</summary>{}</details>",
            "Show the traceback",
            traceback_block(text),
        )

    @admin.display(description="output / error")
    def summary(self, obj: StepRecord) -> str:
        if obj.error and obj.status != "succeeded":
            return f"{obj.error.get('type')}: {obj.error.get('message')}"[:300]
        return json.dumps(obj.output, default=str)[:300]


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ["id", "workflow", "status", "created_at", "finished_at", "waiting_for"]
    list_filter = ["status", "workflow", "created_at"]
    list_select_related = ["workflow"]
    search_fields = ["=id", "=correlation_id"]
    search_help_text = "A run id, a correlation id, or a search attribute as key=value."
    show_full_result_count = False  # COUNT(*) over millions of runs is the slow part of a list
    paginator = LargeTablePaginator
    # No date_hierarchy: its year/month links are a DISTINCT over every run's created_at on each
    # load; the created_at list filter (today, past 7 days, this month) costs no query.
    # What the run is about first; how the engine drives it folded away at the bottom.
    fieldsets = [
        (None, {"fields": [
            "id", "workflow", "version", "status", "waiting_for", "correlation_id",
            "trigger_event", "parent_run", "parent_step_id", "started_by", "started_via",
            "created_at", "started_at", "finished_at", "deadline_at",
        ]}),
        ("Input, output and error", {"fields": [
            "input_pretty", "output_pretty", "error_pretty", "search_pretty",
        ]}),
        ("Engine internals", {
            "classes": ["collapse"],
            "description": "How the engine drives this run: its lease, wake-ups and dispatches. "
            "For diagnosing a stuck run; nothing here needs changing by hand.",
            "fields": [
                "lease_owner", "lease_expires_at", "wakeups", "dispatched_at", "queued",
                "cancel_requested", "recoveries", "concurrency_key", "priority", "updated_at",
            ],
        }),
    ]  # fmt: skip
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]
    inlines = [StepInline]
    actions = ["retry", "cancel", "send_signal"]

    class Media:
        css = {"all": ["app/admin.css"]}

    @admin.display(description="input")
    def input_pretty(self, obj: Run) -> str:
        return pretty(obj.input)

    @admin.display(description="output")
    def output_pretty(self, obj: Run) -> str:
        return pretty(obj.output)

    @admin.display(description="error")
    def error_pretty(self, obj: Run) -> str:
        return failure(obj.error) if obj.error else "-"

    @admin.display(description="search attributes")
    def search_pretty(self, obj: Run) -> str:
        return pretty(obj.search) if obj.search else "-"

    def get_search_results(self, request: Any, queryset: Any, search_term: str) -> Any:
        """``customer=acme`` filters on a search attribute, as ``?search.customer=acme`` does
        in the API; anything else is looked up as an id or correlation id."""
        key, sep, value = search_term.partition("=")
        if sep and search.KEY_RE.match(key.strip()):
            return search.filter_runs(queryset, {key.strip(): value.strip()}), False
        return super().get_search_results(request, queryset, search_term)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("automation.change_run")

    has_cancel_permission = has_retry_permission

    @admin.action(description="Retry from the failed step", permissions=["retry"])
    def retry(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset.filter(status=RunStatus.FAILED), run_retry, "retried")

    @admin.action(description="Cancel (compensates completed steps)", permissions=["cancel"])
    def cancel(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset.filter(status__in=ACTIVE_STATUSES), run_cancel, "cancelled")

    has_send_signal_permission = has_retry_permission

    @admin.action(description="Send a signal", permissions=["send_signal"])
    def send_signal(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        """Ask for the signal's name and data, then send it to each selected active run (the
        same service as the API and the run page)."""
        applying = "apply" in request.POST
        form = SignalForm(request.POST if applying else None)
        if not applying or not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": "Send a signal",
                "opts": self.model._meta,
                "runs": queryset.select_related("workflow"),
                "form": form,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            status = 400 if applying else 200
            return TemplateResponse(
                request, "admin/automation/run/send_signal.html", context, status=status
            )
        name, data = form.cleaned_data["name"], form.cleaned_data["data"]
        sent = 0
        for run in queryset.filter(status__in=ACTIVE_STATUSES):
            try:
                run_signal(run_id=run.id, name=name, data=data, user=request.user)
                sent += 1
            except DomainError as exc:
                self.message_user(request, f"Run {run.id}: {exc}", messages.WARNING)
        self.message_user(request, f"Signal {name} sent to {sent} run(s).")
        return None

    def _each(self, request: HttpRequest, runs: QuerySet, service: Any, verb: str) -> None:
        done = 0
        for run in runs:
            try:
                service(run=run)
                done += 1
            except WorkflowError as exc:
                self.message_user(request, f"Run {run.id}: {exc}", messages.WARNING)
        self.message_user(request, f"{done} run(s) {verb}.")


@admin.register(DeadLetterRun)
class DeadLetterAdmin(RunAdmin):
    list_display = ["id", "workflow", "failed_step", "message", "finished_at", "recoveries"]
    actions = ["retry_all"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(status=RunStatus.FAILED)

    @admin.display(description="failed step")
    def failed_step(self, obj: Run) -> str:
        return (obj.error or {}).get("step", "")

    @admin.display(description="error")
    def message(self, obj: Run) -> str:
        return str((obj.error or {}).get("message", ""))[:200]

    @admin.action(description="Retry the selected failed runs", permissions=["retry"])
    def retry_all(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.message_user(request, f"{runs_retry_failed(runs=queryset)} run(s) retried.")


@admin.register(Timer)
class TimerAdmin(ReadOnlyAdmin):
    list_display = ["run", "kind", "step_id", "due_at", "fired_at"]
    list_filter = ["kind", ("fired_at", admin.EmptyFieldListFilter)]
    show_full_result_count = False
    paginator = LargeTablePaginator


@admin.register(Wait)
class WaitAdmin(ReadOnlyAdmin):
    list_display = ["run", "step_id", "part", "event_type", "status", "deadline", "created_at"]
    list_filter = ["status", "event_type"]
    show_full_result_count = False
    paginator = LargeTablePaginator


@admin.register(Signal)
class SignalAdmin(ReadOnlyAdmin):
    """Signals sent to runs (API, run page): who sent what, and which step took it."""

    list_display = ["name", "run", "sent_by", "sent_at", "step_id", "consumed_at"]
    list_filter = [("consumed_at", admin.EmptyFieldListFilter)]
    search_fields = ["=run__id", "name"]
    readonly_fields = ["run", "name", "data_shown", "sent_by", "sent_at", "step_id", "consumed_at"]
    exclude = ["data"]
    show_full_result_count = False
    paginator = LargeTablePaginator

    @admin.display(description="data")
    def data_shown(self, obj: Signal) -> str:
        return pretty(obj.data)


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["name", "seen_at", "worker"]


@admin.register(Circuit)
class CircuitAdmin(ReadOnlyAdmin):
    list_display = ["key", "state", "failures", "opened_at", "retry_at", "updated_at"]
    list_filter = ["state"]
    search_fields = ["key"]
    readonly_fields = ["key", "state", "failures", "window_start", "opened_at", "retry_at"]
    actions = ["close_now"]

    def has_close_now_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("automation.change_circuit")

    @admin.action(description="Close now (the next call goes through)", permissions=["close_now"])
    def close_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        keys = list(queryset.exclude(state=Circuit.State.CLOSED).values_list("key", flat=True))
        for key in keys:
            circuit_close(key=key, user=request.user)
        self.message_user(request, f"{len(keys)} circuit(s) closed.")
