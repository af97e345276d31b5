"""The engine's ports: what it needs from the outside world, filled by the outer apps.

The engine depends on nothing in events, approvals, the declarative definitions or the Celery
tasks. Where it needs them it calls a port here, which those apps fill from their
``AppConfig.ready()``:

- the dispatch backend (automation.tasks: Celery sends "advance run X" and "run branch Y");
- the event sink (events: record an event a run emits; find the events a new wait looks back
  on);
- the spec builder of declarative workflows (automation.definitions);
- step kinds that are not the engine's own (approvals: the approval step);
- open-work closers, called when a run ends or is being cancelled (approvals: cancel the run's
  pending approvals);
- sweep hooks: more due rows the periodic sweep fires (rules: window ends and deadlines).

A port nobody filled raises PortNotFilled, naming the app that fills it: a missing app fails
the first run that needs it, never silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from automation.engine.context import Context
    from automation.engine.registry import WorkflowSpec
    from automation.models import StepRecord

__all__ = [
    "DispatchBackend",
    "EventSink",
    "PortNotFilled",
    "SpecBuilder",
    "StepKind",
    "dispatch_backend",
    "dispatch_backend_set",
    "event_sink",
    "event_sink_set",
    "run_close_hook_add",
    "run_close_hooks_call",
    "run_rerun_hook_add",
    "run_rerun_hooks_call",
    "spec_builder",
    "spec_builder_set",
    "step_kind",
    "step_kind_register",
    "sweep_hook_add",
    "sweep_hooks",
]


class PortNotFilled(RuntimeError):
    """The engine needs something no installed app provides."""


# --- dispatch -------------------------------------------------------------------------------


class DispatchBackend(Protocol):
    """Sends the engine's messages; the state they point at is in the database."""

    def advance(self, run_id: str, priority: int = 0) -> None: ...

    def branch(self, run_id: str, step_id: str) -> None: ...


class _NoBackend:
    def _missing(self, *args: Any, **options: Any) -> None:
        raise PortNotFilled(
            "no dispatch backend: add 'automation' to INSTALLED_APPS (its ready() installs the "
            "Celery backend), or install one with automation.engine.dispatch.set_backend()"
        )

    advance = branch = _missing


_dispatch_backend: DispatchBackend = _NoBackend()


def dispatch_backend() -> DispatchBackend:
    return _dispatch_backend


def dispatch_backend_set(backend: DispatchBackend) -> DispatchBackend:
    """Install ``backend``; returns the previous one (to put back)."""
    global _dispatch_backend
    previous, _dispatch_backend = _dispatch_backend, backend
    return previous


# --- events ---------------------------------------------------------------------------------


class EventSink(Protocol):
    """The event log as the engine uses it. Events are returned as the log's own objects; the
    engine reads ``id``, ``type``, ``source``, ``data``, ``received_at`` and ``as_trigger()``."""

    def record(
        self,
        *,
        type: str,
        data: dict[str, Any],
        source: str,
        subject: str,
        correlation_id: str,
        causation_id: str,
        idempotency_key: str,
        actor_id: Any,
    ) -> Any:
        """Store an event a run emits (once per idempotency key) and route it; the event."""
        ...

    def lookback(
        self,
        *,
        event_type: str,
        since: datetime,
        data_equals: dict[str, Any],
        exclude_id: Any,
        exclude_ids: Iterable[Any],
        limit: int,
    ) -> list[Any]:
        """The newest ``limit`` events of ``event_type`` received since ``since`` whose data
        has the given values at the given dotted paths, leaving out the event ``exclude_id``
        and those in ``exclude_ids`` (a list or a query of ids); newest first."""
        ...


_event_sink: EventSink | None = None


def event_sink() -> EventSink:
    if _event_sink is None:
        raise PortNotFilled(
            "no event sink: add 'events' to INSTALLED_APPS (ctx.emit and wait_for_event need "
            "the event log)"
        )
    return _event_sink


def event_sink_set(sink: EventSink | None) -> EventSink | None:
    """Install ``sink``; returns the previous one."""
    global _event_sink
    previous, _event_sink = _event_sink, sink
    return previous


# --- declarative workflows ------------------------------------------------------------------

#: (workflow name, version number, definition) -> the spec the executor runs.
SpecBuilder = Callable[[str, int, dict[str, Any]], "WorkflowSpec"]

_spec_builder: SpecBuilder | None = None


def spec_builder() -> SpecBuilder:
    if _spec_builder is None:
        raise PortNotFilled(
            "no spec builder for declarative workflows: add 'automation' to INSTALLED_APPS "
            "(its ready() installs automation.definitions)"
        )
    return _spec_builder


def spec_builder_set(builder: SpecBuilder | None) -> SpecBuilder | None:
    """Install ``builder``; returns the previous one."""
    global _spec_builder
    previous, _spec_builder = _spec_builder, builder
    return previous


# --- step kinds -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StepKind:
    """A kind of waiting step another app provides. ``start(ctx, step_id=, seq=, **options)``
    journals the waiting step (and whatever the app keeps beside it) and returns its record;
    ``result(ctx, record)`` returns the step's outcome or raises Suspend while it waits.
    ``check(step_id, options)``, when given, returns the problems of a declarative step's
    options (messages), so a definition is refused when it is saved, not when a run gets
    there."""

    start: Callable[..., StepRecord]
    result: Callable[[Context, StepRecord], Any]
    check: Callable[[str, dict[str, Any]], list[str]] | None = None


_step_kinds: dict[str, StepKind] = {}

#: The app that provides each kind the engine's Context offers, for the error when it is missing.
_KIND_APPS = {"approval": "approvals"}


def step_kind_register(name: str, kind: StepKind) -> None:
    _step_kinds[name] = kind


def step_kind(name: str) -> StepKind:
    try:
        return _step_kinds[name]
    except KeyError:
        app = _KIND_APPS.get(name, "the app that provides it")
        raise PortNotFilled(
            f"no {name!r} step kind: add {app!r} to INSTALLED_APPS to use ctx.{name}()"
        ) from None


# --- hooks when a run closes ----------------------------------------------------------------

#: Called with a run id, in the transaction that ends or cancels the run.
RunCloseHook = Callable[[Any], Any]

_run_close_hooks: list[RunCloseHook] = []


def run_close_hook_add(closer: RunCloseHook) -> None:
    """Call ``closer(run_id)`` whenever a run ends or is being cancelled (once per closer)."""
    if closer not in _run_close_hooks:
        _run_close_hooks.append(closer)


def run_close_hooks_call(run_id: Any) -> None:
    """Close what the outer apps keep open for the run (its pending approvals)."""
    for closer in _run_close_hooks:
        closer(run_id)


# --- hooks when a run is rerun from a step --------------------------------------------------

#: Called with a run id, the ids of its steps a rerun supersedes and the execution they
#: belonged to, in the transaction of the rerun.
RunRerunHook = Callable[[Any, list[str], int], Any]

_run_rerun_hooks: list[RunRerunHook] = []


def run_rerun_hook_add(hook: RunRerunHook) -> None:
    """Call ``hook(run_id, step_ids, execution)`` whenever a rerun supersedes steps (once per
    hook): what an outer app keeps per step (an approval) makes way for the step's new run."""
    if hook not in _run_rerun_hooks:
        _run_rerun_hooks.append(hook)


def run_rerun_hooks_call(run_id: Any, step_ids: list[str], execution: int) -> None:
    for hook in _run_rerun_hooks:
        hook(run_id, step_ids, execution)


# --- more due work for the sweep ------------------------------------------------------------

#: Called by every sweep with no arguments; returns how many due items it handled.
SweepHook = Callable[[], int]

_sweep_hooks: dict[str, SweepHook] = {}


def sweep_hook_add(name: str, hook: SweepHook) -> None:
    """Have every sweep call ``hook()`` too (its count reported under ``name``): due rows an
    outer app keeps (rule windows and deadlines) fire on the same beat as the engine's timers."""
    _sweep_hooks[name] = hook


def sweep_hooks() -> dict[str, SweepHook]:
    return dict(_sweep_hooks)
