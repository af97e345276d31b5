"""Is a definition one that can run? The JSON Schema for its shape, then what a schema cannot
say: known actions and inputs they accept, unique step ids, references only to steps that ran
before, durations, CEL that compiles, assignees that exist. Every error names its path
(``steps[2].input.userId``), so the admin, the API and ``load_workflows`` can point at it.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError

from automation.definitions import plain
from automation.definitions import secrets as secret_store
from automation.definitions.celpaths import STEP_REF
from automation.definitions.schema import SCHEMA
from automation.definitions.templates import TemplateError, has_template, paths_in
from automation.engine import flowspec, inputs, matching, ports, registry
from automation.engine.durations import parse_duration
from automation.engine.retry import RetryPolicy
from automation.lib import jsonsafe
from automation.lib.errors import DomainError

STEP_KINDS = (
    "action",
    "approval",
    "wait_for_event",
    "wait_for_signal",
    "sleep",
    "parallel",
    "child",
)
RESERVED_NAMES = {"schema"}  # /api/workflows/schema/ is the JSON Schema
RESERVED_STEP_IDS = {"on_failure"}  # the engine journals the failure handler under this id
_CEL_STEP_REF = STEP_REF  # the grammar the interpreter reads skipped steps with
_CEL_SECRETS = re.compile(r"(?<![\w.])secrets(?!\w)")
_CEL_ROOTS = re.compile(r"(?<![\w.\"'])(input|run)\s*[.\[]")
_VALIDATOR = Draft7Validator(SCHEMA)


@dataclass(frozen=True)
class DefinitionError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class InvalidDefinition(DomainError, ValueError):
    """The definition cannot be saved; ``errors`` says where and why."""

    code = "invalid_definition"

    def __init__(self, errors: list[DefinitionError]) -> None:
        super().__init__("; ".join(map(str, errors[:10])))
        self.errors = errors

    def details(self) -> dict[str, Any]:
        return {"errors": [error.as_dict() for error in self.errors]}


def format_path(parts: list[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def step_kind(step: dict[str, Any]) -> str | None:
    kinds = [kind for kind in STEP_KINDS if kind in step]
    return kinds[0] if len(kinds) == 1 else None


def validate(definition: Any) -> list[DefinitionError]:
    """Every problem of ``definition`` (empty when it can be saved): its shape, and what the
    steps mean (actions, references, durations, CEL) as far as the shape lets them be read, so
    a person fixes them all in one go rather than one layer after the other."""
    errors = _json_errors(definition, [])
    if errors:
        return errors
    shape = _shape_errors(definition)
    if not shape:
        return _Checker(definition).check()
    return shape + _meaning_despite(definition, shape)


def _meaning_despite(definition: Any, shape: list[DefinitionError]) -> list[DefinitionError]:
    """The meaning errors of a definition with shape errors: each step that can be read is
    checked; what the shape errors already point at is not reported twice."""
    steps = definition.get("steps") if isinstance(definition, dict) else None
    if not isinstance(steps, list):
        return []
    try:
        found = _TolerantChecker(definition).check()
    except (KeyError, TypeError, AttributeError, IndexError, ValueError):
        return []  # the outline itself is unreadable: the shape errors say why
    covered = {error.path for error in shape}
    return [error for error in found if not _under_any(error.path, covered)]


def _under_any(path: str, paths: set[str]) -> bool:
    return any(path == p or (p and path.startswith((f"{p}.", f"{p}["))) for p in paths)


def check(definition: Any) -> None:
    errors = validate(definition)
    if errors:
        raise InvalidDefinition(errors)


# --- JSON ----------------------------------------------------------------------------------


def _json_errors(value: Any, path: list[Any]) -> list[DefinitionError]:
    """Values JSON cannot hold: YAML reads 2024-05-01 as a date and ``on:``/``yes:`` keys as
    booleans, Python's JSON reader takes NaN. The database, the checksum and the API need JSON."""
    where = format_path(path)
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            if isinstance(key, str):
                found.extend(_json_errors(item, [*path, key]))
            else:
                found.append(DefinitionError(where, f"the key {key!r} is not a string (quote it)"))
        return found
    if isinstance(value, list):
        return [error for i, item in enumerate(value) for error in _json_errors(item, [*path, i])]
    if isinstance(value, float) and not math.isfinite(value):
        return [DefinitionError(where, f"{value} is not a JSON number")]
    if isinstance(value, str):
        try:
            jsonsafe.check_storable(value)
        except jsonsafe.UnstorableJSON as exc:  # a lone surrogate (the admin's JSON field)
            return [DefinitionError(where, exc.problem)]
    if value is None or isinstance(value, str | int | float):
        return []
    kind = {datetime: "a date and time", date: "a date"}.get(type(value), type(value).__name__)
    return [DefinitionError(where, f"{value} is {kind}, not a JSON value (quote it)")]


# --- shape ---------------------------------------------------------------------------------


def _shape_errors(definition: Any) -> list[DefinitionError]:
    found: list[DefinitionError] = []
    for error in sorted(_VALIDATOR.iter_errors(definition), key=lambda e: list(e.absolute_path)):
        found.extend(e for e in _explain(error) if e not in found)  # once, however many rules
    return found


def _explain(error: Any) -> list[DefinitionError]:
    """A step without exactly one kind gets a message saying so, not jsonschema's "is valid
    under each of" / "is not valid under any of the given schemas"; every other error is said
    in plain words (automation.definitions.plain), not as a regular expression."""
    path = list(error.absolute_path)
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        present = [k for k in STEP_KINDS if k in error.instance]
        if not present and (unknown := _unknown_step_keys(error.instance, path)):
            return unknown
        message = f"a step has exactly one of {', '.join(STEP_KINDS)}" + (
            f" (this one has {', '.join(present)})" if present else ""
        )
        return [DefinitionError(format_path(path), message)]
    return [DefinitionError(format_path(path), plain.describe(error))]


def _step_keys() -> frozenset[str]:
    definitions = SCHEMA["definitions"]
    refs = [rule["then"]["$ref"].rsplit("/", 1)[1] for rule in definitions["step"]["allOf"]]
    return frozenset(key for ref in refs for key in definitions[ref]["properties"])


_STEP_KEYS = _step_keys()


def _unknown_step_keys(step: dict[str, Any], path: list[Any]) -> list[DefinitionError]:
    """A step with no kind because of a typo (`actoin: log`): name the key, not the rule."""
    found = []
    for key in step:
        if key in _STEP_KEYS:
            continue
        close = difflib.get_close_matches(str(key), _STEP_KEYS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"a step has {', '.join(STEP_KINDS)}"
        found.append(DefinitionError(format_path([*path, key]), f"unknown key {key!r} ({hint})"))
    return found


# --- meaning -------------------------------------------------------------------------------


class _Checker:
    def __init__(self, definition: dict[str, Any]) -> None:
        self.definition = definition
        self.errors: list[DefinitionError] = []
        self.seen: set[str] = set()
        self.all_ids = all_step_ids(definition["steps"])

    def error(self, path: str, message: str) -> None:
        self.errors.append(DefinitionError(path, message))

    def check(self) -> list[DefinitionError]:
        if self.definition["name"] in RESERVED_NAMES:
            self.error("name", f"{self.definition['name']!r} is reserved; choose another name")
        trigger = self.definition.get("trigger", {})
        if "filter" in trigger:
            self.cel("trigger.filter", trigger["filter"], available=set(), roots=("trigger",))
        self.flow_control(trigger)
        if "input_schema" in self.definition:
            for where, message in inputs.schema_problems(self.definition["input_schema"]):
                self.error(f"input_schema.{where}" if where else "input_schema", message)
        if "search" in self.definition:
            self.templates(
                "search", self.definition["search"], set(), roots=("trigger", "input", "run")
            )
        available: set[str] = set()
        for index, step in enumerate(self.definition["steps"]):
            available |= self.step(f"steps[{index}]", step, available)
        if "on_failure" in self.definition:
            self.action_call("on_failure", self.definition["on_failure"], self.all_ids, error=True)
        if "output" in self.definition:
            self.templates("output", self.definition["output"], self.all_ids)
        return self.errors

    def flow_control(self, trigger: dict[str, Any]) -> None:
        """rate_limit, throttle, debounce, batch, priority: durations, CEL over trigger only."""
        problems = flowspec.errors(trigger)
        for path, message in problems:
            self.error(f"trigger.{path}", message)
        refused = {path for path, _ in problems}
        expressions = {"priority": trigger.get("priority")} | {
            f"{option}.key": (trigger.get(option) or {}).get("key")
            for option in ("rate_limit", "throttle", "debounce", "batch")
        }
        for path, expression in expressions.items():
            if isinstance(expression, str) and path not in refused:
                self.cel(f"trigger.{path}", expression, available=set(), roots=("trigger",))

    def step(self, path: str, step: dict[str, Any], available: set[str]) -> set[str]:
        """Check one step; return the step ids it makes available to later steps."""
        step_id, kind = step["id"], step_kind(step)
        if step_id in self.seen:
            self.error(f"{path}.id", f"duplicate step id {step_id!r}")
        if step_id in RESERVED_STEP_IDS:
            self.error(f"{path}.id", f"{step_id!r} is reserved for the engine; choose another id")
        self.seen.add(step_id)
        if "if" in step:
            self.cel(f"{path}.if", step["if"], available)
        self.modifiers(path, step, kind)
        if kind == "action":
            self.action_call(path, step, available)
        elif kind == "approval":
            self.approval(f"{path}.approval", step["approval"], available)
            self.both_timeouts(path, step, "approval")
        elif kind == "wait_for_event":
            self.wait(f"{path}.wait_for_event", step["wait_for_event"], available)
            self.both_timeouts(path, step, "wait_for_event")
        elif kind == "wait_for_signal":
            if "timeout" in step["wait_for_signal"]:
                self.duration(f"{path}.wait_for_signal.timeout", step["wait_for_signal"]["timeout"])
            self.both_timeouts(path, step, "wait_for_signal")
        elif kind == "sleep":
            self.duration(f"{path}.sleep", step["sleep"])
        elif kind == "parallel":
            return self.parallel(path, step, available)
        elif kind == "child":
            self.child(f"{path}.child", step["child"], available)
        if "compensate" in step:
            self.action_call(f"{path}.compensate", step["compensate"], available | {step_id})
        return {step_id}

    def modifiers(self, path: str, step: dict[str, Any], kind: str | None) -> None:
        if "retry" in step:
            if kind in ("approval", "wait_for_event", "wait_for_signal", "sleep", "child"):
                self.error(f"{path}.retry", f"a {kind} step has nothing to retry")
            else:
                self.retry(f"{path}.retry", step["retry"])
        if "timeout" in step:
            if kind in ("sleep", "parallel", "child"):
                self.error(f"{path}.timeout", f"a {kind} step takes no timeout")
            else:
                self.duration(f"{path}.timeout", step["timeout"])
        if "circuit" in step:
            if kind != "action":
                self.error(f"{path}.circuit", f"a {kind} step calls no action to break")
            elif isinstance(step["circuit"], dict):
                self.circuit(f"{path}.circuit", step["circuit"])

    def both_timeouts(self, path: str, step: dict[str, Any], kind: str) -> None:
        if "timeout" in step and "timeout" in step[kind]:
            self.error(f"{path}.timeout", f"give the timeout once (here or in {kind}.timeout)")

    def parallel(self, path: str, step: dict[str, Any], available: set[str]) -> set[str]:
        made = {step["id"]}
        if "compensate" in step:
            self.error(f"{path}.compensate", "compensate the steps inside the branches instead")
        for b, branch in enumerate(step["parallel"]):
            inside = set(available)
            for s, inner in enumerate(branch):
                where = f"{path}.parallel[{b}][{s}]"
                for modifier in ("retry", "timeout", "compensate", "circuit"):
                    if modifier in inner:
                        self.error(
                            f"{where}.{modifier}",
                            f"steps inside a parallel branch take no {modifier}; the parallel "
                            "step's retry applies to each branch",
                        )
                added = self.step(
                    where,
                    {
                        k: v
                        for k, v in inner.items()
                        if k not in ("retry", "timeout", "compensate", "circuit")
                    },
                    inside,
                )
                inside |= added
                made |= added
        return made

    def action_call(
        self, path: str, call: dict[str, Any], available: set[str], *, error: bool = False
    ) -> None:
        name = call["action"]
        where = f"{path}.action"
        if not registry.has_action(name):
            known = ", ".join(spec.name for spec in registry.actions())
            self.error(where, f"unknown action {name!r} (registered: {known})")
            return
        roots = ("trigger", "steps", "input", "run", "error") if error else None
        self.templates(f"{path}.input", call.get("input", {}), available, roots=roots, secrets=True)
        spec = registry.get_action(name)
        self.stored_secrets(f"{path}.input", call.get("input", {}), spec)
        for parts, message in spec.input_errors(call.get("input", {})):
            if not _templated(call.get("input", {}), parts):
                self.error(format_path([f"{path}.input", *parts]), message)
        if name == "ai.complete":
            self.json_schema(f"{path}.input.schema", call.get("input", {}).get("schema"))

    def stored_secrets(self, path: str, input: Any, spec: registry.ActionSpec) -> None:
        """No ``{{ secrets.* }}`` where the action stores or shows its input: the value would
        be in the log, an event, a record or an email, where no placeholder hides it."""
        if not isinstance(input, dict) or not spec.stores_input:
            return
        for key, value in input.items():
            if "*" not in spec.stores_input and key not in spec.stores_input:
                continue
            try:
                found = [where for where, parts in paths_in(value, f"{path}.{key}")
                         if parts[0] == secret_store.ROOT]  # fmt: skip
            except TemplateError:
                continue  # reported by templates()
            for where in found:
                self.error(
                    where,
                    f"secrets cannot be used here: {spec.name} stores or shows its {key!r}, "
                    "so the value would be readable there; pass secrets only to inputs that "
                    "send them (a URL, a header)",
                )

    def json_schema(self, path: str, schema: Any) -> None:
        """ai.complete's ``schema`` must be a JSON Schema (unless it is a template)."""
        if not isinstance(schema, dict) or has_template(schema):
            return
        try:
            Draft7Validator.check_schema(schema)
        except SchemaError as exc:
            where = "/".join(map(str, exc.absolute_path))
            self.error(
                path,
                f"not a valid JSON Schema{f' (at {where})' if where else ''}: {exc.message}",
            )

    def approval(self, path: str, approval: dict[str, Any], available: set[str]) -> None:
        for field in ("title", "description", "context"):
            if field in approval:
                self.templates(f"{path}.{field}", approval[field], available)
        for field in ("assignees", "escalate_to"):
            for i, entry in enumerate(approval.get(field, [])):
                if not _assignee_exists(entry):
                    kind, _, name = entry.partition(":")
                    self.error(f"{path}.{field}[{i}]", f"unknown assignee {kind} {name!r}")
        for field in ("timeout", "escalation_timeout"):
            if field in approval:
                self.duration(f"{path}.{field}", approval[field])
        if approval.get("on_timeout") == "escalate" and not approval.get("escalate_to"):
            self.error(f"{path}.escalate_to", "on_timeout 'escalate' needs escalate_to")
        self.reminder(path, approval)
        if "fields" in approval:
            try:
                kind = ports.step_kind("approval")
            except ports.PortNotFilled:
                kind = None
            for problem in kind.check(path, approval) if kind and kind.check else []:
                self.error(f"{path}.fields", problem)

    def reminder(self, path: str, approval: dict[str, Any]) -> None:
        """remind_before: a duration shorter than the timeout (which it needs), auto, or 0."""
        value = approval.get("remind_before", "auto")
        if value == "auto":
            return
        try:
            before = parse_duration(value)
        except ValueError as exc:
            self.error(f"{path}.remind_before", str(exc))
            return
        if before == timedelta(0):
            return
        if "timeout" not in approval:
            self.error(f"{path}.remind_before", "a reminder needs a timeout to count from")
            return
        try:
            timeout = parse_duration(approval["timeout"])
        except ValueError:
            return  # reported at .timeout
        if before >= timeout:
            self.error(
                f"{path}.remind_before", f"must be shorter than the timeout ({approval['timeout']})"
            )

    def wait(self, path: str, wait: dict[str, Any], available: set[str]) -> None:
        given = [key for key in ("event", "any", "all") if key in wait]
        if len(given) != 1:
            self.error(path, "give exactly one of event (one event), any or all (several events)")
            return
        for field in ("timeout", "lookback"):
            if field in wait:
                self.duration(f"{path}.{field}", wait[field])
        if given[0] == "event":
            self.wait_entry(path, wait, available)
            return
        for key in ("match", "condition", "source"):
            if key in wait:
                self.error(f"{path}.{key}", f"with {given[0]}, give {key} in each event of it")
        for i, entry in enumerate(wait[given[0]]):
            self.wait_entry(f"{path}.{given[0]}[{i}]", entry, available)

    def wait_entry(self, path: str, wait: dict[str, Any], available: set[str]) -> None:
        self.templates(f"{path}.match", wait.get("match", {}), available)
        for key, value in wait.get("match", {}).items():
            if not isinstance(value, str | int | float | bool) and value is not None:
                self.error(f"{path}.match.{key}", "match values are exact values (or templates)")
        if "condition" in wait:
            self.cel(f"{path}.condition", wait["condition"], set(), roots=("event",))

    def child(self, path: str, child: dict[str, Any], available: set[str]) -> None:
        name = child["workflow"]
        if name == self.definition["name"]:
            self.error(f"{path}.workflow", "a workflow cannot start itself as a child")
        elif not registry.known_versions(name) and not _workflow_exists(name):
            self.error(f"{path}.workflow", f"no workflow named {name!r}")
        self.templates(f"{path}.input", child.get("input", {}), available)

    def retry(self, path: str, retry: dict[str, Any]) -> None:
        for field in ("initial", "max"):
            if field in retry:
                self.duration(f"{path}.{field}", retry[field])
        try:
            RetryPolicy.from_value(retry)
        except ValueError as exc:
            self.error(path, str(exc))

    def circuit(self, path: str, circuit: dict[str, Any]) -> None:
        for field in ("within", "open_for"):
            if field not in circuit:
                continue
            try:
                duration = parse_duration(circuit[field])
            except ValueError as exc:
                self.error(f"{path}.{field}", str(exc))
                continue
            if duration <= timedelta(0):
                self.error(f"{path}.{field}", "give a duration longer than zero")

    def duration(self, path: str, value: Any) -> None:
        try:
            parse_duration(value)
        except ValueError as exc:
            self.error(path, str(exc))

    def cel(
        self, path: str, expression: str, available: set[str], roots: tuple[str, ...] | None = None
    ) -> None:
        try:
            matching.compile_expression(expression)
        except matching.ExpressionError as exc:
            self.error(path, f"invalid CEL: {exc}")
            return
        if roots is not None:
            for match in _CEL_ROOTS.finditer(expression):
                if match.group(1) not in roots:
                    self.error(
                        path, f"only {', '.join(roots)} can be used here, not {match.group(1)}"
                    )
                    return
        if _CEL_SECRETS.search(expression):
            self.error(
                path,
                "secrets cannot be used in conditions (only as {{ secrets.NAME }} in an "
                "action's input)",
            )
            return
        for match in _CEL_STEP_REF.finditer(expression):
            step_id = match.group(1) or match.group(2)
            if roots is not None and "steps" not in roots:
                self.error(path, f"only {', '.join(roots)} can be used here, not steps")
                return
            self.reference(path, step_id, available)

    def templates(
        self,
        path: str,
        value: Any,
        available: set[str],
        roots: tuple[str, ...] | None = None,
        *,
        secrets: bool = False,
    ) -> None:
        """``secrets``: whether ``{{ secrets.NAME }}`` may be used (an action's input only:
        anywhere else its value would be recorded or shown)."""
        allowed = roots or ("trigger", "steps", "input", "run")
        try:
            for where, parts in paths_in(value, path):
                if parts[0] == secret_store.ROOT:
                    problem = (
                        secret_store.name_error(parts)
                        if secrets
                        else (
                            "secrets can only be used in an action's input (here the value "
                            "would be recorded or shown)"
                        )
                    )
                    if problem is not None:
                        self.error(where, problem)
                elif parts[0] not in allowed:
                    self.error(
                        where,
                        f"{{{{ {parts[0]} … }}}}: templates start with {', '.join(allowed)}",
                    )
                elif parts[0] == "steps":
                    if len(parts) < 2 or not isinstance(parts[1], str):
                        self.error(where, "{{ steps.<id>.output… }} names a step")
                    else:
                        self.reference(where, parts[1], available)
        except TemplateError as exc:
            self.error(getattr(exc, "location", path), str(exc))

    def reference(self, path: str, step_id: str, available: set[str]) -> None:
        if step_id in available:
            return
        if step_id in self.all_ids:
            self.error(path, f"step {step_id!r} has not run before this point")
        else:
            self.error(path, f"no step {step_id!r} in this workflow")


class _TolerantChecker(_Checker):
    """The checker for a definition whose shape is wrong somewhere: a step it cannot read (a
    missing id, a list where an object belongs) is left to the shape errors, and the other steps
    are still checked."""

    def __init__(self, definition: dict[str, Any]) -> None:
        super().__init__({**definition, "steps": []})
        self.definition = definition
        self.all_ids = _readable_ids(definition["steps"])

    def step(self, path: str, step: dict[str, Any], available: set[str]) -> set[str]:
        try:
            return super().step(path, step, available)
        except (KeyError, TypeError, AttributeError, IndexError, ValueError):
            step_id = step.get("id") if isinstance(step, dict) else None
            return {step_id} if isinstance(step_id, str) else set()


def _readable_ids(steps: Any) -> set[str]:
    """The step ids of a definition whose shape is wrong: those that can be read."""
    ids: set[str] = set()
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict) and isinstance(step.get("id"), str):
            ids.add(step["id"])
        for branch in step.get("parallel", []) if isinstance(step, dict) else []:
            ids |= _readable_ids(branch)
    return ids


def all_step_ids(steps: list[dict[str, Any]]) -> set[str]:
    ids: set[str] = set()
    for step in steps:
        ids.add(step["id"])
        for branch in step.get("parallel", []):
            ids |= all_step_ids(branch)
    return ids


def _templated(value: Any, parts: list[Any]) -> bool:
    """Whether the input at ``parts`` (or above it) is a template, whose value is only known
    when the step runs: the input schema is checked again then."""
    current = value
    for part in parts:
        if has_template(current):
            return True
        try:
            current = current[part]
        except (KeyError, IndexError, TypeError):
            return False
    return has_template(current)


def _workflow_exists(name: str) -> bool:
    from automation.models import Workflow

    return Workflow.objects.filter(name=name).exists()


def _assignee_exists(entry: str) -> bool:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    kind, _, name = entry.partition(":")
    if kind == "group":
        return Group.objects.filter(name=name).exists()
    user_model = get_user_model()
    return user_model.objects.filter(**{user_model.USERNAME_FIELD: name}).exists()
