"""Webhooks: verify, parse and store a delivery; create endpoints and rotate their secrets."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events import signatures
from events.models import Event, TypeFrom, VerificationScheme, WebhookEndpoint
from events.payloads import BadPayload, PathNotFound, parse_json_object, resolve_path
from events.services import event_record

# Request headers never stored with an event (credentials and signatures).
SECRET_HEADER_WORDS = ("authorization", "cookie", "signature", "secret", "token", "api-key")


def headers_without_secrets(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers worth keeping with an event, lower-cased, credentials and signatures removed."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if any(word in lowered for word in SECRET_HEADER_WORDS):
            continue
        kept[lowered] = value[:1000]
    return kept


def webhook_receive(
    *, endpoint: WebhookEndpoint, body: bytes, headers: Mapping[str, str]
) -> tuple[Event, bool]:
    """Verify, parse and store one webhook delivery; returns ``(event, created)``.

    Raises ``SignatureError`` (401), ``BadPayload`` or ``InvalidEvent`` (400). A repeated
    delivery (same webhook-id, X-GitHub-Delivery, Stripe event id or idempotency header)
    returns the event stored the first time, with ``created`` False.
    """
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadPayload("malformed_json", "The body is not UTF-8 encoded JSON.") from None
    signed_at = signatures.verify(endpoint=endpoint, body=body, headers=headers, now=timezone.now())
    payload = parse_json_object(body)
    return event_record(
        type=_webhook_type(endpoint, payload, headers),
        data=_webhook_data(endpoint, payload),
        source=endpoint.source,
        idempotency_key=_webhook_delivery_id(endpoint, payload, headers, body),
        headers=headers_without_secrets(headers),
        occurred_at=signed_at,
    )


_DEFAULT_TYPE_FROM = {
    VerificationScheme.STANDARD_WEBHOOKS: (TypeFrom.JSON_PATH, "type"),
    VerificationScheme.STRIPE: (TypeFrom.JSON_PATH, "type"),
    VerificationScheme.GITHUB: (TypeFrom.HEADER, "X-GitHub-Event"),
    VerificationScheme.NONE: (TypeFrom.JSON_PATH, "type"),
}


def webhook_type_rule(endpoint: WebhookEndpoint) -> tuple[str, str]:
    """How this endpoint picks the event type: (fixed|header|json_path, value)."""
    if endpoint.type_from:
        return endpoint.type_from, endpoint.type_value
    return _DEFAULT_TYPE_FROM[VerificationScheme(endpoint.scheme)]


def _webhook_type(
    endpoint: WebhookEndpoint, payload: dict[str, Any], headers: Mapping[str, str]
) -> str:
    how, value = webhook_type_rule(endpoint)
    if how == TypeFrom.FIXED:
        found: Any = value
    elif how == TypeFrom.HEADER:
        found = headers.get(value, "")
        if not found:
            raise BadPayload("missing_type", f"The {value} header (the event type) is missing.")
    else:
        try:
            found = resolve_path(payload, value)
        except PathNotFound as exc:
            raise BadPayload(
                "missing_type", f"The body has no {exc} (where this endpoint reads the type)."
            ) from None
    if not isinstance(found, str):
        raise BadPayload("missing_type", f"The event type at {value} must be a string.")
    return endpoint.type_prefix + found


def _webhook_data(endpoint: WebhookEndpoint, payload: dict[str, Any]) -> dict[str, Any]:
    path = endpoint.data_path
    if not path and endpoint.scheme == VerificationScheme.STANDARD_WEBHOOKS:
        # The Standard Webhooks payload convention: {"type", "timestamp", "data"}.
        data = payload.get("data")
        return data if isinstance(data, dict) else payload
    if not path:
        return payload
    try:
        data = resolve_path(payload, path)
    except PathNotFound as exc:
        raise BadPayload("missing_data", f"The body has no {exc} (this endpoint's data).") from None
    if not isinstance(data, dict):
        raise BadPayload("missing_data", f"The body's {path} must be a JSON object.")
    return data


def _webhook_delivery_id(
    endpoint: WebhookEndpoint, payload: dict[str, Any], headers: Mapping[str, str], body: bytes
) -> str | None:
    if endpoint.idempotency_header:
        return headers.get(endpoint.idempotency_header) or None
    if endpoint.scheme == VerificationScheme.STANDARD_WEBHOOKS:
        return headers.get("webhook-id") or None
    if endpoint.scheme == VerificationScheme.GITHUB:
        return signatures.github_replay_key(body)  # the delivery id is not signed
    if endpoint.scheme == VerificationScheme.STRIPE:
        event_id = payload.get("id")
        return event_id if isinstance(event_id, str) and event_id else None
    return headers.get("idempotency-key") or None


# --- Webhook endpoints ----------------------------------------------------------------------


def webhook_secret_generate(scheme: str) -> str:
    """A new random secret in the form the scheme's senders expect."""
    if scheme == VerificationScheme.STANDARD_WEBHOOKS:
        return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    if scheme == VerificationScheme.STRIPE:
        return "whsec_" + secrets.token_hex(32)
    if scheme == VerificationScheme.GITHUB:
        return secrets.token_hex(32)
    return ""


def webhook_endpoint_create(
    *, slug: str, scheme: str, secret: str = "", **options: Any
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; returns it and its secret (generated unless given), to show once.

    ``options``: description, type_from, type_value, type_prefix, data_path,
    idempotency_header, max_body_bytes, active. Raises ValidationError naming the field.
    """
    secret = secret or webhook_secret_generate(scheme)
    endpoint = WebhookEndpoint(slug=slug, scheme=scheme, secret=secret, **options)
    endpoint.full_clean()
    endpoint.save()
    return endpoint, secret


def webhook_endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, secret: str = "", grace: timedelta | None = None
) -> str:
    """Give the endpoint a new secret; the old one still verifies for ``grace``.

    Returns the new secret (shown once). ``grace`` defaults to WEBHOOK_SECRET_ROTATION_GRACE.
    """
    if grace is None:
        grace = timedelta(seconds=settings.WEBHOOK_SECRET_ROTATION_GRACE)
    new_secret = secret or webhook_secret_generate(endpoint.scheme)
    with transaction.atomic():
        # Locked, so two rotations at once cannot both keep the same "previous" secret.
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret = locked.secret
        locked.previous_secret_expires_at = timezone.now() + grace
        locked.secret = new_secret
        locked.full_clean()
        locked.save(
            update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"]
        )
    endpoint.refresh_from_db()
    return new_secret
