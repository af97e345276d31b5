"""``http.request``: call an HTTP API. Output ``{"status", "headers", "body"}`` (body parsed as
JSON when it is JSON, else text), so later steps read ``{{ steps.x.output.body.userId }}``.

5xx, 429, timeouts and connection errors are retryable; other statuses outside
``expected_status`` are not, unless listed in ``retry_on``. Destinations go through the SSRF
guard (``safehttp``)."""

from __future__ import annotations

import json as jsonlib
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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


REDACTED = "[redacted]"
_ONLY_PLACEHOLDERS_RE = re.compile(r"([A-Za-z]+ )?(\[secret:[A-Z_][A-Z0-9_]*\])+")


def redact_input(input: Any) -> Any:
    """The input as the journal records it: credential header values and the URL's user and
    password hidden (a ``[secret:NAME]`` placeholder stays: it hides the value already)."""
    if not isinstance(input, dict):
        return input
    shown = dict(input)
    if isinstance(shown.get("url"), str):
        shown["url"] = without_userinfo(shown["url"])
    if isinstance(shown.get("headers"), dict):
        shown["headers"] = {
            key: REDACTED
            if safehttp.is_credential_header(str(key))
            and not _ONLY_PLACEHOLDERS_RE.fullmatch(str(value))
            else value
            for key, value in shown["headers"].items()
        }
    return shown


def without_userinfo(url: str) -> str:
    """``https://user:pass@host/x`` → ``https://[redacted]@host/x``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=f"{REDACTED}@{parts.netloc.rsplit('@', 1)[1]}"))


def _userinfo(url: str) -> str:
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return ""
    return netloc.rsplit("@", 1)[0] if "@" in netloc else ""


class UserinfoError(requests.RequestException):
    """A failure whose message had the URL's user and password (retryable, like a network
    error)."""


class HTTPStatusError(Exception):
    """A status outside expected_status that a retry may fix (5xx, or listed in retry_on)."""


def circuit_host(input: Any) -> str | None:
    """The circuit a request belongs to: its host (one failing API does not stop the others)."""
    return urlsplit(input["url"]).hostname


@action("http.request", input_schema=INPUT_SCHEMA, redact=redact_input, circuit_key=circuit_host)
def http_request(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Send an HTTP request; the response's status, headers and body."""
    userinfo = _userinfo(input["url"])
    try:
        return _send(input, ctx)
    except Exception as exc:
        if not userinfo or userinfo not in "".join(_messages(exc)):
            raise
        message = str(exc).replace(userinfo, REDACTED)
        if isinstance(exc, RetryAfter):
            raise RetryAfter(exc.seconds, message) from None
        if isinstance(exc, NonRetryableError):
            raise NonRetryableError(message) from None
        raise UserinfoError(message) from None


def _messages(exc: BaseException | None) -> list[str]:
    """The messages of ``exc`` and the errors chained to it."""
    found = []
    while exc is not None:
        found.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return found


def _send(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
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
        f"{input.get('method', 'GET')} {without_userinfo(input['url'])} answered {status}: "
        + str(result["body"])[:500]
    )
    seconds = safehttp.retry_after(response.headers.get("retry-after"))
    if status == 429 and seconds is not None:
        raise RetryAfter(seconds, message)
    if status >= 500 or status == 429 or status in input.get("retry_on", []):
        raise HTTPStatusError(message)
    raise NonRetryableError(message)
