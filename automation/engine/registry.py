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

from automation.engine.durations import parse_duration
from automation.engine.errors import UnknownWorkflow, WorkflowError
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
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: timedelta | None = None
    concurrency: Concurrency | None = None
    on_failure: Callable[..., Any] | None = None
    description: str = ""

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


_workflows: dict[tuple[str, int], WorkflowSpec] = {}
_actions: dict[str, ActionSpec] = {}


def workflow(
    name: str | Callable[..., Any] | None = None,
    *,
    on: str = "",
    filter: str = "",
    version: int = 1,
    retry: dict[str, Any] | RetryPolicy | None = None,
    timeout: str | float | timedelta | None = None,
    concurrency: Concurrency | dict[str, Any] | None = None,
    on_failure: Callable[..., Any] | None = None,
) -> Any:
    """Register a code workflow: ``fn(ctx, event)``. Usable bare (``@workflow``) or with options.

    ``on``: event type pattern that starts it; ``filter``: CEL condition on ``trigger``;
    ``version``: bump it when a change would break runs in flight (keep the old function
    registered under the old version until they finish); ``retry``: default step policy;
    ``timeout``: whole-run limit; ``concurrency``: see Concurrency; ``on_failure``:
    ``handler(ctx, error)`` run after compensations when the run fails.
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
        _workflows[(wf_name, version)] = WorkflowSpec(
            name=wf_name,
            fn=fn,
            version=version,
            on=on,
            filter=filter,
            retry=RetryPolicy.from_value(retry),
            timeout=parse_duration(timeout) if timeout is not None else None,
            concurrency=conc,
            on_failure=on_failure,
            description=inspect.getdoc(fn) or "",
        )
        fn.workflow_name = wf_name  # type: ignore[attr-defined]
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
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn(input, ctx)`` as the action ``name`` (usable from code and definitions)."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _actions and _actions[name].fn is not fn:
            raise WorkflowError(f"action {name!r} is registered twice")
        _actions[name] = ActionSpec(
            name=name,
            fn=fn,
            description=inspect.getdoc(fn) or "",
            input_schema=input_schema,
            retry=RetryPolicy.from_value(retry) if retry is not None else None,
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


_synced = False


def sync_code_workflows(force: bool = False) -> None:
    """Create the Workflow and WorkflowVersion rows of the registered code workflows."""
    global _synced
    if _synced and not force:
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
    _synced = True
