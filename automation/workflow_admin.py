"""Django admin for workflows: declarative definitions edited in a JSON editor that validates
against the published schema as you type, saved as immutable versions, with the version list
(in-flight runs, a diff with the previous version) and a dry run against a sample event."""

from __future__ import annotations

import difflib
import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django_json_widget.widgets import JSONEditorWidget

from automation.commands import workflow_activate, workflow_definition_save
from automation.definitions.dryrun import FakeError, dry_run
from automation.definitions.schema import definition_schema
from automation.definitions.validation import InvalidDefinition, validate
from automation.graphs import render_svg, workflow_graph
from automation.models import ACTIVE_STATUSES, Workflow, WorkflowVersion

STARTER = {
    "name": "my-workflow",
    "trigger": {"event": "example.something.happened"},
    "steps": [{"id": "hello", "action": "log", "input": {"message": "{{ trigger.data }}"}}],
}


class DefinitionEditor(JSONEditorWidget):
    """The JSON editor, validating against the format's schema in the browser."""

    def __init__(self) -> None:
        super().__init__(
            mode="code",
            options={"modes": ["code", "tree"], "schema": definition_schema()},
            height="520px",
        )

    def format_value(self, value: Any) -> Any:
        try:
            return super().format_value(value)
        except ValueError:  # not JSON: show the text as it was sent
            return value


class DefinitionForm(forms.ModelForm):
    definition = forms.JSONField(
        widget=DefinitionEditor(),
        help_text="The format is described at /api/workflows/schema/ (docs/declarative.md). "
        "Saving a changed definition creates a new version; runs in flight keep "
        "theirs.",
    )

    class Meta:
        model = Workflow
        fields = ["active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        latest = self.instance.latest_version() if self.instance.pk else None
        self.fields["definition"].initial = latest.definition if latest else STARTER

    def clean_definition(self) -> Any:
        definition = self.cleaned_data["definition"]
        errors = [str(error) for error in validate(definition)]
        name = definition.get("name") if isinstance(definition, dict) else None
        if self.instance.pk and name != self.instance.name:
            errors.append(f"name: this workflow is {self.instance.name!r}; names cannot change")
        elif not self.instance.pk and name and Workflow.objects.filter(name=name).exists():
            errors.append(f"name: a workflow named {name!r} exists; edit that one")
        if errors:
            raise forms.ValidationError(errors)
        return definition


class CodeWorkflowForm(forms.ModelForm):
    class Meta:
        model = Workflow
        fields = ["active"]


class VersionInline(admin.TabularInline):
    model = WorkflowVersion
    fields = ["number", "trigger_event", "created_at", "created_by", "in_flight", "diff"]
    readonly_fields = fields
    ordering = ["-number"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .select_related("created_by")
            .annotate(in_flight=Count("runs", filter=Q(runs__status__in=ACTIVE_STATUSES)))
        )

    @admin.display(description="runs in flight")
    def in_flight(self, obj: WorkflowVersion) -> int:
        return obj.in_flight

    @admin.display(description="definition")
    def diff(self, obj: WorkflowVersion) -> str:
        url = reverse("admin:automation_workflowversion_change", args=[obj.pk])
        label = "definition and diff" if obj.number > 1 else "definition"
        return format_html('<a href="{}">{}</a>', url, label)


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "active", "updated_at"]
    list_filter = ["kind", "active"]
    search_fields = ["name", "description"]
    inlines = [VersionInline]
    actions = ["activate", "deactivate"]
    change_form_template = "admin/automation/workflow/change_form.html"

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        kwargs["form"] = (
            CodeWorkflowForm if obj and obj.kind == Workflow.Kind.CODE else (DefinitionForm)
        )
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["active", "definition"]
        if obj.kind == Workflow.Kind.CODE:
            return ["name", "kind", "description", "active", "diagram", "created_at", "updated_at"]
        return ["name", "kind", "description", "active", "diagram", "definition", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return ["name", "kind", "description", "diagram", "created_at", "updated_at"]

    @admin.display(description="diagram")
    def diagram(self, obj: Workflow) -> str:
        """The latest version drawn (a code workflow: the paths its latest runs took)."""
        return format_html(
            '<div style="overflow-x:auto">{}</div>', render_svg(workflow_graph(obj), "wfg-admin")
        )

    def save_model(self, request: HttpRequest, obj: Workflow, form: Any, change: bool) -> None:
        if obj.kind == Workflow.Kind.CODE:
            super().save_model(request, obj, form, change)
            return
        try:
            wf, version, created = workflow_definition_save(
                definition=form.cleaned_data["definition"],
                user=request.user,
                name=obj.name if change else None,
                active=form.cleaned_data["active"],
            )
        except InvalidDefinition as exc:  # changed by someone else since the form was checked
            self.message_user(request, f"Not saved: {exc}", messages.ERROR)
            return
        obj.pk, obj.name, obj.kind = wf.pk, wf.name, wf.kind
        obj._state.adding = False
        note = f"saved as version {version.number}" if created else "unchanged: no new version"
        self.message_user(request, f"Definition of {wf.name} {note}.")

    @admin.action(description="Activate (start new runs)", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.message_user(request, f"{self._set_active(request, queryset, True)} activated.")

    @admin.action(description="Deactivate (start no new runs)", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.message_user(request, f"{self._set_active(request, queryset, False)} deactivated.")

    def _set_active(self, request: HttpRequest, queryset: QuerySet, active: bool) -> str:
        """The operator UI's service: each change is in the workflow's history, with who."""
        workflows = list(queryset)
        for wf in workflows:
            workflow_activate(workflow=wf, active=active, user=request.user)
        return f"{len(workflows)} workflow(s)"

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.dry_run_view)
        dry = path("<path:object_id>/dry-run/", view, name="automation_workflow_dry_run")
        return [dry, *super().get_urls()]

    def dry_run_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Run the latest version against a sample event, actions faked: each step's rendered
        input and the branch taken. Writes nothing."""
        if not object_id.isdigit():  # a hand-edited URL: no such workflow, not a crash
            raise Http404(f"No workflow with id {object_id!r}.")
        wf = get_object_or_404(Workflow, pk=object_id, kind=Workflow.Kind.DECLARATIVE)
        if not self.has_view_permission(request, wf):
            raise PermissionDenied
        version = wf.latest_version()
        form = DryRunForm(request.POST or None)
        result = None
        if request.method == "POST" and form.is_valid() and version is not None:
            try:
                result = dry_run(
                    version.definition,
                    form.cleaned_data["data"],
                    event_type=form.cleaned_data["event_type"],
                    fakes=form.cleaned_data["fakes"] or {},
                )
            except FakeError as exc:
                form.add_error("fakes", str(exc))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Dry run of {wf.name} v{version.number if version else '-'}",
            "opts": self.model._meta,
            "original": wf,
            "form": form,
            "result": result,
            "steps": [_shown(step) for step in result.steps] if result else [],
        }
        return TemplateResponse(request, "admin/automation/workflow/dry_run.html", context)


class DryRunForm(forms.Form):
    event_type = forms.CharField(required=False, help_text="Default: the trigger's event type.")
    data = forms.JSONField(
        initial=dict,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80}),
        help_text="The sample event's data (a JSON object).",
    )
    fakes = forms.JSONField(
        required=False,
        initial=dict,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text='Outputs by step id, e.g. {"createUser": {"userId": 7}, "managerOk": '
        '{"approved": false}, "reply": {"timed_out": true}}. An approval takes "approved" '
        'and/or "decision" (approved, rejected, expired); a wait an event object or '
        '{"timed_out": true}. Actions without one return {}; approvals approve; waits get an '
        "event.",
    )

    def clean_data(self) -> Any:
        if not isinstance(self.cleaned_data["data"], dict):
            raise forms.ValidationError("The event's data is a JSON object.")
        return self.cleaned_data["data"]

    def clean_fakes(self) -> Any:
        fakes = self.cleaned_data["fakes"]
        if fakes is not None and not isinstance(fakes, dict):
            raise forms.ValidationError("Fakes are a JSON object of outputs by step id.")
        return fakes


def _shown(step: Any) -> dict[str, Any]:
    return {
        "id": step.id,
        "kind": step.kind,
        "status": step.status,
        "note": step.note,
        "input": "" if step.input is None else _pretty(step.input),
        "output": "" if step.output is None else _pretty(step.output),
    }


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "trigger_event", "checksum_short", "created_by", "created_at"]
    list_select_related = ["workflow", "created_by"]
    search_fields = ["workflow__name"]
    fields = [
        "workflow",
        "number",
        "trigger_event",
        "trigger_filter",
        "code_ref",
        "checksum",
        "created_by",
        "created_at",
        "in_flight",
        "diagram",
        "definition_pretty",
        "diff",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # versions are immutable

    @admin.display(description="checksum")
    def checksum_short(self, obj: WorkflowVersion) -> str:
        return obj.checksum[:12]

    @admin.display(description="runs in flight")
    def in_flight(self, obj: WorkflowVersion) -> int:
        return obj.runs.filter(status__in=ACTIVE_STATUSES).count()

    @admin.display(description="diagram")
    def diagram(self, obj: WorkflowVersion) -> str:
        graph = workflow_graph(obj.workflow, version=obj)
        return format_html('<div style="overflow-x:auto">{}</div>', render_svg(graph, "wfg-admin"))

    @admin.display(description="definition")
    def definition_pretty(self, obj: WorkflowVersion) -> str:
        return format_html("<pre>{}</pre>", _pretty(obj.definition)) if obj.definition else "-"

    @admin.display(description="changes from the previous version")
    def diff(self, obj: WorkflowVersion) -> str:
        previous = (
            WorkflowVersion.objects.filter(workflow=obj.workflow, number__lt=obj.number)
            .order_by("-number")
            .first()
        )
        if previous is None:
            return "(first version)"
        table = difflib.HtmlDiff(wrapcolumn=70).make_table(
            _pretty(previous.definition).splitlines(),
            _pretty(obj.definition).splitlines(),
            f"v{previous.number}",
            f"v{obj.number}",
            context=True,
        )
        # HtmlDiff escapes the lines it shows; the table markup is its own.
        return mark_safe(DIFF_STYLE + table)  # noqa: S308


DIFF_STYLE = (
    "<style>table.diff{font-family:monospace;border:1px solid #ccc}"
    ".diff_add{background:#cfc}.diff_chg{background:#ffc}.diff_sub{background:#fcc}"
    "td.diff_header{text-align:right;color:#888}</style>"
)
