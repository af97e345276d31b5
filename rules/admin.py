"""Rules in the Django admin: the same JSON editor and validation as workflow definitions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django_json_widget.widgets import JSONEditorWidget

from automation.definitions.validation import InvalidDefinition
from rules import spec
from rules.models import Rule
from rules.services import rule_save

STARTER = {
    "name": "my-rule",
    "kind": "threshold",
    "event": "login.failed",
    "correlate": "data.user",
    "count": 5,
    "within": "10m",
    "emit": {"type": "account.suspicious", "data": {"user": "{{ key }}"}},
}


class RuleEditor(JSONEditorWidget):
    """The JSON editor, validating against the rule format's schema in the browser."""

    def __init__(self) -> None:
        super().__init__(
            mode="code",
            options={"modes": ["code", "tree"], "schema": spec.rule_schema()},
            height="420px",
        )

    def format_value(self, value: Any) -> Any:
        try:
            return super().format_value(value)
        except ValueError:  # not JSON: show the text as it was sent
            return value


class RuleForm(forms.ModelForm):
    definition = forms.JSONField(
        widget=RuleEditor(),
        help_text="The rule format is described in docs/rules.md. Saving a changed definition "
        "drops the rule's open partial matches and windows.",
    )

    class Meta:
        model = Rule
        fields = ["active", "definition"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            self.fields["definition"].initial = STARTER

    def clean_definition(self) -> Any:
        definition = self.cleaned_data["definition"]
        errors = [str(error) for error in spec.validate(definition)]
        name = definition.get("name") if isinstance(definition, dict) else None
        if self.instance.pk and name != self.instance.name:
            errors.append(f"name: this rule is {self.instance.name!r}; names cannot change")
        elif not self.instance.pk and name and Rule.objects.filter(name=name).exists():
            errors.append(f"name: a rule named {name!r} exists; edit that one")
        if errors:
            raise forms.ValidationError(errors)
        return definition


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleForm
    list_display = ["name", "kind", "active", "open_matches", "updated_at"]
    list_filter = ["kind", "active"]
    search_fields = ["name", "description"]
    readonly_fields = ["kind", "description", "created_at", "updated_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rule]:
        return (
            super()
            .get_queryset(request)
            .annotate(open=Count("keys", filter=Q(keys__opened_at__isnull=False)))
        )

    @admin.display(description="Open matches", ordering="open")
    def open_matches(self, rule: Rule) -> int:
        return getattr(rule, "open", 0)

    def save_model(self, request: HttpRequest, obj: Rule, form: Any, change: bool) -> None:
        try:
            saved, _ = rule_save(
                definition=form.cleaned_data["definition"],
                name=obj.name if change else None,
                active=form.cleaned_data["active"],
            )
        except InvalidDefinition as exc:  # checked in the form; a race is still possible
            raise forms.ValidationError(str(exc)) from exc
        obj.pk, obj.name = saved.pk, saved.name
