"""``ai.complete``: ask an OpenAI-compatible chat-completions endpoint (AI_BASE_URL, AI_API_KEY,
AI_MODEL). With ``schema``, the model is asked for JSON matching it (``response_format``
json_schema) and the answer is checked against it: output ``{"text", "json", "model",
"usage"}``."""

from __future__ import annotations

import json
from typing import Any

import requests
from django.conf import settings
from jsonschema import Draft7Validator

from automation import NonRetryableError, RetryAfter, action
from automation.actions import safehttp


class AIUnavailable(Exception):
    """The endpoint failed in a way a retry may fix (5xx, timeout, connection)."""


@action(
    "ai.complete",
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "oneOf": [{"required": ["prompt"]}, {"required": ["messages"]}],
        "properties": {
            "prompt": {"type": "string", "minLength": 1},
            "system": {"type": "string"},
            "messages": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["role", "content"],
                    "properties": {
                        "role": {"enum": ["system", "user", "assistant"]},
                        "content": {"type": "string"},
                    },
                },
            },
            "schema": {"type": "object"},
            "model": {"type": "string"},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "max_tokens": {"type": "integer", "minimum": 1},
        },
    },
)
def complete(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Complete a prompt (or a conversation); with ``schema``, structured JSON output."""
    if not settings.AUTOMATION_AI_BASE_URL:
        raise NonRetryableError("ai.complete needs AI_BASE_URL (an OpenAI-compatible API)")
    answer = _post(_payload(input))
    try:
        text = answer["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        raise AIUnavailable(
            f"unexpected answer from the AI endpoint: {str(answer)[:300]}"
        ) from None
    result = {
        "text": text,
        "json": None,
        "model": answer.get("model"),
        "usage": answer.get("usage"),
    }
    if "schema" in input:
        result["json"] = _structured(text, input["schema"])
    return result


def _payload(input: dict[str, Any]) -> dict[str, Any]:
    messages = list(input.get("messages", []))
    if "prompt" in input:
        if input.get("system"):
            messages.append({"role": "system", "content": input["system"]})
        messages.append({"role": "user", "content": input["prompt"]})
    payload: dict[str, Any] = {
        "model": input.get("model") or settings.AUTOMATION_AI_MODEL,
        "messages": messages,
    }
    for key in ("temperature", "max_tokens"):
        if key in input:
            payload[key] = input[key]
    if "schema" in input:
        payload["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": input["schema"], "strict": True},
        }
    return payload


def _post(payload: dict[str, Any]) -> dict[str, Any]:
    url = settings.AUTOMATION_AI_BASE_URL.rstrip("/") + "/chat/completions"
    headers = {"Content-Type": "application/json"}
    if settings.AUTOMATION_AI_API_KEY:
        headers["Authorization"] = f"Bearer {settings.AUTOMATION_AI_API_KEY}"
    try:
        response, raw = safehttp.request(
            "POST", url, headers=headers, json=payload,
            timeout=settings.AUTOMATION_AI_TIMEOUT, trusted=True,
        )  # fmt: skip
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise AIUnavailable(f"AI endpoint unreachable: {exc}") from None
    if response.status_code == 429:
        raise RetryAfter(float(response.headers.get("retry-after", 5)), "AI endpoint rate limit")
    if response.status_code >= 500:
        raise AIUnavailable(f"AI endpoint answered {response.status_code}")
    if response.status_code >= 400:
        raise NonRetryableError(f"AI endpoint answered {response.status_code}: {raw[:300]!r}")
    try:
        return json.loads(raw)
    except ValueError:
        raise AIUnavailable("the AI endpoint's answer is not JSON") from None


def _structured(text: str, schema: dict[str, Any]) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        raise AIUnavailable(f"the model's answer is not JSON: {text[:200]!r}") from None
    errors = sorted(Draft7Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        where = "/".join(map(str, errors[0].absolute_path)) or "(root)"
        raise AIUnavailable(f"the model's JSON does not match the schema at {where}: "
                            f"{errors[0].message}")  # fmt: skip
    return value
