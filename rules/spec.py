"""The rule format: its shape (a JSON Schema per kind), what a schema cannot say (durations,
CEL filters that compile, emit templates that only read what a rule provides, a rule that
would feed itself), and the parsed form the evaluator uses. Every error names its path, as the
workflow format's do (``match[1].event``), so the admin, the API and ``load_workflows`` can
point at it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from jsonschema import Draft7Validator

from automation.definitions.templates import TemplateError, paths_in
from automation.definitions.validation import DefinitionError, InvalidDefinition, format_path
from automation.engine import matching
from automation.engine.durations import parse_duration

KINDS = ("sequence", "absence", "threshold", "aggregate", "anomaly")
FUNCTIONS = ("sum", "avg", "min", "max", "count")
#: What an emit template may read.
TEMPLATE_ROOTS = (
    "events",
    "key",
    "rule",
    "window",
    "count",
    "value",
    "observed",
    "expected",
    "score",
)
MAX_WINDOW = timedelta(days=31)
MIN_WINDOW = timedelta(seconds=1)

_DURATION = {"type": ["string", "number"], "description": "30s, 5m, 1h, 1d or seconds."}
_PATH = {
    "type": "string",
    "pattern": r"^[A-Za-z_][\w-]*(\.[\w-]+)*$",
    "description": "A dotted path into the event, e.g. data.order_id.",
}
_TYPE = {"type": "string", "minLength": 1, "maxLength": 200}
_STEP = {
    "type": "object",
    "required": ["event"],
    "additionalProperties": False,
    "properties": {"event": _TYPE, "filter": {"type": "string"}},
}
_COMMON = {
    "name": {"type": "string", "pattern": r"^[-a-zA-Z0-9_]{1,100}$"},
    "kind": {"enum": list(KINDS)},
    "description": {"type": "string"},
    "correlate": _PATH,
    "emit": {
        "type": "object",
        "required": ["type"],
        "additionalProperties": False,
        "properties": {"type": _TYPE, "data": {"type": "object"}, "subject": {"type": "string"}},
    },
}
_SINGLE = {"event": _TYPE, "filter": {"type": "string"}}
_KIND_PROPERTIES: dict[str, dict[str, Any]] = {
    "sequence": {
        "match": {"type": "array", "items": _STEP, "minItems": 2, "maxItems": 10},
        "within": _DURATION,
    },
    "absence": {
        "match": {"type": "array", "items": _STEP, "minItems": 2, "maxItems": 2},
        "within": _DURATION,
    },
    "threshold": {
        **_SINGLE,
        "count": {"type": "integer", "minimum": 1, "maximum": 10000},
        "within": _DURATION,
    },
    "aggregate": {
        **_SINGLE,
        "value": _PATH,
        "function": {"enum": list(FUNCTIONS)},
        "every": _DURATION,
    },
    "anomaly": {
        **_SINGLE,
        "every": _DURATION,
        "sensitivity": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
        "warmup": {"type": "integer", "minimum": 2, "maximum": 1000},
        "history": {"type": "integer", "minimum": 2, "maximum": 1000},
    },
}
_REQUIRED = {
    "sequence": ["match", "within"],
    "absence": ["match", "within"],
    "threshold": ["event", "count", "within"],
    "aggregate": ["event", "function", "every"],
    "anomaly": ["event", "every"],
}


def kind_schema(kind: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["name", "kind", "emit", *_REQUIRED[kind]],
        "additionalProperties": False,
        "properties": {**_COMMON, **_KIND_PROPERTIES[kind]},
    }


def rule_schema() -> dict[str, Any]:
    """The JSON Schema of the format (for the admin's editor)."""
    return {
        "type": "object",
        "required": ["name", "kind", "emit"],
        "properties": _COMMON,
        "allOf": [
            {"if": {"properties": {"kind": {"const": kind}}}, "then": kind_schema(kind)}
            for kind in KINDS
        ],
    }


_BASE = Draft7Validator(
    {"type": "object", "required": ["name", "kind"], "properties": _COMMON},
)
_VALIDATORS = {kind: Draft7Validator(kind_schema(kind)) for kind in KINDS}


@dataclass(frozen=True)
class Step:
    event: str
    filter: str = ""


@dataclass(frozen=True)
class RuleSpec:
    """A rule definition, parsed."""

    name: str
    kind: str
    steps: tuple[Step, ...]  # sequence, absence: in order; the other kinds: their one event
    emit: dict[str, Any]
    correlate: str = ""
    within: timedelta | None = None
    count: int = 0
    value: str = ""
    function: str = ""
    every: timedelta | None = None
    sensitivity: float = 3.0
    warmup: int = 5
    history: int = 20

    def watches(self, event_type: str) -> bool:
        return any(matching.type_matches(step.event, event_type) for step in self.steps)


def validate(definition: Any) -> list[DefinitionError]:
    """Every problem of ``definition`` (empty when it can be saved)."""
    errors = _errors(_BASE, definition)
    if errors:
        return errors
    errors = _errors(_VALIDATORS[definition["kind"]], definition)
    if errors:
        return errors
    return _meaning_errors(definition)


def check(definition: Any) -> RuleSpec:
    errors = validate(definition)
    if errors:
        raise InvalidDefinition(errors)
    return parse(definition)


def is_rule(definition: Any) -> bool:
    """Whether a definition file holds a rule (a ``kind`` key, no ``steps``)."""
    return isinstance(definition, dict) and "kind" in definition and "steps" not in definition


def parse(definition: dict[str, Any]) -> RuleSpec:
    """The parsed form of a valid definition."""
    kind = definition["kind"]
    if kind in ("sequence", "absence"):
        steps = tuple(Step(s["event"], s.get("filter", "")) for s in definition["match"])
    else:
        steps = (Step(definition["event"], definition.get("filter", "")),)
    within, every = definition.get("within"), definition.get("every")
    return RuleSpec(
        name=definition["name"],
        kind=kind,
        steps=steps,
        emit=definition["emit"],
        correlate=definition.get("correlate", ""),
        within=parse_duration(within) if within is not None else None,
        count=definition.get("count", 0),
        value=definition.get("value", ""),
        function=definition.get("function", ""),
        every=parse_duration(every) if every is not None else None,
        sensitivity=float(definition.get("sensitivity", 3.0)),
        warmup=definition.get("warmup", 5),
        history=definition.get("history", 20),
    )


def _errors(validator: Draft7Validator, definition: Any) -> list[DefinitionError]:
    return [
        DefinitionError(format_path(list(error.absolute_path)), error.message)
        for error in sorted(validator.iter_errors(definition), key=lambda e: list(e.absolute_path))
    ]


def _meaning_errors(definition: dict[str, Any]) -> list[DefinitionError]:
    found: list[DefinitionError] = []
    for field in ("within", "every"):
        if field in definition:
            found.extend(_duration_errors(field, definition[field]))
    steps = definition.get("match") or [definition]
    for index, step in enumerate(steps):
        where = f"match[{index}]" if "match" in definition else ""
        if step.get("filter"):
            try:
                matching.compile_expression(step["filter"])
            except matching.ExpressionError as exc:
                found.append(DefinitionError(f"{where}.filter" if where else "filter", str(exc)))
    needs_value = definition["kind"] == "aggregate" and definition["function"] != "count"
    if needs_value and not definition.get("value"):
        found.append(
            DefinitionError(
                "value",
                f"function {definition['function']} needs value: the path of the number to "
                "aggregate, e.g. data.amount",
            )
        )
    found.extend(_emit_errors(definition))
    return found


def _duration_errors(field: str, value: Any) -> list[DefinitionError]:
    try:
        duration = parse_duration(value)
    except (ValueError, TypeError) as exc:
        return [DefinitionError(field, str(exc))]
    if not MIN_WINDOW <= duration <= MAX_WINDOW:
        return [DefinitionError(field, f"{value!r} is outside 1s to 31d")]
    return []


def _emit_errors(definition: dict[str, Any]) -> list[DefinitionError]:
    found: list[DefinitionError] = []
    emit = definition["emit"]
    if "{{" in emit["type"]:
        found.append(DefinitionError("emit.type", "the type is a plain name, not a template"))
    elif any(
        matching.type_matches(step["event"], emit["type"])
        for step in definition.get("match") or [definition]
    ):
        found.append(
            DefinitionError(
                "emit.type",
                f"{emit['type']!r} is an event this rule watches: it would feed itself; emit "
                "another type",
            )
        )
    try:
        for where, parts in paths_in({k: v for k, v in emit.items() if k != "type"}, "emit"):
            if parts[0] not in TEMPLATE_ROOTS:
                found.append(
                    DefinitionError(
                        where,
                        f"{{{{ {parts[0]} }}}} is not something a rule provides; templates "
                        f"read {', '.join(TEMPLATE_ROOTS)}",
                    )
                )
    except TemplateError as exc:
        found.append(DefinitionError(getattr(exc, "location", "emit"), str(exc)))
    return found
