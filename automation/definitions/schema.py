"""The JSON Schema of the declarative workflow format, version 1.

Draft-07, so the admin's JSON editor (which validates with Ajv 6) and the server read it the
same way. It describes the shape only; ``validation.py`` adds the checks a schema cannot make
(known actions, step references, durations, CEL, assignees).
"""

from __future__ import annotations

from typing import Any

STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MAX_QUORUM = 100  # approvals needed; more is a typo (1e9 passed "integer" before)
_DURATION = {
    "type": ["string", "number"],
    "description": 'A duration: "500ms", "30s", "10m", "2h", "1d", "1w", "1h30m" or seconds.',
}
_CEL = {"type": "string", "minLength": 1, "description": "A CEL expression."}

_RETRY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 100},
        "backoff": {
            "oneOf": [{"enum": ["exponential", "fixed"]}, {"type": "number", "minimum": 1}]
        },
        "initial": {"$ref": "#/definitions/duration"},
        "max": {"$ref": "#/definitions/duration"},
        "jitter": {"type": "number", "minimum": 0, "maximum": 1},
    },
}

# An action step's circuit breaker: true (the settings' thresholds), false (none), or some of
# the thresholds (the others from the settings).
_CIRCUIT = {
    # if/then rather than anyOf, so an error names the field inside the object.
    "if": {"type": "object"},
    "then": {
        "additionalProperties": False,
        "properties": {
            "failures": {"type": "integer", "minimum": 1, "maximum": 10000},
            "within": {"$ref": "#/definitions/duration"},
            "open_for": {"$ref": "#/definitions/duration"},
        },
    },
    "else": {"type": "boolean"},
    "description": "Stop calling after `failures` failures within `within`, for `open_for`.",
}

# An object, or one template standing for a whole object: "{{ trigger.data }}".
_OBJECT_OR_TEMPLATE = {
    "anyOf": [
        {"type": "object"},
        {"type": "string", "pattern": r"^\s*\{\{[^{}]+\}\}\s*$"},
    ]
}

_ACTION_CALL = {
    "type": "object",
    "required": ["action"],
    "additionalProperties": False,
    "properties": {
        "action": {"type": "string", "minLength": 1},
        "input": _OBJECT_OR_TEMPLATE,
    },
}

_MODIFIERS = {
    "id": {"type": "string", "pattern": STEP_ID_PATTERN, "maxLength": 100},
    "if": {"$ref": "#/definitions/cel"},
    "retry": {"$ref": "#/definitions/retry"},
    "timeout": {"$ref": "#/definitions/duration"},
    "circuit": {"$ref": "#/definitions/circuit"},
    "compensate": {"$ref": "#/definitions/action_call"},
    "description": {"type": "string"},
}


def _step(kind: str, body: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["id", kind],
        "additionalProperties": False,
        "properties": {**_MODIFIERS, kind: body, **(extra or {})},
    }


_ASSIGNEES = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "string", "pattern": "^(user|group):.+$"},
}

# What a wait for one event names; each entry of a wait for any/all of several is the same.
_WAIT_ENTRY: dict[str, Any] = {
    "event": {"type": "string", "minLength": 1},
    "source": {"$ref": "#/definitions/source"},
    "match": {
        "type": "object",
        "description": "Exact values by dotted path into the event's data.",
    },
    "condition": {"$ref": "#/definitions/cel"},
}
_WAIT_ENTRIES = {
    "type": "array",
    "minItems": 1,
    "maxItems": 20,
    "items": {
        "type": "object",
        "required": ["event"],
        "additionalProperties": False,
        "properties": _WAIT_ENTRY,
    },
}

_KINDS = {
    "action": "action_step",
    "approval": "approval_step",
    "wait_for_event": "wait_step",
    "wait_for_signal": "signal_step",
    "sleep": "sleep_step",
    "parallel": "parallel_step",
    "child": "child_step",
}

SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$id": "/api/workflows/schema/",
    "title": "Declarative workflow (format v1)",
    "type": "object",
    "required": ["name", "trigger", "steps"],
    "additionalProperties": False,
    "properties": {
        "name": {
            "type": "string",
            "pattern": r"^[a-z0-9][a-z0-9\-_]*$",
            "maxLength": 200,
            "description": "Lower-case letters, digits, '-' and '_'. The workflow's identity.",
        },
        "description": {"type": "string"},
        "version": {"const": 1, "description": "The format version (1)."},
        "input_schema": {
            "type": "object",
            "description": "JSON Schema (draft 7, type: object) the input of a run started "
            "by a person or client must match (API, run_workflow, the Start run form).",
        },
        "trigger": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "event": {
                    "type": "string",
                    "description": "Event type that starts a run: exact, or a wildcard (order.*). "
                    "Empty: started only by hand (API, admin, a child step).",
                },
                "filter": {"$ref": "#/definitions/cel"},
                "source": {"$ref": "#/definitions/source"},
                "rate_limit": {
                    "$ref": "#/definitions/limit",
                    "description": "Events beyond `limit` starts per `period` (per `key`) start "
                    "nothing; the event's page says why.",
                },
                "throttle": {
                    "$ref": "#/definitions/limit",
                    "description": "Starts beyond `limit` per `period` (per `key`) are delayed "
                    "until the period allows them, not dropped.",
                },
                "debounce": {
                    "type": "object",
                    "required": ["period"],
                    "additionalProperties": False,
                    "description": "One run with the last event, `period` after it; at most "
                    "`timeout` after the first event.",
                    "properties": {
                        "period": {"$ref": "#/definitions/duration"},
                        "timeout": {"$ref": "#/definitions/duration"},
                        "key": {"$ref": "#/definitions/cel"},
                    },
                },
                "batch": {
                    "type": "object",
                    "required": ["max_size", "timeout"],
                    "additionalProperties": False,
                    "description": "One run per batch of up to `max_size` events (per `key`), "
                    "started when full or `timeout` after the first; `trigger.events` is the "
                    "list, `trigger` the first.",
                    "properties": {
                        "max_size": {"type": "integer", "minimum": 1, "maximum": 1000},
                        "timeout": {"$ref": "#/definitions/duration"},
                        "key": {"$ref": "#/definitions/cel"},
                    },
                },
                "priority": {
                    "$ref": "#/definitions/cel",
                    "description": "A whole number (CEL over trigger): higher runs first when "
                    "workers are busy.",
                },
            },
        },
        "steps": {"$ref": "#/definitions/steps"},
        "on_failure": {"$ref": "#/definitions/action_call"},
        "search": {
            "type": "object",
            "description": "Search attributes set when a run starts (templates over trigger, "
            "input and run): GET /api/runs/?search.<key>= filters on them.",
            "maxProperties": 20,
            "propertyNames": {"pattern": r"^[a-z][a-z0-9_]{0,39}$"},
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "output": {
            "description": "The run's output (templates allowed). Default: each step's output."
        },
    },
    "definitions": {
        "duration": _DURATION,
        "cel": _CEL,
        "source": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "description": "Only events whose source matches: exact, or a wildcard "
            "(webhook:stripe, webhook:*). Default: any source, API clients' included.",
        },
        "retry": _RETRY,
        "circuit": _CIRCUIT,
        "limit": {
            "type": "object",
            "required": ["limit", "period"],
            "additionalProperties": False,
            "properties": {
                "limit": {"type": "integer", "minimum": 1, "maximum": 10_000},
                "period": {"$ref": "#/definitions/duration"},
                "key": {
                    "$ref": "#/definitions/cel",
                    "description": "CEL over trigger: each value has its own limit.",
                },
            },
        },
        "action_call": _ACTION_CALL,
        "steps": {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/step"}},
        # Exactly one kind key; then the rules of that kind (if/then rather than a oneOf of
        # the kinds, so an error is reported against the kind the step declares).
        "step": {
            "type": "object",
            "oneOf": [{"required": [kind]} for kind in _KINDS],
            "allOf": [
                {"if": {"required": [kind]}, "then": {"$ref": f"#/definitions/{ref}"}}
                for kind, ref in _KINDS.items()
            ],
        },
        "action_step": _step(
            "action", {"type": "string", "minLength": 1}, {"input": _OBJECT_OR_TEMPLATE}
        ),
        "approval_step": _step(
            "approval",
            {
                "type": "object",
                "required": ["title", "assignees"],
                "additionalProperties": False,
                "properties": {
                    "title": {"type": "string", "minLength": 1},
                    "description": {"type": "string"},
                    "assignees": _ASSIGNEES,
                    "context": _OBJECT_OR_TEMPLATE,
                    "timeout": {"$ref": "#/definitions/duration"},
                    "on_timeout": {"enum": ["reject", "approve", "escalate"]},
                    "on_reject": {"enum": ["continue", "fail"]},
                    "quorum": {"type": "integer", "minimum": 1, "maximum": MAX_QUORUM},
                    "four_eyes": {"type": "boolean"},
                    "escalate_to": _ASSIGNEES,
                    "escalation_timeout": {"$ref": "#/definitions/duration"},
                    "fields": {
                        "type": "array",
                        "items": {"type": "object"},
                        "description": "Form fields the approver fills in (docs/approvals.md).",
                    },
                    "remind_before": {
                        "description": 'When to remind before the timeout: "auto" (default), '
                        "a duration, or 0 for never.",
                        "oneOf": [{"const": "auto"}, {"$ref": "#/definitions/duration"}],
                    },
                },
            },
        ),
        "wait_step": _step(
            "wait_for_event",
            {
                "type": "object",
                "additionalProperties": False,
                # One event (event, match ...), or any/all of several under one deadline:
                # exactly one of event, any and all (checked with a clearer message there).
                "description": "Wait for one event (event, match, condition, source), or for "
                "any/all of several (any: [{event, match, ...}] or all: [...]).",
                "properties": {
                    **_WAIT_ENTRY,
                    "any": _WAIT_ENTRIES,
                    "all": _WAIT_ENTRIES,
                    "timeout": {"$ref": "#/definitions/duration"},
                    "lookback": {"$ref": "#/definitions/duration"},
                    "on_timeout": {"enum": ["continue", "fail"]},
                },
            },
        ),
        "signal_step": _step(
            "wait_for_signal",
            {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {
                        "type": "string",
                        "pattern": r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,199}$",
                        "description": "The signal's name (POST /api/runs/<id>/signals/).",
                    },
                    "timeout": {"$ref": "#/definitions/duration"},
                    "on_timeout": {"enum": ["continue", "fail"]},
                },
            },
        ),
        "sleep_step": _step("sleep", {"$ref": "#/definitions/duration"}),
        "child_step": _step(
            "child",
            {
                "type": "object",
                "required": ["workflow"],
                "additionalProperties": False,
                "properties": {
                    "workflow": {"type": "string", "minLength": 1},
                    "input": _OBJECT_OR_TEMPLATE,
                    "compensate": {
                        "type": "boolean",
                        "description": "Undo the child's completed steps when this run fails "
                        "or is cancelled later (default true).",
                    },
                },
            },
        ),
        "parallel_step": _step(
            "parallel",
            {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"$ref": "#/definitions/action_step"},
                },
            },
        ),
    },
}


def definition_schema() -> dict[str, Any]:
    """The published JSON Schema (GET /api/workflows/schema/, the admin editor)."""
    return SCHEMA
