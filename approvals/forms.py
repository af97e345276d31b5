"""Form fields an approval asks the approver to fill in, and the decision form built from them.

A workflow declares the fields as data (``ctx.approval(..., fields=[...])``)::

    {"name": "amount", "label": "Approved amount", "type": "number", "required": True,
     "help": "In euros, VAT included"}
    {"name": "cost_centre", "type": "choice", "choices": ["sales", "ops"]}

Types: ``text``, ``textarea``, ``number``, ``boolean``, ``choice`` (needs ``choices``: values,
or ``{"value", "label"}`` objects), ``date`` (``YYYY-MM-DD``). ``required`` fields must be
filled in to approve (a required boolean must be true: a confirmation box); a rejection may
leave them empty. The specs are checked when the approval is created
(:func:`validate_field_specs`); the submitted values are checked and converted by
:func:`decision_form` for the browser and :func:`clean_values` for the API, so both accept and
refuse the same input. Values reach the workflow as JSON: numbers as int or float, dates as
``"YYYY-MM-DD"``, booleans as true/false, empty fields as ``None`` (``""`` for text).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from django import forms

from automation.engine.errors import WorkflowError
from automation.lib.errors import DomainError

__all__ = [
    "FIELD_TYPES",
    "DecisionForm",
    "InvalidValues",
    "clean_values",
    "decision_form",
    "validate_field_specs",
]

FIELD_TYPES = ("text", "textarea", "number", "boolean", "choice", "date")
RESERVED_NAMES = frozenset({"decision", "comment", "values"})
SPEC_KEYS = frozenset({"name", "label", "type", "required", "choices", "help"})
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
MAX_FIELDS = 50


class InvalidValues(DomainError):
    """Submitted values that do not fit the approval's fields; ``errors`` maps each field
    name to its messages."""

    code = "invalid_values"

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items()))

    def describe(self) -> str:
        return f"Check the fields: {self}"

    def details(self) -> dict[str, Any]:
        return {"fields": self.errors}


# --- the specs ------------------------------------------------------------------------------


def validate_field_specs(fields: Any, *, step_id: str) -> list[dict[str, Any]]:
    """The specs, complete (label, required, help, choices filled in) and checked; a
    WorkflowError naming the bad entry (``fields[1].type``) otherwise."""
    if fields is None:
        return []
    if not isinstance(fields, list | tuple):
        raise WorkflowError(f"approval {step_id!r}: fields must be a list of field objects")
    if len(fields) > MAX_FIELDS:
        raise WorkflowError(f"approval {step_id!r}: at most {MAX_FIELDS} fields")
    specs: list[dict[str, Any]] = []
    for index, field in enumerate(fields):
        spec = _validate_spec(field, f"approval {step_id!r}: fields[{index}]")
        if any(spec["name"] == other["name"] for other in specs):
            raise WorkflowError(
                f"approval {step_id!r}: fields[{index}].name {spec['name']!r} is used twice"
            )
        specs.append(spec)
    return specs


def _validate_spec(field: Any, where: str) -> dict[str, Any]:
    if not isinstance(field, dict):
        raise WorkflowError(f"{where} must be an object with name and type")
    unknown = sorted(set(field) - SPEC_KEYS)
    if unknown:
        raise WorkflowError(
            f"{where} has unknown key(s) {', '.join(unknown)}; use {', '.join(sorted(SPEC_KEYS))}"
        )
    name = field.get("name")
    if not isinstance(name, str) or not NAME.match(name) or name in RESERVED_NAMES:
        raise WorkflowError(
            f"{where}.name must be letters, digits and _ (not starting with a digit), "
            f"and not one of {', '.join(sorted(RESERVED_NAMES))}"
        )
    kind = field.get("type", "text")
    if kind not in FIELD_TYPES:
        raise WorkflowError(f"{where}.type must be one of {', '.join(FIELD_TYPES)}")
    for key in ("label", "help"):
        if not isinstance(field.get(key, ""), str):
            raise WorkflowError(f"{where}.{key} must be text")
    if not isinstance(field.get("required", False), bool):
        raise WorkflowError(f"{where}.required must be true or false")
    return {
        "name": name,
        "label": field.get("label") or name.replace("_", " ").capitalize(),
        "type": kind,
        "required": field.get("required", False),
        "help": field.get("help", ""),
        "choices": _validate_choices(field, kind, where),
    }


def _validate_choices(field: dict[str, Any], kind: str, where: str) -> list[dict[str, str]]:
    choices = field.get("choices")
    if kind != "choice":
        if choices is not None:
            raise WorkflowError(f"{where}.choices only apply to type 'choice'")
        return []
    if not isinstance(choices, list) or not choices:
        raise WorkflowError(f"{where}.choices must be a non-empty list for type 'choice'")
    normalized = []
    for index, choice in enumerate(choices):
        if isinstance(choice, str) and choice:
            choice = {"value": choice, "label": choice}
        if not (
            isinstance(choice, dict)
            and set(choice) <= {"value", "label"}
            and isinstance(choice.get("value"), str)
            and choice["value"]
            and isinstance(choice.get("label", ""), str)
        ):
            raise WorkflowError(
                f'{where}.choices[{index}] must be a non-empty text or {{"value", "label"}}'
            )
        normalized.append(
            {"value": choice["value"], "label": choice.get("label") or choice["value"]}
        )
    if len({c["value"] for c in normalized}) != len(normalized):
        raise WorkflowError(f"{where}.choices has the same value twice")
    return normalized


# --- the decision form ----------------------------------------------------------------------


def _form_field(spec: dict[str, Any]) -> forms.Field:
    """The Django field for a spec. Never ``required`` itself: required fields are required
    only to approve (checked in DecisionForm.clean), and a browser must let a rejection through."""
    common = {"label": spec["label"], "help_text": spec["help"], "required": False}
    kind = spec["type"]
    field: forms.Field
    if kind == "text":
        field = forms.CharField(max_length=1000, **common)
    elif kind == "textarea":
        field = forms.CharField(max_length=10000, widget=forms.Textarea, **common)
    elif kind == "number":
        field = forms.DecimalField(max_digits=18, **common)
    elif kind == "boolean":
        field = forms.BooleanField(**common)
    elif kind == "choice":
        options = [("", "---------")] + [(c["value"], c["label"]) for c in spec["choices"]]
        field = forms.ChoiceField(choices=options, **common)
    else:
        field = forms.DateField(
            input_formats=["%Y-%m-%d"],
            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            **common,
        )
    field.required_to_approve = spec["required"]  # type: ignore[attr-defined]
    return field


def _json_value(spec: dict[str, Any], value: Any) -> Any:
    if value in ("", None) and spec["type"] in ("number", "choice", "date"):
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


class DecisionForm(forms.Form):
    """Approve or reject, a comment, and the approval's own fields (named as declared).

    Each declared field's Django field has ``required_to_approve`` (for a marker in the
    page); ``values()`` gives the cleaned values as JSON once ``is_valid()``.
    """

    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("reject", "Reject")], widget=forms.RadioSelect
    )
    comment = forms.CharField(required=False, max_length=5000, widget=forms.Textarea)

    def __init__(self, *args: Any, specs: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.specs = specs
        for spec in specs:
            self.fields[spec["name"]] = _form_field(spec)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("decision") != "approve":
            return cleaned
        for spec in self.specs:
            name = spec["name"]
            if (
                spec["required"]
                and name not in self.errors
                and cleaned.get(name) in (None, "", False)
            ):
                message = (
                    "Tick this box to approve."
                    if spec["type"] == "boolean"
                    else "This field is required to approve."
                )
                self.add_error(name, message)
        return cleaned

    def values(self) -> dict[str, Any]:
        """The declared fields' values, JSON-ready (valid forms only)."""
        return {
            spec["name"]: _json_value(spec, self.cleaned_data.get(spec["name"]))
            for spec in self.specs
        }


def decision_form(approval: Any, data: Any = None, **kwargs: Any) -> DecisionForm:
    """The form for deciding ``approval`` in a page: ``decision`` (approve/reject),
    ``comment``, and the fields the workflow declared, validated like the API validates them.

    After ``form.is_valid()``, call ``approval_decide(approval=..., user=...,
    decision=form.cleaned_data["decision"], comment=form.cleaned_data["comment"],
    values=form.values())``. ``kwargs`` go to the Form (``prefix``, ``initial``...).
    """
    return DecisionForm(data, specs=approval.fields or [], **kwargs)


def clean_values(approval: Any, decision: str, values: Any) -> dict[str, Any]:
    """Submitted ``values`` (a JSON object) checked against the approval's fields and
    converted by type; InvalidValues naming each bad field otherwise. Required fields are
    required only when ``decision`` is ``approve``."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise InvalidValues({"values": ["Must be an object of field names and values."]})
    specs = {spec["name"]: spec for spec in approval.fields or []}
    errors = _shape_errors(specs, values)
    if errors:
        raise InvalidValues(errors)
    form = decision_form(approval, {**values, "decision": decision})
    if not form.is_valid():
        raise InvalidValues({name: list(msgs) for name, msgs in form.errors.items()})
    return form.values()


def _shape_errors(specs: dict[str, dict[str, Any]], values: dict[str, Any]) -> dict[str, list[str]]:
    """What Django's form fields would silently accept from JSON: unknown names, lists and
    objects (turned into text), and anything but true/false for a boolean."""
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        spec = specs.get(name)
        if spec is None:
            asked = ", ".join(specs) or "none"
            errors[name] = [f"Unknown field; this approval asks for: {asked}."]
        elif isinstance(value, list | dict):
            errors[name] = ["Must be a single value, not a list or an object."]
        elif spec["type"] == "boolean" and value not in (True, False, None):
            errors[name] = ["Must be true or false."]
        elif spec["type"] == "number" and isinstance(value, bool):
            errors[name] = ["Enter a number."]
    return errors
