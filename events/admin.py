"""Admin: the event log (read-only, with its causation chain), webhook endpoints (secrets shown
once, a "rotate secret" action), event schemas and signal bridges. Schedules are
django-celery-beat's Periodic tasks (task ``events.emit_scheduled``; see docs/events.md)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django_celery_beat.admin import PeriodicTaskAdmin, PeriodicTaskForm
from django_celery_beat.models import PeriodicTask

from automation.lib.paging import LargeTablePaginator
from events import projections, routing, selectors, webhooks
from events.models import Event, EventSchema, ProjectionCheckpoint, SignalBridge, WebhookEndpoint
from events.validation import scheduled_kwargs_error


def pretty_json(value: Any) -> SafeString:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


def admin_link(obj: Any, text: str) -> SafeString | str:
    meta = obj._meta
    try:
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return text
    return format_html('<a href="{}">{}</a>', url, text)


class InputFilter(admin.SimpleListFilter):
    """A free-text filter (exact match): lists of distinct values do not scale to 1M events."""

    template = "admin/events/input_filter.html"
    field = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("", "")]  # Django shows a filter only when it has lookups

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


class TypeFilter(InputFilter):
    title = "type"
    parameter_name = field = "type"


class SourceFilter(InputFilter):
    title = "source"
    parameter_name = field = "source"


class CorrelationFilter(InputFilter):
    title = "correlation id"
    parameter_name = field = "correlation_id"


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["type", "source", "subject", "correlation_id", "received_at", "routed"]
    list_filter = [TypeFilter, SourceFilter, CorrelationFilter, "received_at"]
    search_fields = ["=id", "=idempotency_key"]
    show_full_result_count = False  # a COUNT(*) over a million rows on every page costs seconds
    paginator = LargeTablePaginator  # and the paginator's own COUNT(*), the same again
    actions = ["replay"]
    fields = [
        "id",
        "type",
        "source",
        "subject",
        "correlation_id",
        "cause",
        "idempotency_key",
        "actor",
        "occurred_at",
        "received_at",
        "routed_at",
        "schema_version",
        "data_pretty",
        "headers_pretty",
        "runs_started",
        "events_emitted",
        "replays",
    ]
    readonly_fields = fields

    @admin.display(boolean=True, description="routed")
    def routed(self, event: Event) -> bool:
        return event.routed_at is not None

    @admin.display(description="data")
    def data_pretty(self, event: Event) -> SafeString:
        return pretty_json(event.data)

    @admin.display(description="headers")
    def headers_pretty(self, event: Event) -> SafeString:
        return pretty_json(webhooks.headers_without_secrets(event.headers))

    @admin.display(description="caused by")
    def cause(self, event: Event) -> SafeString | str:
        if not event.causation_id:
            return "-"
        parent = Event.objects.filter(id=_uuid_or_none(event.causation_id)).first()
        return admin_link(parent, str(parent)) if parent else f"run {event.causation_id}"

    @admin.display(description="runs it started")
    def runs_started(self, event: Event) -> SafeString | str:
        runs = selectors.event_runs(event)
        if not runs:
            return "-"
        return format_html_join(
            "",
            "<div>{} {} ({})</div>",
            ((admin_link(run, str(run.id)), run.workflow.name, run.status) for run in runs),
        )

    @admin.display(description="events those runs emitted")
    def events_emitted(self, event: Event) -> SafeString | str:
        run_ids = [run.id for run in selectors.event_runs(event)]
        return _event_links(selectors.events_caused_by_runs(run_ids)) if run_ids else "-"

    @admin.display(description="replays")
    def replays(self, event: Event) -> SafeString | str:
        return _event_links(selectors.events_caused_by(event))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # events arrive through webhooks, the API, signals and schedules

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the log is append-only

    @admin.action(description="Replay selected events (starts their workflows again)")
    def replay(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        if not request.user.has_perm("events.replay_event"):
            self.message_user(request, "You need the replay permission.", messages.ERROR)
            return
        replayed = [
            routing.event_replay(event=event, actor_id=request.user.pk) for event in queryset[:100]
        ]
        self.message_user(request, f"Replayed {len(replayed)} event(s).", messages.SUCCESS)


def _event_links(events: QuerySet[Event]) -> SafeString | str:
    rows = list(events.order_by("received_at")[:50])
    if not rows:
        return "-"
    return format_html_join("", "<div>{}</div>", ((admin_link(e, str(e)),) for e in rows))


def _uuid_or_none(value: str) -> str | None:
    import uuid

    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


class WebhookEndpointForm(forms.ModelForm):
    initial_secret = forms.CharField(
        required=False,
        label="Secret",
        help_text="Leave blank to generate one (shown once). Stripe: paste the endpoint's signing "
        "secret from the Stripe dashboard.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "slug",
            "description",
            "scheme",
            "type_from",
            "type_value",
            "type_prefix",
            "data_path",
            "idempotency_header",
            "max_body_bytes",
            "active",
        ]

    def add_error(self, field: str | None, error: Any) -> None:
        # The model's checks name `secret`, which this form asks for as `initial_secret`;
        # Django raises for an error on a field the form does not have, so rename it.
        named = getattr(error, "error_dict", None) if isinstance(error, ValidationError) else None
        if field is None and named and "secret" in named:
            named["initial_secret"] = named.pop("secret")
        super().add_error(field, error)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        scheme = cleaned.get("scheme")
        if self.instance.pk is None and scheme:
            # Set before the model's own validation, which requires a secret for signed schemes.
            given = cleaned.get("initial_secret", "")
            self.instance.secret = given or webhooks.webhook_secret_generate(scheme)
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["slug", "scheme", "type_rule", "active", "rotation_grace", "created_at"]
    list_filter = ["scheme", "active"]
    search_fields = ["slug", "description"]
    readonly_fields = ["url", "previous_secret_expires_at", "created_at", "updated_at"]
    actions = ["rotate_secret"]

    @admin.display(description="URL")
    def url(self, endpoint: WebhookEndpoint) -> str:
        return f"/hooks/{endpoint.slug}/" if endpoint.slug else "-"

    @admin.display(description="event type")
    def type_rule(self, endpoint: WebhookEndpoint) -> str:
        how, value = webhooks.webhook_type_rule(endpoint)
        return f"{endpoint.type_prefix}{{{how}: {value}}}"

    @admin.display(description="old secret valid until")
    def rotation_grace(self, endpoint: WebhookEndpoint) -> Any:
        return endpoint.previous_secret_expires_at

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = [name for name in super().get_fields(request, obj) if name != "initial_secret"]
        return ["initial_secret", *fields] if obj is None else fields

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool):
        super().save_model(request, obj, form, change)
        if not change and obj.secret:
            request._events_new_secret = obj.secret  # shown once by response_add

    def response_add(self, request: HttpRequest, obj: WebhookEndpoint, *args: Any) -> Any:
        secret = getattr(request, "_events_new_secret", "")
        if secret:
            return _secret_page(request, [(obj, secret)], "Webhook endpoint created")
        return super().response_add(request, obj, *args)

    @admin.action(description="Rotate secret (the old one keeps working for the grace period)")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]):
        if not request.user.has_perm("events.change_webhookendpoint"):
            self.message_user(request, "You need the change permission.", messages.ERROR)
            return None
        rotated = [
            (endpoint, webhooks.webhook_endpoint_rotate_secret(endpoint=endpoint))
            for endpoint in queryset.exclude(scheme="none")
        ]
        return _secret_page(request, rotated, "New webhook secrets")


def _secret_page(request: HttpRequest, rotated: list, title: str) -> HttpResponse:
    """Render the secrets once, in this response only (never stored in messages or logs)."""
    response = TemplateResponse(
        request,
        "admin/events/webhookendpoint/secrets.html",
        {**admin.site.each_context(request), "title": title, "rotated": rotated},
    )
    response["Cache-Control"] = "no-store"
    return response


@admin.register(EventSchema)
class EventSchemaAdmin(admin.ModelAdmin):
    """Versions of event schemas. A new version is checked against the previous one under its
    compatibility mode (the message names each path and rule broken); saved versions are
    kept as they are, since stored events name the version that validated them."""

    list_display = ["type", "version", "compatibility", "active", "description", "created_at"]
    list_filter = ["active", "compatibility"]
    search_fields = ["type"]
    fields = [
        "type",
        "version",
        "compatibility",
        "schema",
        "upcast",
        "description",
        "active",
        "versions",
    ]
    readonly_fields = ["versions"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["versions"]
        # Stored events were validated by this schema: change it by adding a version.
        return ["type", "version", "schema", "upcast", "versions"]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        # "Add the next version" links here with ?type=...: the next number and the type's mode.
        initial = super().get_changeform_initial_data(request)
        latest = EventSchema.objects.filter(type=initial.get("type", "")).order_by("-version")
        previous = latest.first()
        if previous is not None:
            initial.setdefault("version", previous.version + 1)
            initial.setdefault("compatibility", previous.compatibility)
            initial.setdefault("schema", previous.schema)
        return initial

    @admin.display(description="all versions of this type")
    def versions(self, row: EventSchema) -> SafeString | str:
        if not row.type:
            return "-"
        rows = EventSchema.objects.filter(type=row.type).order_by("-version")
        add = reverse("admin:events_eventschema_add") + "?" + urlencode({"type": row.type})
        return format_html('<p><a href="{}">Add the next version</a></p>', add) + format_html_join(
            "",
            "<div>{} · {} · {}{}</div>",
            (
                (
                    admin_link(other, f"v{other.version}"),
                    other.compatibility,
                    f"{other.created_at:%Y-%m-%d %H:%M}",
                    "" if other.active else " · inactive",
                )
                for other in rows
            ),
        )


@admin.register(ProjectionCheckpoint)
class ProjectionCheckpointAdmin(admin.ModelAdmin):
    """How far each projection has folded the log, and how far behind it is. Read-only: the
    periodic pass moves checkpoints; ``manage.py rebuild_projection NAME`` resets one."""

    list_display = ["name", "applied", "last_received_at", "behind", "lag", "failing"]
    fields = [
        "name",
        "on",
        "applied",
        "last_received_at",
        "last_event_id",
        "behind",
        "lag",
        "error_event_id",
        "error",
        "rebuilt_at",
        "updated_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _lag(self, row: ProjectionCheckpoint) -> tuple[int, float] | None:
        try:
            return projections.lag(projections.get(row.name), row)
        except KeyError:
            return None  # no longer in the code

    @admin.display(description="projection on")
    def on(self, row: ProjectionCheckpoint) -> str:
        try:
            return projections.get(row.name).on
        except KeyError:
            return "not registered in this process's code"

    @admin.display(description="events behind")
    def behind(self, row: ProjectionCheckpoint) -> str:
        lag = self._lag(row)
        if lag is None:
            return "-"
        return f"{lag[0]}+" if lag[0] >= projections.LAG_COUNT_CAP else str(lag[0])

    @admin.display(description="lag (seconds)")
    def lag(self, row: ProjectionCheckpoint) -> str:
        lag = self._lag(row)
        return "-" if lag is None else f"{lag[1]:.1f}"

    @admin.display(boolean=True, description="failing")
    def failing(self, row: ProjectionCheckpoint) -> bool:
        return bool(row.error)


@admin.register(SignalBridge)
class SignalBridgeAdmin(admin.ModelAdmin):
    list_display = ["model", "action", "field", "from_value", "to_value", "event_type", "active"]
    list_filter = ["action", "active"]
    search_fields = ["model", "event_type"]


# --- Schedules: django-celery-beat's Periodic tasks, with events.emit_scheduled checked -----


EMIT_TASK = "events.emit_scheduled"


class ScheduleForm(PeriodicTaskForm):
    user: Any = None  # the person saving it, set by ScheduleAdmin.get_form

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("task") != EMIT_TASK:
            if not self.user.is_superuser:
                # Any other task runs server code with arguments the form lets one write.
                self.add_error(None, f"Only superusers may schedule tasks other than {EMIT_TASK}.")
            return data
        raw = data.get("kwargs") or "{}"
        problem = scheduled_kwargs_error(raw)
        if problem is None or "actor_id" in problem:
            # Never taken from the form: the person saving the schedule is its events' actor.
            kwargs = {k: v for k, v in json.loads(raw).items() if k != "actor_id"}
            problem = scheduled_kwargs_error(json.dumps(kwargs))
            data["kwargs"] = json.dumps({**kwargs, "actor_id": self.user.pk})
        if problem:
            self.add_error("kwargs", f"{EMIT_TASK}: {problem}")
        if (data.get("args") or "[]").strip() not in ("", "[]"):
            self.add_error("args", f"{EMIT_TASK} takes keyword arguments only")
        return data


admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class ScheduleAdmin(PeriodicTaskAdmin):
    """Periodic tasks; a schedule that emits an event is checked before it is saved, and its
    events are the saver's (``actor_id`` in its kwargs): the runs they start count them as the
    requester, whom four-eyes approvals refuse."""

    form = ScheduleForm

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        return type("ScheduleForm", (form,), {"user": request.user})

    # django-celery-beat's action needs no permission: anyone who may view schedules could run
    # any task now. Running one changes what happens, like editing it.
    @admin.action(description="Run selected tasks", permissions=["change"])
    def run_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        # Run now by whoever clicks: the events are theirs, not the saver's.
        tasks = list(queryset)
        for task in tasks:
            if task.task == EMIT_TASK:
                task.kwargs = json.dumps({**json.loads(task.kwargs), "actor_id": request.user.pk})
        super().run_tasks(request, tasks)
