"""Checks run when webhook endpoints, schemas and signal bridges are saved (admin and API).

Each function returns ``{field: message}`` so forms and the API can point at the field.
"""

from __future__ import annotations

import binascii
import json

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from events import compat, schemas, upcasting
from events.models import (
    EventSchema,
    ModelAction,
    SignalBridge,
    TypeFrom,
    VerificationScheme,
    WebhookEndpoint,
)
from events.payloads import validate_path


def event_type_error(value: str) -> str | None:
    from events.services import InvalidEvent, validate_event_type

    try:
        validate_event_type(value)
    except InvalidEvent as exc:
        return exc.message
    return None


def webhook_endpoint_errors(endpoint: WebhookEndpoint) -> dict[str, str]:
    errors: dict[str, str] = {}
    secret_error = _secret_error(endpoint.scheme, endpoint.secret)
    if secret_error:
        errors["secret"] = secret_error
    type_error = _type_rule_error(endpoint)
    if type_error:
        errors["type_value"] = type_error
    if endpoint.type_prefix and event_type_error(endpoint.type_prefix + "x"):
        errors["type_prefix"] = "use letters, digits, '-', '_' and dots, e.g. github."
    if endpoint.data_path:
        try:
            validate_path(endpoint.data_path)
        except ValueError as exc:
            errors["data_path"] = str(exc)
    if endpoint.max_body_bytes is not None:
        errors |= _max_body_error(endpoint.max_body_bytes)
    return errors


def _max_body_error(value: int) -> dict[str, str]:
    # The server refuses larger bodies before any view (or endpoint) is looked at.
    ceiling = settings.WEBHOOK_MAX_BODY_BYTES
    if value < 1:
        return {"max_body_bytes": "must be at least 1 byte, or blank for the default"}
    if value > ceiling:
        return {
            "max_body_bytes": f"must be at most WEBHOOK_MAX_BODY_BYTES ({ceiling}); raise that "
            "setting to accept larger bodies"
        }
    return {}


def _secret_error(scheme: str, secret: str) -> str | None:
    if scheme == VerificationScheme.NONE:
        return None
    if not secret:
        return f"the {scheme} scheme needs a secret"
    if scheme == VerificationScheme.STANDARD_WEBHOOKS:
        if not secret.startswith("whsec_"):
            return "Standard Webhooks secrets look like whsec_<base64>"
        try:
            Webhook(secret)
        except (binascii.Error, ValueError, EmptyWebhookSecretError):
            return "the part after whsec_ must be base64 of at least one byte"
    return None


def _type_rule_error(endpoint: WebhookEndpoint) -> str | None:
    how, value = endpoint.type_from, endpoint.type_value
    if not how:
        return "set 'type from' too, or clear this value" if value else None
    if not value:
        return f"required when the type comes from {TypeFrom(how).label.lower()}"
    if how == TypeFrom.FIXED:
        problem = event_type_error(endpoint.type_prefix + value)
        return f"not an event type: {problem}" if problem else None
    if how == TypeFrom.JSON_PATH:
        try:
            validate_path(value)
        except ValueError as exc:
            return str(exc)
    return None


def event_schema_errors(row: EventSchema) -> dict[str, str]:
    errors: dict[str, str] = {}
    problem = event_type_error(row.type)
    if problem:
        errors["type"] = problem
    try:
        schemas.schema_check(row.schema)
    except ValueError as exc:
        errors["schema"] = str(exc)
    upcast_problems = upcasting.upcast_errors(row.upcast)
    if upcast_problems:
        errors["upcast"] = "; ".join(upcast_problems)
    if not errors and row._state.adding:
        errors |= _compatibility_errors(row)
    return errors


def _compatibility_errors(row: EventSchema) -> dict[str, str]:
    # A new version is checked against the version before it, under this version's mode.
    previous = (
        EventSchema.objects.filter(type=row.type, active=True, version__lt=row.version)
        .order_by("-version")
        .first()
    )
    if previous is None:
        return {}
    problems = compat.problems(previous.schema, row.schema, row.compatibility)
    if not problems:
        return {}
    return {"schema": f"not compatible with version {previous.version}: " + "; ".join(problems)}


def signal_bridge_errors(bridge: SignalBridge) -> dict[str, str]:
    errors: dict[str, str] = {}
    problem = event_type_error(bridge.event_type)
    if problem:
        errors["event_type"] = problem
    try:
        model = apps.get_model(bridge.model)
    except (LookupError, ValueError):
        errors["model"] = f"no installed model {bridge.model!r}; use app_label.ModelName"
        return errors
    if bridge.field:
        try:
            model._meta.get_field(bridge.field)
        except FieldDoesNotExist:
            errors["field"] = f"{bridge.model} has no field {bridge.field!r}"
        if bridge.action != ModelAction.UPDATED:
            errors["action"] = "a field change only happens on 'updated'"
    elif bridge.from_value or bridge.to_value:
        errors["field"] = "name the field whose old/new values you set"
    return errors


SCHEDULE_KWARGS = {"type", "data", "subject", "correlation_id"}


def scheduled_kwargs_error(kwargs_json: str) -> str | None:
    """What is wrong with a PeriodicTask's kwargs for ``events.emit_scheduled``, if anything."""
    try:
        kwargs = json.loads(kwargs_json or "{}")
    except ValueError as exc:
        return f"not JSON: {exc}"
    if not isinstance(kwargs, dict):
        return 'use an object such as {"type": "report.due", "data": {}}'
    unknown = sorted(set(kwargs) - SCHEDULE_KWARGS)
    if unknown:
        return f"unknown key(s) {', '.join(unknown)}; use {', '.join(sorted(SCHEDULE_KWARGS))}"
    problem = event_type_error(kwargs.get("type", ""))
    if problem:
        return f"type: {problem}"
    if not isinstance(kwargs.get("data", {}), dict):
        return "data must be a JSON object"
    return None
