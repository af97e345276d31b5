"""jsonschema's complaints about a definition's shape, said in plain words.

jsonschema speaks in its own terms: "'My Flow' does not match '^[a-z0-9][a-z0-9\\-_]*$'",
"Additional properties are not allowed", "is not valid under any of the given schemas". A person
editing a workflow in the admin needs what to write instead. Every validator the definition
schema uses has a sentence here; anything else falls back to jsonschema's own message.
"""

from __future__ import annotations

from typing import Any

from jsonschema.exceptions import ValidationError

from automation.definitions.schema import STEP_ID_PATTERN

#: What each pattern of the schema asks for, with an example.
PATTERNS = {
    r"^[a-z0-9][a-z0-9\-_]*$": (
        "a workflow name is lowercase letters, digits, - and _, starting with a letter or a "
        "digit, e.g. expense-approval"
    ),
    STEP_ID_PATTERN: (
        "a step id is letters, digits and _, not starting with a digit, e.g. check_amount"
    ),
    "^(user|group):.+$": "an assignee is user:<username> or group:<group name>",
    r"^\s*\{\{[^{}]+\}\}\s*$": "a template here stands for a whole object: {{ trigger.data }}",
}

TYPES = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object ({...})",
    "array": "a list ([...])",
    "null": "null",
}


def describe(error: ValidationError) -> str:
    """The message for one jsonschema error: what is wrong and what to write instead."""
    explain = _BY_VALIDATOR.get(str(error.validator))
    return explain(error) if explain else error.message


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _pattern(error: ValidationError) -> str:
    wanted = PATTERNS.get(str(error.validator_value), "")
    if not wanted:
        return f"{_shown(error.instance)} is not in the expected form"
    return f"{_shown(error.instance)} is not allowed: {wanted}"


def _additional(error: ValidationError) -> str:
    allowed = sorted((error.schema.get("properties") or {}).keys())
    unknown = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
    keys = ", ".join(repr(key) for key in unknown) or "a key"
    message = f"unknown key {keys}" if len(unknown) <= 1 else f"unknown keys {keys}"
    return f"{message}; the keys here are {', '.join(allowed)}" if allowed else message


def _required(error: ValidationError) -> str:
    missing = [key for key in error.validator_value if key not in (error.instance or {})]
    return f"{', '.join(repr(k) for k in missing) or 'a key'} is missing (it is required)"


def _type(error: ValidationError) -> str:
    wanted = error.validator_value
    names = [TYPES.get(t, t) for t in (wanted if isinstance(wanted, list) else [wanted])]
    return f"{_shown(error.instance)} should be {' or '.join(names)}"


def _enum(error: ValidationError) -> str:
    choices = ", ".join(str(choice) for choice in error.validator_value)
    return f"{_shown(error.instance)} is not one of the choices: {choices}"


def _alternatives(error: ValidationError) -> str:
    forms = [_form(schema) for schema in error.validator_value]
    return f"{_shown(error.instance)} should be {' or '.join(f for f in forms if f)}"


def _form(schema: dict[str, Any]) -> str:
    """A short description of one alternative of a oneOf/anyOf."""
    if "enum" in schema:
        return "one of " + ", ".join(str(choice) for choice in schema["enum"])
    if "pattern" in schema:
        return PATTERNS.get(schema["pattern"], "text in the expected form")
    kind = TYPES.get(schema.get("type", ""), "")
    if "minimum" in schema:
        return f"{kind} of at least {schema['minimum']}"
    return kind


_BY_VALIDATOR = {
    "pattern": _pattern,
    "additionalProperties": _additional,
    "required": _required,
    "type": _type,
    "enum": _enum,
    "anyOf": _alternatives,
    "oneOf": _alternatives,
    "minLength": lambda e: (
        "must not be empty"
        if e.validator_value == 1
        else f"must be at least {e.validator_value} characters"
    ),
    "maxLength": lambda e: f"is longer than {e.validator_value} characters",
    "minItems": lambda e: (
        "needs at least one item" if e.validator_value == 1 else f"needs {e.validator_value} items"
    ),
    "maxItems": lambda e: f"has more than {e.validator_value} items",
    "minimum": lambda e: f"{_shown(e.instance)} is below the minimum, {e.validator_value}",
    "maximum": lambda e: f"{_shown(e.instance)} is above the maximum, {e.validator_value}",
}
