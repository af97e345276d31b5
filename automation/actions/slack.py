"""``slack.post``: post a message to a Slack incoming webhook."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from automation import NonRetryableError, action
from automation.actions.http import circuit_host, http_request


def _webhook_host(input: Any) -> str | None:
    """The circuit a post belongs to: the webhook's host, as for ``http.request``."""
    return circuit_host({"url": input.get("webhook_url") or settings.AUTOMATION_SLACK_WEBHOOK_URL})


@action(
    "slack.post",
    circuit_key=_webhook_host,
    stores_input=("text", "blocks"),  # posted to a channel (the webhook URL may be a secret)
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "anyOf": [{"required": ["text"]}, {"required": ["blocks"]}],
        "properties": {
            "webhook_url": {"type": "string", "minLength": 1},
            "text": {"type": "string"},
            "blocks": {"type": "array"},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
        },
    },
)
def slack_post(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Post ``text`` (or ``blocks``) to ``webhook_url`` (default: SLACK_WEBHOOK_URL)."""
    url = input.get("webhook_url") or settings.AUTOMATION_SLACK_WEBHOOK_URL
    if not url:
        raise NonRetryableError("slack.post needs webhook_url (or the SLACK_WEBHOOK_URL setting)")
    payload = {key: input[key] for key in ("text", "blocks") if key in input}
    response = http_request(
        {"method": "POST", "url": url, "json": payload, "timeout": input.get("timeout", 10)},
        ctx,
    )
    return {"status": response["status"], "body": response["body"]}
