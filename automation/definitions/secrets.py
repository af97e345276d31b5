"""Secrets in definitions: ``{{ secrets.STRIPE_KEY }}`` is the environment variable
``AUTOMATION_SECRET_STRIPE_KEY``, read when the action is called, never before.

Everything that is kept or shown (the journal, error messages, the dry run, the run page, the
API) gets the placeholder ``[secret:STRIPE_KEY]`` instead of the value. Secrets may be used in
an action's input only (never in conditions, approvals, waits or the output), so a value only
ever reaches the action that needs it.
"""

from __future__ import annotations

import os
import re
import traceback
from typing import Any

from automation.engine.errors import NonRetryableError, RetryAfter

ROOT = "secrets"
ENV_PREFIX = "AUTOMATION_SECRET_"
NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]*")


class MissingSecret(NonRetryableError):
    """The environment has no variable for a secret the definition uses."""


def placeholder(name: str) -> str:
    return f"[secret:{name}]"


def name_error(parts: list[str | int]) -> str | None:
    """Why ``parts`` (starting at ``secrets``) is not a secret reference, or None."""
    if len(parts) != 2 or not isinstance(parts[1], str) or not NAME_RE.fullmatch(parts[1]):
        return (
            "a secret is {{ secrets.NAME }} with NAME in upper-case letters, digits and _ "
            f"(read from the environment variable {ENV_PREFIX}NAME)"
        )
    return None


def value(name: str) -> str:
    """The secret's value from the environment; MissingSecret naming it (never a value)."""
    found = os.environ.get(ENV_PREFIX + name)
    if found is None:
        raise MissingSecret(
            f"secret {name!r} is not set: define the environment variable {ENV_PREFIX}{name} "
            "for the web and worker processes"
        )
    return found


def redact_text(text: str, used: dict[str, str]) -> str:
    """``text`` with every value of ``used`` ({name: value}) replaced by its placeholder: in
    any case (a URL's host comes back lower-cased in errors) and percent-encoded (as a URL
    carries it)."""
    for name, secret in sorted(used.items(), key=lambda item: -len(item[1])):
        if secret:
            text = _pattern(secret).sub(lambda _match, name=name: placeholder(name), text)
    return text


def _pattern(secret: str) -> re.Pattern[str]:
    """Each character as itself (in any case) or percent-encoded, as a URL may carry it
    wholly, partly or not at all encoded (``+`` for a space in a query)."""
    parts = []
    for char in secret:
        encoded = "".join(f"%{byte:02X}" for byte in char.encode())
        forms = [re.escape(char), re.escape(encoded)] + (["\\+"] if char == " " else [])
        parts.append(f"(?:{'|'.join(forms)})")
    return re.compile("".join(parts), re.IGNORECASE)


def mentions(text: str, used: dict[str, str]) -> bool:
    """Whether ``text`` shows a value of ``used`` in any of the forms ``redact_text`` hides."""
    return any(secret and _pattern(secret).search(text) for secret in used.values())


def scrubbed(exc: Exception, used: dict[str, str]) -> Exception:
    """``exc`` itself when neither its message nor its traceback (chained errors included)
    shows a value of ``used``; otherwise an error of the same retryability with the values
    replaced and nothing chained."""
    if not mentions("".join(traceback.format_exception(exc)), used):
        return exc
    message = redact_text(f"{type(exc).__name__}: {exc}", used)
    if isinstance(exc, RetryAfter):
        return RetryAfter(exc.seconds, message)
    if isinstance(exc, NonRetryableError):
        return NonRetryableError(message)
    return SecretActionError(message)


class SecretActionError(Exception):
    """A retryable failure of an action called with secrets, its message redacted."""


def redact_value(value: Any, used: dict[str, str]) -> Any:
    """A JSON value with the values of ``used`` replaced in every string (an API that echoes
    the credential back must not put it in the journal)."""
    if not used:
        return value
    if isinstance(value, str):
        return redact_text(value, used)
    if isinstance(value, dict):
        return {key: redact_value(item, used) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_value(item, used) for item in value]
    return value
