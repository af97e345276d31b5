"""``record.create`` and ``record.update``: write a row of a Django model named
``app_label.Model``, limited to the models the AUTOMATION_RECORD_MODELS setting allows."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models, transaction
from django.forms.models import model_to_dict

from automation import NonRetryableError, action

_MODEL = {"type": "string", "pattern": r"^[A-Za-z_][\w]*\.[A-Za-z_][\w]*$"}


def allowed_model(label: str) -> type[models.Model]:
    """The model for ``app_label.Model`` if the setting allows it; NonRetryableError if not."""
    allowed = {entry.lower() for entry in settings.AUTOMATION_RECORD_MODELS}
    if label.lower() not in allowed:
        raise NonRetryableError(
            f"model {label!r} is not in AUTOMATION_RECORD_MODELS "
            f"({', '.join(settings.AUTOMATION_RECORD_MODELS) or 'empty'})"
        )
    try:
        return apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise NonRetryableError(f"no model {label!r}: {exc}") from None


def _assign(instance: models.Model, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        try:
            field = instance._meta.get_field(name)
        except FieldDoesNotExist:
            raise NonRetryableError(f"{instance._meta.label} has no field {name!r}") from None
        if not field.concrete or field.primary_key or field.many_to_many:
            raise NonRetryableError(f"field {name!r} of {instance._meta.label} cannot be set")
        setattr(instance, field.attname, value)
    try:
        instance.full_clean()
    except ValidationError as exc:
        raise NonRetryableError(f"{instance._meta.label}: {exc.message_dict}") from None


def _output(instance: models.Model) -> dict[str, Any]:
    return {"model": instance._meta.label, "pk": instance.pk, "fields": model_to_dict(instance)}


@action(
    "record.create",
    stores_input=("*",),  # written to a table, read by whoever reads it
    input_schema={
        "type": "object",
        "required": ["model", "fields"],
        "additionalProperties": False,
        "properties": {"model": _MODEL, "fields": {"type": "object"}},
    },
)
def record_create(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Create a row; the output has its ``pk`` and ``fields``."""
    model = allowed_model(input["model"])
    instance = model()
    _assign(instance, input["fields"])
    instance.save()
    return _output(instance)


@action(
    "record.update",
    stores_input=("*",),
    input_schema={
        "type": "object",
        "required": ["model", "pk", "fields"],
        "additionalProperties": False,
        "properties": {
            "model": _MODEL,
            "pk": {"type": ["string", "integer"]},
            "fields": {"type": "object", "minProperties": 1},
        },
    },
)
def record_update(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Update the row with primary key ``pk``; NonRetryableError if there is none."""
    model = allowed_model(input["model"])
    with transaction.atomic():
        instance = model._default_manager.select_for_update().filter(pk=input["pk"]).first()
        if instance is None:
            raise NonRetryableError(f"no {model._meta.label} with pk {input['pk']!r}")
        _assign(instance, input["fields"])
        instance.save()
    return _output(instance)
