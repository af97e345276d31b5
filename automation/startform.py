"""The Start run form's fields, built from a workflow's input schema: one labelled field per
property when the schema is an object of simple properties (string, number, integer, boolean,
enum); anything else is typed as JSON."""

from __future__ import annotations

import json
from typing import Any

from django import forms

FIELD_PREFIX = "in_"
SIMPLE_TYPES = ("string", "number", "integer", "boolean")
MAX_FIELDS = 30  # more than this is no longer a form a person fills in: JSON it is


def simple_properties(schema: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The properties of ``schema`` when each can be one form field (else empty: use JSON)."""
    if not isinstance(schema, dict) or schema.get("type", "object") != "object":
        return {}
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties or len(properties) > MAX_FIELDS:
        return {}
    for name, prop in properties.items():
        if not isinstance(prop, dict) or not str(name).isidentifier():
            return {}
        if "enum" in prop:
            if not isinstance(prop["enum"], list) or not all(
                isinstance(v, (str, int, float, bool)) for v in prop["enum"]
            ):
                return {}
        elif prop.get("type") not in SIMPLE_TYPES:
            return {}
    return properties


def schema_fields(
    schema: dict[str, Any] | None, properties: dict[str, dict[str, Any]]
) -> dict[str, forms.Field]:
    """One Django field per property. None is Django-required: the schema says what is
    required (and its message shows under the field), so there is one source of rules."""
    required = set((schema or {}).get("required") or [])
    fields: dict[str, forms.Field] = {}
    for name, prop in properties.items():
        label = prop.get("title") or name
        common: dict[str, Any] = {
            "label": label,
            "required": False,
            "help_text": prop.get("description", ""),
        }
        attrs = {"aria-required": "true"} if name in required else {}
        if "enum" in prop:
            choices = [("", "—")] if name not in required else []
            choices += [(str(i), _shown(v)) for i, v in enumerate(prop["enum"])]
            field: forms.Field = forms.ChoiceField(
                choices=choices, widget=forms.Select(attrs=attrs), **common
            )
        elif prop.get("type") == "boolean":
            field = forms.BooleanField(**common)
        elif prop.get("type") == "integer":
            field = forms.IntegerField(widget=forms.NumberInput(attrs=attrs), **common)
        elif prop.get("type") == "number":
            field = forms.FloatField(
                widget=forms.NumberInput(attrs={**attrs, "step": "any"}), **common
            )
        else:
            field = forms.CharField(widget=forms.TextInput(attrs=attrs), strip=False, **common)
        field.schema_required = name in required  # type: ignore[attr-defined]
        if "default" in prop and not isinstance(field, forms.ChoiceField):
            field.initial = prop["default"]
        fields[name] = field
    return fields


def fields_input(properties: dict[str, dict[str, Any]], cleaned: dict[str, Any]) -> dict[str, Any]:
    """The run's input from the fields a person filled in (blank ones are left out, so the
    schema's ``required`` names them)."""
    data: dict[str, Any] = {}
    for name, prop in properties.items():
        value = cleaned.get(FIELD_PREFIX + name)
        if "enum" in prop:
            if value not in (None, ""):
                data[name] = prop["enum"][int(value)]
        elif prop.get("type") == "boolean":
            data[name] = bool(value)
        elif value not in (None, ""):
            data[name] = value
    return data


def _shown(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)
