"""``http.request``: call an HTTP API. Output ``{"status", "headers", "body"}`` (body parsed as
JSON when it is JSON, else text), so later steps read ``{{ steps.x.output.body.userId }}``.

5xx, 429, timeouts and connection errors are retryable; other statuses outside
``expected_status`` are not, unless listed in ``retry_on``. Destinations go through the SSRF
guard (``safehttp``)."""

from __future__ import annotations

import json as jsonlib
from typing import Any

import requests

from automation import NonRetryableError, RetryAfter, action
from automation.actions import safehttp

INPUT_SCHEMA = {
    "type": "object",
    "required": ["url"],
    "additionalProperties": False,
    "properties": {
        "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]},
        "url": {"type": "string", "minLength": 1},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "json": {},
        "body": {"type": "string"},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 300},
        "expected_status": {
            "type": "array",
            "items": {"type": "integer", "minimum": 100, "maximum": 599},
        },
        "retry_on": {"type": "array", "items": {"type": "integer", "minimum": 100, "maximum": 599}},
    },
    "not": {"required": ["json", "body"]},
}


class HTTPStatusError(Exception):
    """A status outside expected_status that a retry may fix (5xx, or listed in retry_on)."""


@action("http.request", input_schema=INPUT_SCHEMA)
def http_request(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Send an HTTP request; the response's status, headers and body."""
    headers = dict(input.get("headers", {}))
    if ctx is not None and getattr(ctx, "current_step_id", ""):
        headers.setdefault("Idempotency-Key", ctx.idempotency_key(ctx.current_step_id))
    try:
        response, raw = safehttp.request(
            input.get("method", "GET"),
            input["url"],
            headers=headers,
            data=input.get("body"),
            json=input.get("json"),
            timeout=float(input.get("timeout", 10)),
        )
    except (safehttp.BlockedDestination, safehttp.ResponseTooLarge) as exc:
        raise NonRetryableError(str(exc)) from None
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema) as exc:
        raise NonRetryableError(f"invalid URL: {exc}") from None
    result = {
        "status": response.status_code,
        "headers": dict(response.headers),
        "body": _parse(raw, response.headers.get("content-type", "")),
    }
    _check_status(input, response, result)
    return result


def _parse(raw: bytes, content_type: str) -> Any:
    text = raw.decode("utf-8", errors="replace")
    if "json" in content_type:
        try:
            return jsonlib.loads(text)
        except ValueError:
            return text
    return text


def _check_status(input: dict[str, Any], response: requests.Response, result: Any) -> None:
    status = response.status_code
    expected = input.get("expected_status")
    if (status in expected) if expected else 200 <= status < 300:
        return
    message = (
        f"{input.get('method', 'GET')} {input['url']} answered {status}: "
        + str(result["body"])[:500]
    )
    if status == 429 and "retry-after" in response.headers:
        try:
            raise RetryAfter(float(response.headers["retry-after"]), message)
        except ValueError:
            pass
    if status >= 500 or status == 429 or status in input.get("retry_on", []):
        raise HTTPStatusError(message)
    raise NonRetryableError(message)
