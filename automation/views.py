from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.db import DataError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST, require_safe

from automation import health, selectors
from automation import metrics as prometheus
from automation.commands import circuit_close, run_retry, run_signal, workflow_activate
from automation.engine import queries, querying, signalling
from automation.engine.errors import WorkflowError
from automation.engine.inputs import InvalidInput, version_input_schema
from automation.engine.journal import NotJSONError
from automation.engine.runs import run_cancel, run_start
from automation.engine.search import SearchAttributeError
from automation.graphs.pages import in_flight_runs, pick_diff
from automation.lib import ids, jsonsafe
from automation.lib.errors import DomainError
from automation.lib.paging import keyset_page, query_without
from automation.lib.ui import render_page
from automation.models import Circuit, Run, RunOrigin, RunStatus, Workflow
from automation.startform import FIELD_PREFIX, fields_input, schema_fields, simple_properties
from events import selectors as event_selectors
from events.services import InvalidEvent, event_ingest, validate_event_type


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database, broker and channel layer answer; 503 naming the ones that do not."""
    status, body = health.report()  # under ASGI, health.HealthzFirst answers before Django
    return JsonResponse(body, status=status)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text: counters of every process (PROMETHEUS_MULTIPROC_DIR) and live gauges."""
    return HttpResponse(prometheus.exposition(), content_type=prometheus.CONTENT_TYPE)


# --- Operator UI: dashboard and runs ----------------------------------------------------------

VIEW_RUNS = "automation.view_run"
VIEW_EVENTS = "events.view_event"
OPERATE_RUNS = "automation.change_run"


@login_required
@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(VIEW_RUNS):
        return redirect("app:inbox")  # people who only approve start at their inbox
    context = {"stats": selectors.dashboard(request.user), "section": "dashboard"}
    return render_page(request, "app/dashboard.html", context)


@login_required
@require_safe
@permission_required(VIEW_RUNS, raise_exception=True)
def runs(request: HttpRequest) -> HttpResponse:
    filters = {
        "workflow": request.GET.get("workflow", ""),
        "status": request.GET.get("status", ""),
        "q": request.GET.get("q", "").strip(),
    }
    if any("\x00" in value for value in filters.values()):
        return _runs_refused(request, filters, NUL_REFUSED)
    try:
        attributes = selectors.search_attributes_asked(request.GET)
    except SearchAttributeError as exc:
        return _runs_refused(request, filters, str(exc))
    page = keyset_page(selectors.runs_filtered(**filters, attributes=attributes), request)
    context = {
        "page": page,
        "filters": filters,
        "attr": request.GET.get("attr", "").strip(),
        "attributes": attributes,
        "statuses": RunStatus.choices,
        "workflows": selectors.workflow_names(),
        "query": query_without(request, "before", "fragment"),
        "section": "runs",
    }
    return render_page(request, "app/runs.html", context)


#: Nothing stored holds a NUL character (PostgreSQL refuses it in text): a search for one is
#: refused rather than sent to the database, which would answer with an error (a 500).
NUL_REFUSED = "The search has a NUL character (\\x00), which no stored text holds; remove it."


def _runs_refused(request: HttpRequest, filters: dict[str, str], problem: str) -> HttpResponse:
    """The runs page with no list and the filter's problem, answered 400."""
    context = {
        "page": None,
        "filters": filters,
        "attr": request.GET.get("attr", "").strip(),
        "attr_error": problem,
        "statuses": RunStatus.choices,
        "workflows": selectors.workflow_names(),
        "section": "runs",
    }
    return render(request, "app/runs.html", context, status=400)


@login_required
@require_safe
@permission_required(VIEW_RUNS, raise_exception=True)
def run_page(request: HttpRequest, run_id: Any) -> HttpResponse:
    return _render_run(request, _run_for_page(run_id))


def _run_for_page(run_id: Any) -> Run:
    return get_object_or_404(
        Run.objects.select_related("workflow", "version", "trigger_event", "parent_run"), id=run_id
    )


def _render_run(request: HttpRequest, run: Run, status: int = 200, **extra: Any) -> HttpResponse:
    """The run page; ``extra``: a signal form with its errors, a query's answer."""
    context = {
        "run": run,
        "timeline": selectors.run_timeline(run),
        "approvals": run.approvals.all(),
        "superseded": selectors.run_superseded(run),
        "can_operate": request.user.has_perm(OPERATE_RUNS),
        "signals": signalling.run_signals(run),
        "queries": queries.queries_of(run.workflow.name),
        "signal_form": SignalForm(),
        "section": "runs",
        **extra,
    }
    response = render_page(request, "app/run.html", context)
    response.status_code = status
    return response


class SignalForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="The name a wait_for_signal step waits for.")
    data = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono"}),
        initial="{}",
        required=False,
        help_text='A JSON object, e.g. {"approved": true}.',
    )

    def clean_data(self) -> dict[str, Any]:
        try:
            value = json.loads(self.cleaned_data["data"] or "{}")
        except ValueError as exc:
            raise forms.ValidationError(
                f"This is not JSON ({exc}); fix it and send again."
            ) from None
        if not isinstance(value, dict):
            raise forms.ValidationError('The data must be a JSON object: {"key": value, ...}.')
        return value


@login_required
@require_POST
@permission_required(OPERATE_RUNS, raise_exception=True)
def run_signal_page(request: HttpRequest, run_id: Any) -> HttpResponse:
    """Send a signal from the run page: the same service and permission as the API. A bad
    form is shown again with its errors (400), nothing sent."""
    run = _run_for_page(run_id)
    form = SignalForm(request.POST)
    if not form.is_valid():
        return _render_run(request, run, status=400, signal_form=form)
    try:
        signal = run_signal(
            run_id=run.id, name=form.cleaned_data["name"], data=form.cleaned_data["data"],
            user=request.user,
        )  # fmt: skip
    except DomainError as exc:
        form.add_error(None, str(exc))
        return _render_run(request, run, status=exc.status, signal_form=form)
    taken = f", taken by {signal.step_id}" if signal.step_id else ", kept until a step waits"
    messages.success(request, f"Signal {signal.name} sent{taken}.")
    return redirect("app:run", run_id=run.id)


@login_required
@require_safe
@permission_required(VIEW_RUNS, raise_exception=True)
def run_query_page(request: HttpRequest, run_id: Any, name: str) -> HttpResponse:
    """Ask the run a query from its page: its answer (or why there is none) on the page."""
    run = _run_for_page(run_id)
    try:
        result = querying.query_run(run=run, name=name, params=dict(request.GET.items()))
    except DomainError as exc:
        answer = {"name": name, "error": str(exc)}
        return _render_run(request, run, status=exc.status, query_answer=answer)
    return _render_run(request, run, query_answer={"name": name, "result": result})


@login_required
@require_POST
@permission_required(OPERATE_RUNS, raise_exception=True)
def run_operate(request: HttpRequest, run_id: Any, operation: str) -> HttpResponse:
    """Cancel or retry from the run page; the same services as the API."""
    run = get_object_or_404(Run.objects.select_related("workflow", "version"), id=run_id)
    service = {"cancel": run_cancel, "retry": run_retry}[operation]
    try:
        service(run=run)
    except WorkflowError as exc:
        messages.error(request, str(exc))
    else:
        done = {"cancel": "Cancellation requested.", "retry": "Retrying from the failed step."}
        messages.success(request, done[operation])
    return redirect("app:run", run_id=run.id)


# --- Operator UI: one search box for runs and events ------------------------------------------

#: Rows of each kind the search page shows; the runs and events pages page through the rest.
SEARCH_SHOWN = 20


@login_required
@require_safe
def search(request: HttpRequest) -> HttpResponse:
    """Runs and events a text names: an id or short id, a correlation id, or (events) words in
    their data. Each kind only for people who may view it."""
    can_runs, can_events = (request.user.has_perm(p) for p in (VIEW_RUNS, VIEW_EVENTS))
    if not (can_runs or can_events):
        raise PermissionDenied("Searching needs automation.view_run or events.view_event.")
    q = request.GET.get("q", "").strip()[: event_selectors.SEARCH_MAX_LENGTH]
    context: dict[str, Any] = {"q": q, "section": "search", "error": ""}
    if "\x00" in q:
        context["error"] = NUL_REFUSED
        return render(request, "app/search.html", context, status=400)
    context["runs"] = (
        list(selectors.runs_filtered(q=q).order_by("-id")[:SEARCH_SHOWN])
        if q and can_runs
        else None
    )
    context["events"], status = None, 200
    if q and can_events:
        try:
            with event_selectors.search_time_limit(q):
                found = event_selectors.events_matching(q).order_by("-id")[:SEARCH_SHOWN]
                context["events"] = list(found)
        except event_selectors.SearchTooSlow as exc:
            context["error"], status = str(exc), 400
    response = render(request, "app/search.html", context)
    response.status_code = status
    return response


# --- Operator UI: workflows -------------------------------------------------------------------

VIEW_WORKFLOWS = "automation.view_workflow"
START_RUNS = "automation.add_run"  # as POST /api/workflows/<name>/runs/
SEND_EVENTS = "events.add_event"  # as POST /api/events/
CHANGE_WORKFLOWS = "automation.change_workflow"  # as PUT /api/workflows/<name>/ (active)


class StartRunForm(forms.Form):
    input = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "mono"}),
        initial="{}",
        required=False,
        help_text='The run\'s input: a JSON object, e.g. {"amount": 420}.',
    )
    use_json = forms.BooleanField(required=False, label="Send the JSON below instead")
    correlation_id = forms.CharField(required=False, max_length=200)

    def __init__(self, *args: Any, schema: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """With an input schema of simple properties, one field per property (``in_<name>``);
        the JSON textarea stays as the fallback for any other input."""
        super().__init__(*args, **kwargs)
        self.properties = simple_properties(schema)
        self.fields["input"].required = not self.properties  # with fields, blank JSON is {}
        for name, field in schema_fields(schema, self.properties).items():
            self.fields[FIELD_PREFIX + name] = field

    @property
    def input_fields(self) -> list[Any]:
        return [self[FIELD_PREFIX + name] for name in self.properties]

    def uses_fields(self) -> bool:
        return bool(self.properties) and not self.cleaned_data.get("use_json")

    def clean_input(self) -> dict[str, Any] | None:
        raw = self.cleaned_data["input"].strip() or "{}"
        try:
            value = json.loads(raw)
        except ValueError as exc:
            message = f"This is not JSON ({exc}); fix it and start again."
            raise forms.ValidationError(message) from None
        if not isinstance(value, dict):
            raise forms.ValidationError('The input must be a JSON object: {"key": value, ...}.')
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.properties and not cleaned.get("use_json"):
            self.errors.pop("input", None)  # the textarea is not what is sent
            cleaned["input"] = fields_input(self.properties, cleaned)
        return cleaned

    def show_input_errors(self, errors: list[tuple[str, str]]) -> None:
        """The schema's complaints, each under its field (or the JSON textarea)."""
        for path, message in errors:
            name = path.removeprefix("input.")
            if self.uses_fields() and name in self.properties:
                self.add_error(FIELD_PREFIX + name, f"{message}.")
            else:
                self.add_error("input", f"{path}: {message}.")


class TestEventForm(forms.Form):
    type = forms.CharField(max_length=200, help_text="e.g. order.created")
    data = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false", "class": "mono"}),
        initial="{}",
        help_text='The event\'s data: a JSON object, e.g. {"total": 1200}.',
    )

    def clean_type(self) -> str:
        try:
            return validate_event_type(self.cleaned_data["type"].strip())
        except InvalidEvent as exc:
            raise forms.ValidationError(f"{exc.message}.") from None

    def clean_data(self) -> dict[str, Any]:
        # As the events API takes a body: NaN, 1e999, lone surrogates and deep nesting are
        # refused here, naming the problem, rather than failing in the database (a 500).
        try:
            value = jsonsafe.loads(self.cleaned_data["data"])
        except jsonsafe.UnstorableJSON as exc:
            raise forms.ValidationError(f"This cannot be stored: {exc}") from None
        except (ValueError, RecursionError) as exc:
            raise forms.ValidationError(
                f"This is not JSON ({exc}); fix it and send again."
            ) from None
        if not isinstance(value, dict):
            raise forms.ValidationError('The data must be a JSON object: {"key": value, ...}.')
        if jsonsafe.deeper_than(value, settings.EVENTS_MAX_JSON_DEPTH):
            raise forms.ValidationError(
                f"The data nests objects/arrays more than {settings.EVENTS_MAX_JSON_DEPTH} "
                "levels deep; flatten it."
            )
        return value


# --- Operator UI: circuit breakers ------------------------------------------------------------

VIEW_CIRCUITS = "automation.view_circuit"
CLOSE_CIRCUITS = "automation.change_circuit"


@login_required
@require_safe
@permission_required(VIEW_WORKFLOWS, raise_exception=True)
def workflows(request: HttpRequest) -> HttpResponse:
    context = {"workflows": selectors.workflows_overview(), "section": "workflows"}
    return render(request, "app/workflows.html", context)


@login_required
@require_safe
@permission_required(VIEW_WORKFLOWS, raise_exception=True)
def workflow_page(request: HttpRequest, name: str) -> HttpResponse:
    workflow = get_object_or_404(Workflow, name=name)
    return _render_workflow(request, workflow)


def _render_workflow(
    request: HttpRequest,
    workflow: Workflow,
    form: StartRunForm | None = None,
    event_form: TestEventForm | None = None,
    status: int = 200,
) -> HttpResponse:
    versions = list(selectors.workflow_versions(workflow))
    trigger = versions[0].trigger_event if versions else ""
    context = {
        "workflow": workflow,
        "versions": versions,
        "diff": pick_diff(versions, request.GET.get("from"), request.GET.get("to")),
        "runs": selectors.workflow_recent_runs(workflow),
        "in_flight": in_flight_runs(workflow),
        "form": form or StartRunForm(schema=_input_schema(workflow)),
        "event_form": event_form or TestEventForm(initial={"type": _exact(trigger)}),
        "can_start": request.user.has_perm(START_RUNS),
        "can_send": request.user.has_perm(SEND_EVENTS),
        "can_change": request.user.has_perm(CHANGE_WORKFLOWS),
        "section": "workflows",
    }
    response = render(request, "app/workflow.html", context)
    response.status_code = status
    return response


@login_required
@require_safe
@permission_required(VIEW_CIRCUITS, raise_exception=True)
def circuits(request: HttpRequest) -> HttpResponse:
    context = {
        "circuits": Circuit.objects.order_by("key")[:500],
        "can_close": request.user.has_perm(CLOSE_CIRCUITS),
        "section": "circuits",
    }
    return render_page(request, "app/circuits.html", context)


def _input_schema(workflow: Workflow) -> dict[str, Any] | None:
    """The input schema of the version a run started now would be pinned to."""
    version = workflow.latest_version()
    return version_input_schema(version) if version is not None else None


@login_required
@require_POST
@permission_required(START_RUNS, raise_exception=True)
def workflow_start(request: HttpRequest, name: str) -> HttpResponse:
    """Start a run from the workflow page: the same service and permission as the API. Invalid
    input is shown again with its error, and nothing is started."""
    workflow = get_object_or_404(Workflow, name=name)
    form = StartRunForm(request.POST, schema=_input_schema(workflow))
    if not form.is_valid():
        return _render_workflow(request, workflow, form, status=400)
    try:
        run = run_start(
            workflow=workflow,
            input=form.cleaned_data["input"],
            correlation_id=form.cleaned_data["correlation_id"].strip(),
            started_by=request.user,
            started_via=RunOrigin.API,
            check_input=True,
        )
    except InvalidInput as exc:
        form.show_input_errors(exc.errors)
        return _render_workflow(request, workflow, form, status=400)
    except NotJSONError as exc:  # NaN, or text no database can store
        form.add_error("input", f"{exc}.")
        return _render_workflow(request, workflow, form, status=400)
    except WorkflowError as exc:
        form.add_error(None, f"{exc}.")
        return _render_workflow(request, workflow, form, status=409)
    messages.success(request, f"Run {run.id} started.")
    if request.user.has_perm(VIEW_RUNS):
        return redirect("app:run", run_id=run.id)
    return redirect("app:workflow", name=workflow.name)


@login_required
@require_POST
@permission_required(CLOSE_CIRCUITS, raise_exception=True)
def circuit_close_page(request: HttpRequest, key: str) -> HttpResponse:
    """ "Close now" on the circuits page; the same service as the API."""
    try:
        circuit_close(key=key, user=request.user)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Circuit {key} closed: the next call goes through.")
    return redirect("app:circuits")


def _exact(event_type: str) -> str:
    """A trigger's event type as a test event's default type (a wildcard is not a type)."""
    return "" if any(char in event_type for char in "*?[") else event_type


@login_required
@require_POST
@permission_required(SEND_EVENTS, raise_exception=True)
def workflow_send_event(request: HttpRequest, name: str) -> HttpResponse:
    """ "Send test event" on a workflow's page: stored as POST /api/events/ stores an event from
    this user (source ``api``, the user as its actor) and routed to every workflow it starts,
    not only this one. Invalid input is shown again with its error; nothing is stored."""
    workflow = get_object_or_404(Workflow, name=name)
    form = TestEventForm(request.POST)
    if not form.is_valid():
        return _render_workflow(request, workflow, event_form=form, status=400)
    try:
        event, _ = event_ingest(
            actor_id=request.user.pk,
            type=form.cleaned_data["type"],
            data=form.cleaned_data["data"],
        )
    except InvalidEvent as exc:  # the data breaks the type's registered schema, say
        form.add_error("data" if exc.field.startswith("data") else None, f"{exc}.")
        return _render_workflow(request, workflow, event_form=form, status=400)
    except DataError as exc:  # text no database can store (a NUL character)
        form.add_error("data", f"The database cannot store this data ({exc}).")
        return _render_workflow(request, workflow, event_form=form, status=400)
    messages.success(request, f"Event {event.type} sent ({ids.short_id(event.id)}).")
    if request.user.has_perm("events.view_event"):
        return redirect("app:event", event_id=event.id)
    return redirect("app:workflow", name=workflow.name)


@login_required
@require_POST
@permission_required(CHANGE_WORKFLOWS, raise_exception=True)
def workflow_activate_page(request: HttpRequest, name: str, active: bool) -> HttpResponse:
    """Activate / Deactivate on a workflow's page: whether events start new runs of it."""
    workflow = get_object_or_404(Workflow, name=name)
    changed = workflow_activate(workflow=workflow, active=active, user=request.user)
    state = "active: events start new runs" if active else "inactive: it starts no new runs"
    note = "" if changed else " (it already was)"
    messages.success(request, f"{workflow.name} is {state}{note}.")
    return redirect("app:workflow", name=workflow.name)
