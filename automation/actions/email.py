"""``email.send``: send an email through Django's configured email backend."""

from __future__ import annotations

from typing import Any

from django.core.mail import EmailMultiAlternatives

from automation import action

_ADDRESSES = {
    "oneOf": [
        {"type": "string", "minLength": 3},
        {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 3}},
    ]
}


@action(
    "email.send",
    stores_input=("subject", "body", "html"),  # read by the recipients, kept in their mail
    input_schema={
        "type": "object",
        "required": ["to", "subject"],
        "additionalProperties": False,
        "properties": {
            "to": _ADDRESSES,
            "cc": _ADDRESSES,
            "bcc": _ADDRESSES,
            "subject": {"type": "string"},
            "body": {"type": "string"},
            "html": {"type": "string"},
            "from": {"type": "string"},
            "reply_to": _ADDRESSES,
        },
    },
)
def send_email(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Send a plain-text email (with an optional HTML alternative)."""
    message = EmailMultiAlternatives(
        subject=input["subject"],
        body=input.get("body", ""),
        from_email=input.get("from") or None,
        to=_list(input["to"]),
        cc=_list(input.get("cc")),
        bcc=_list(input.get("bcc")),
        reply_to=_list(input.get("reply_to")),
    )
    if input.get("html"):
        message.attach_alternative(input["html"], "text/html")
    sent = message.send(fail_silently=False)
    return {"sent": sent, "to": message.to}


def _list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
