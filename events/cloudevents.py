"""Read CloudEvents 1.0 from HTTP: structured mode (application/cloudevents+json) and binary
mode (``ce-*`` headers, the body is the data). The result is the keyword arguments of
``event_record``: the CloudEvent's source and id become the event's source and idempotency
key, so a CloudEvent sent twice is stored once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from django.utils.dateparse import parse_datetime

from events.payloads import BadPayload, check_depth, parse_json_object

STRUCTURED_TYPE = "application/cloudevents+json"
REQUIRED = ("specversion", "id", "source", "type")
# Extension attributes (lower-case letters and digits only, per the spec) we map to fields.
EXTENSIONS = {"correlationid": "correlation_id", "causationid": "causation_id"}


def is_binary(headers: Mapping[str, str]) -> bool:
    return "ce-specversion" in headers


def from_structured(body: bytes) -> dict[str, Any]:
    attributes = parse_json_object(body, what="CloudEvent")
    if "data_base64" in attributes:
        raise BadPayload(
            "unsupported_data", "data_base64 is not supported; send JSON object data in `data`."
        )
    return _record_kwargs(attributes, attributes.get("data", {}), mode="structured")


def from_binary(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    # Header values are percent-encoded by the HTTP binding (non-ASCII, '%', '"').
    attributes = {
        name.lower()[3:]: unquote(value)
        for name, value in headers.items()
        if name.lower().startswith("ce-")
    }
    data = parse_json_object(body, what="CloudEvent data") if body.strip() else {}
    return _record_kwargs(attributes, data, mode="binary")


def _record_kwargs(attributes: dict[str, Any], data: Any, *, mode: str) -> dict[str, Any]:
    for name in REQUIRED:
        value = attributes.get(name)
        if not isinstance(value, str) or not value:
            where = f"the ce-{name} header" if mode == "binary" else f"the `{name}` attribute"
            raise BadPayload(
                "missing_attribute",
                f"CloudEvents attribute '{name}' is missing or empty ({where} is required).",
            )
    if attributes["specversion"] != "1.0":
        raise BadPayload(
            "unsupported_specversion",
            f"CloudEvents specversion {attributes['specversion']!r} is not supported; use 1.0.",
        )
    if not isinstance(data, dict):
        raise BadPayload("not_an_object", "CloudEvent data must be a JSON object.")
    check_depth(data, what="CloudEvent data")
    kwargs: dict[str, Any] = {
        "type": attributes["type"],
        "data": data,
        "source": attributes["source"],
        "idempotency_key": attributes["id"],
        "subject": _text(attributes, "subject"),
        "occurred_at": _time(attributes.get("time")),
    }
    for attribute, field in EXTENSIONS.items():
        kwargs[field] = _text(attributes, attribute)
    return kwargs


def _text(attributes: dict[str, Any], name: str) -> str:
    value = attributes.get(name, "")
    if not isinstance(value, str):
        raise BadPayload("invalid_attribute", f"CloudEvents attribute '{name}' must be a string.")
    return value


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well-formed but no real instant: month 13, 30 February, +99:00
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise BadPayload(
            "invalid_attribute",
            "CloudEvents attribute 'time' must be an RFC 3339 timestamp with a time zone.",
        )
    return parsed
