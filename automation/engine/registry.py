"""The registries of code workflows and actions, filled by ``@workflow`` and ``@action``.

Both decorators only record the function: they run at import time, before the database is
ready. ``sync_code_workflows`` mirrors the registered workflows into Workflow/WorkflowVersion
rows (after migrate, and lazily before the first run starts in a process).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from jsonschema import Draft7Validator

from automation.engine import flowspec, inputs, queries
from automation.engine.circuitspec import CircuitPolicy
from automation.engine.durations import parse_duration
from automation.engine.errors import NonRetryableError, UnknownWorkflow, WorkflowError
from automation.engine.flowspec import FlowControl
from automation.engine.retry import RetryPolicy

logger = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9\-_.]*$")
ON_LIMIT = ("queue", "skip", "cancel_previous")


@dataclass(frozen=True)
class Concurrency:
    """At most ``limit`` active runs per workflow (and per ``key``, a dotted path into the
    trigger data or a function of the input). ``on_limit``: queue the new run until one
    finishes, skip it (recorded as cancelled), or cancel the previous runs."""

    limit: int = 1
    key: str | Callable[[dict[str, Any]], Any] | None = None
    on_limit: str = "queue"

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise WorkflowError("concurrency limit must be at least 1")
        if self.on_limit not in ON_LIMIT:
            raise WorkflowError(f"concurrency on_limit must be one of {', '.join(ON_LIMIT)}")


@dataclass
class WorkflowSpec:
    name: str
    fn: Callable[..., Any]
    version: int = 1
    on: str = ""
    filter: str = ""
    source: str = ""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: timedelta | None = None
    concurrency: Concurrency | None = None
    on_failure: Callable[..., Any] | None = None
    description: str = ""
    flow: FlowControl = flowspec.NONE
    input_schema: dict[str, Any] | None = None

    @property
    def code_ref(self) -> str:
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    @property
    def checksum(self) -> str:
        try:
            source = inspect.getsource(self.fn)
        except (OSError, TypeError):
            source = self.code_ref
        return hashlib.sha256(source.encode()).hexdigest()


@dataclass
class ActionSpec:
    name: str
    fn: Callable[..., Any]
    description: str = ""
    input_schema: dict[str, Any] | None = None
    retry: RetryPolicy | None = None
    redact: Callable[[Any], Any] | None = None
    # Input fields the action stores or shows (a log line, an event, a record, an email):
    # ``{{ secrets.* }}`` is refused there when a definition is saved. "*": the whole input.
    stores_input: tuple[str, ...] = ()
    # The action's circuit breaker (None: as the AUTOMATION_CIRCUIT setting says), and the
    # circuit a call belongs to when it is not the action's own (a host: ``circuit_key(input)``).
    circuit: bool | dict[str, Any] | None = None
    circuit_key: Callable[[Any], str | None] | None = None
    invoke: Callable[..., Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.input_schema is not None:
            Draft7Validator.check_schema(self.input_schema)
        if isinstance(self.circuit, dict):
            try:
                CircuitPolicy.from_value(self.circuit)
            except ValueError as exc:
                raise WorkflowError(f"action {self.name!r}: {exc}") from exc

        def invoke(input: Any, ctx: Any) -> Any:
            self.check_input(input)
            return self.fn(input, ctx)

        invoke.action_name = self.name  # type: ignore[attr-defined]  (fakes find it by name)
        self.invoke = invoke

    def input_errors(self, input: Any) -> list[tuple[list[str | int], str]]:
        """(path, message) of each way ``input`` breaks the input schema."""
        if self.input_schema is None:
            return []
        validator = Draft7Validator(self.input_schema)
        return [
            (list(error.absolute_path), error.message)
            for error in sorted(validator.iter_errors(input), key=lambda e: list(e.path))
        ]

    def check_input(self, input: Any) -> None:
        """Raise NonRetryableError naming the first field of ``input`` the schema rejects."""
        errors = self.input_errors(input)
        if errors:
            path, message = errors[0]
            where = "input" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
            raise NonRetryableError(f"action {self.name!r}: {where}: {message}")


_workflows: dict[tuple[str, int], WorkflowSpec] = {}
_actions: dict[str, ActionSpec] = {}


def workflow(
    name: str | Callable[..., Any] | None = None,
    *,
    on: str = "",
    filter: str = "",
    source: str = "",
    version: int = 1,
    retry: dict[str, Any] | RetryPolicy | None = None,
    timeout: str | float | timedelta | None = None,
    concurrency: Concurrency | dict[str, Any] | None = None,
    on_failure: Callable[..., Any] | None = None,
    rate_limit: dict[str, Any] | None = None,
    throttle: dict[str, Any] | None = None,
    debounce: dict[str, Any] | None = None,
    batch: dict[str, Any] | None = None,
    priority: str | None = None,
    input_schema: dict[str, Any] | None = None,
) -> Any:
    """Register a code workflow: ``fn(ctx, event)``. Usable bare (``@workflow``) or with options.

    ``on``: event type pattern that starts it; ``filter``: CEL condition on ``trigger``;
    ``source``: pattern the event's source must match (``webhook:stripe``; default any);
    ``version``: bump it when a change would break runs in flight (keep the old function
    registered under the old version until they finish); ``retry``: default step policy;
    ``timeout``: whole-run limit; ``concurrency``: see Concurrency; ``on_failure``:
    ``handler(ctx, error)`` run after compensations when the run fails. ``rate_limit``,
    ``throttle``, ``debounce``, ``batch`` and ``priority``: the trigger's flow control, as in
    a definition's trigger (docs/flow-control.md). ``input_schema``: JSON Schema (draft 7,
    ``type: object``) the input of a run started by a person or client must match
    (docs/workflows.md); events are not checked.
    """

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        wf_name = name if isinstance(name, str) else fn.__name__.replace("_", "-")
        if not NAME_RE.match(wf_name):
            raise WorkflowError(
                f"workflow name {wf_name!r}: use lower-case letters, digits, '-', '_' and '.'"
            )
        if not isinstance(version, int) or version < 1:
            raise WorkflowError(f"workflow {wf_name!r}: version must be a positive integer")
        existing = _workflows.get((wf_name, version))
        if existing is not None and existing.code_ref != f"{fn.__module__}:{fn.__qualname__}":
            raise WorkflowError(
                f"workflow {wf_name!r} version {version} is registered twice "
                f"({existing.code_ref} and {fn.__module__}:{fn.__qualname__})"
            )
        conc = Concurrency(**concurrency) if isinstance(concurrency, dict) else concurrency
        options = {
            "rate_limit": rate_limit,
            "throttle": throttle,
            "debounce": debounce,
            "batch": batch,
        }
        try:
            flow = flowspec.from_options({**options, "priority": priority})
        except WorkflowError as exc:
            raise WorkflowError(f"workflow {wf_name!r}: {exc}") from None
        if input_schema is not None:
            for where, message in inputs.schema_problems(input_schema):
                at = f"input_schema.{where}" if where else "input_schema"
                raise WorkflowError(f"workflow {wf_name!r}: {at}: {message}")
        _workflows[(wf_name, version)] = WorkflowSpec(
            name=wf_name,
            fn=fn,
            version=version,
            on=on,
            filter=filter,
            source=source,
            retry=RetryPolicy.from_value(retry),
            timeout=parse_duration(timeout) if timeout is not None else None,
            concurrency=conc,
            on_failure=on_failure,
            description=inspect.getdoc(fn) or "",
            flow=flow,
            input_schema=input_schema,
        )
        fn.workflow_name = wf_name  # type: ignore[attr-defined]
        global _generation
        _generation += 1
        return fn

    if callable(name) and not isinstance(name, str):
        fn, name = name, None
        return register(fn)
    return register


def action(
    name: str,
    *,
    input_schema: dict[str, Any] | None = None,
    retry: dict[str, Any] | RetryPolicy | None = None,
    redact: Callable[[Any], Any] | None = None,
    stores_input: tuple[str, ...] = (),
    circuit: bool | dict[str, Any] | None = None,
    circuit_key: Callable[[Any], str | None] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn(input, ctx)`` as the action ``name`` (usable from code and definitions).

    ``input_schema`` (JSON Schema, draft 7) is checked when a definition is saved and before
    every call: an input that breaks it fails the step at once, naming the field.
    ``redact(input)``: the input as the journal records it (credentials hidden); it must not
    change ``input``. ``stores_input``: the input fields the action writes somewhere people
    read (``("*",)`` for all), where a definition may not put ``{{ secrets.NAME }}``.
    ``circuit``: a circuit breaker for its calls (True: the AUTOMATION_CIRCUIT thresholds; a
    dict ``{failures, within, open_for}`` overrides them; False: none even if the setting
    lists the action); ``circuit_key(input)``: the circuit a call belongs to (a host), when
    not the action's own."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not NAME_RE.match(name):
            raise WorkflowError(f"action name {name!r}: use lower-case letters, digits, -_.")
        if name in _actions and _actions[name].fn is not fn:
            raise WorkflowError(f"action {name!r} is registered twice")
        _actions[name] = ActionSpec(
            name=name,
            fn=fn,
            description=inspect.getdoc(fn) or "",
            input_schema=input_schema,
            retry=RetryPolicy.from_value(retry) if retry is not None else None,
            redact=redact,
            stores_input=stores_input,
            circuit=circuit,
            circuit_key=circuit_key,
        )
        fn.action_name = name  # type: ignore[attr-defined]
        return fn

    return register


def get_workflow(name: str, version: int | None = None) -> WorkflowSpec:
    """The spec of ``name`` at ``version`` (the highest registered when None)."""
    versions = known_versions(name)
    if not versions:
        known = ", ".join(sorted({n for n, _ in _workflows})) or "none"
        raise UnknownWorkflow(f"no code workflow named {name!r} (registered: {known})")
    number = versions[-1] if version is None else version
    if (name, number) not in _workflows:
        raise UnknownWorkflow(
            f"workflow {name!r} version {number} is not in the code any more "
            f"(registered versions: {', '.join(map(str, versions))}); keep the old function "
            "registered until its runs finish"
        )
    return _workflows[(name, number)]


def known_versions(name: str) -> list[int]:
    """The versions of ``name`` registered in this process, ascending."""
    return sorted(v for (n, v) in _workflows if n == name)


def has_action(name: str) -> bool:
    return name in _actions


def get_action(name: str) -> ActionSpec:
    try:
        return _actions[name]
    except KeyError:
        known = ", ".join(sorted(_actions)) or "none"
        raise WorkflowError(f"unknown action {name!r} (registered: {known})") from None


def workflows() -> list[WorkflowSpec]:
    return list(_workflows.values())


def actions() -> list[ActionSpec]:
    return sorted(_actions.values(), key=lambda spec: spec.name)


def autodiscover() -> None:
    """Import ``workflows.py`` of every installed app (like admin.py)."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("workflows")


_generation = 0  # bumped by every registration
_synced_generation = -1


def sync_code_workflows(force: bool = False) -> None:
    """Create the Workflow and WorkflowVersion rows of the registered code workflows (once per
    process, and again whenever a workflow was registered since)."""
    global _synced_generation
    if _synced_generation == _generation and not force:
        return
    from automation.models import Workflow, WorkflowVersion

    for spec in sorted(_workflows.values(), key=lambda s: (s.name, s.version)):
        wf, _ = Workflow.objects.get_or_create(
            name=spec.name, defaults={"kind": Workflow.Kind.CODE, "description": spec.description}
        )
        if wf.kind != Workflow.Kind.CODE:
            logger.error("code workflow %r clashes with a declarative workflow", spec.name)
            continue
        version, created = WorkflowVersion.objects.get_or_create(
            workflow=wf,
            number=spec.version,
            defaults={
                "code_ref": spec.code_ref,
                "checksum": spec.checksum,
                "trigger_event": spec.on,
                "trigger_filter": spec.filter,
            },
        )
        if not created and version.checksum != spec.checksum:
            logger.warning(
                "code of workflow %s v%d changed without a version bump; runs in flight replay "
                "against the new code (and fail if their steps no longer match)",
                spec.name,
                spec.version,
            )
    _synced_generation = _generation


# ``@workflow.query(fn)``: a workflow's read-only query handlers (automation/engine/queries.py).
workflow.query = queries.query  # type: ignore[attr-defined]
