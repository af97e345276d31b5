"""Dry run: walk a definition against a sample event with every action faked, and report each
step's rendered input and the branch taken. It uses the interpreter of real runs with a
stand-in context that writes nothing, sends nothing and waits for nothing."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from automation.definitions import interpreter
from automation.definitions.templates import TemplateError, render
from automation.definitions.validation import all_step_ids
from automation.engine import matching, registry, search
from automation.engine.errors import TIMED_OUT, NonRetryableError, StepFailed
from automation.engine.waitgroups import EventsOutcome

DECIDED = {
    "approved": True,
    "decision": "approved",
    "comment": "",
    "decided_by": "dry-run",
    "decided_at": None,
    "votes": [],
    "values": {},
    "timed_out": False,
}
#: What ``approved`` is for each decision an approval can end with.
APPROVED_BY_DECISION = {"approved": True, "rejected": False, "expired": False}
APPROVAL_FAKE_HELP = (
    'an object like {"approved": false} or {"decision": "approved", "rejected" or "expired"}'
)


class FakeError(ValueError):
    """A fake output that the step it stands for could never return."""


def approval_fake(step_id: str, fake: Any) -> dict[str, Any]:
    """The full approval output for a fake that gives ``approved``, ``decision`` or both
    (the rest as a decision by "dry-run" would have it). FakeError for any other shape."""
    if not isinstance(fake, dict):
        raise FakeError(f"the fake for approval {step_id!r} must be {APPROVAL_FAKE_HELP}")
    approved, decision = fake.get("approved"), fake.get("decision")
    if decision is None and isinstance(approved, bool):
        decision = "approved" if approved else "rejected"
    if decision not in APPROVED_BY_DECISION:
        raise FakeError(f"the fake for approval {step_id!r} must be {APPROVAL_FAKE_HELP}")
    if approved is None:
        approved = APPROVED_BY_DECISION[decision]
    if approved is not APPROVED_BY_DECISION[decision]:
        raise FakeError(
            f"the fake for approval {step_id!r} says approved: {json.dumps(approved)} with "
            f"decision {decision!r}; give one of them, or values that agree"
        )
    return {**DECIDED, **fake, "approved": approved, "decision": decision}


def check_fakes(definition: dict[str, Any], fakes: dict[str, Any]) -> None:
    """FakeError naming each fake that its step could not return: approvals take
    APPROVAL_FAKE_HELP, waits an event object or {"timed_out": true}; actions take any JSON."""
    problems = []
    for step in _all_steps(definition.get("steps", [])):
        if step.get("id") not in fakes:
            continue
        fake = fakes[step["id"]]
        if "approval" in step:
            try:
                approval_fake(step["id"], fake)
            except FakeError as exc:
                problems.append(str(exc))
        elif "wait_for_signal" in step and not isinstance(fake, dict):
            problems.append(
                f"the fake for wait_for_signal {step['id']!r} must be an object like "
                '{"data": {...}} or {"timed_out": true}'
            )
        elif "wait_for_event" in step and not isinstance(fake, dict):
            problems.append(
                f"the fake for wait_for_event {step['id']!r} must be an event object like "
                '{"type": "...", "data": {...}} or {"timed_out": true}'
            )
    if problems:
        raise FakeError("; ".join(problems))


def _all_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for step in steps:
        found.append(step)
        for branch in step.get("parallel", []):
            found.extend(_all_steps(branch))
    return found


@dataclass
class TracedStep:
    id: str
    kind: str
    status: str  # ran, skipped, failed, would run
    input: Any = None
    output: Any = None
    note: str = ""


@dataclass
class DryRun:
    steps: list[TracedStep] = field(default_factory=list)
    started: bool = True
    output: Any = None
    error: str = ""
    search: dict[str, str] = field(default_factory=dict)  # the run's search attributes

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class DryContext:
    """Answers the interpreter's Context calls from ``fakes`` ({step id: output})."""

    def __init__(self, input: dict[str, Any], fakes: dict[str, Any], trace: DryRun) -> None:
        self.run_id, self.correlation_id, self.current_step_id = "dry-run", "", ""
        self.input = input
        self.fakes = fakes
        self.trace = trace
        self.compensations: list[tuple[str, Any, Any]] = []

    def idempotency_key(self, step_id: str) -> str:
        return f"dry-run:{step_id}"

    def _add(
        self, step_id: str, kind: str, status: str, input: Any, output: Any = None, note: str = ""
    ) -> None:
        self.trace.steps.append(TracedStep(step_id, kind, status, input, output, note))

    def step(self, step_id: str, fn: Any, *args: Any, **options: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            self._add(step_id, "step", "failed", None, note=str(exc))
            raise StepFailed(step_id, {"type": type(exc).__name__, "message": str(exc)}) from None

    def skip(self, step_id: str, reason: str) -> None:
        self._add(step_id, "skipped", "skipped", None, note=reason)

    def action(self, step_id: str, name: str, input: Any, **options: Any) -> Any:
        try:
            registry.get_action(name).check_input(input)
        except NonRetryableError as exc:
            self._add(step_id, f"action {name}", "failed", input, note=str(exc))
            raise StepFailed(step_id, {"type": "NonRetryableError", "message": str(exc)}) from None
        output = self.fakes.get(step_id, {})
        self._add(step_id, f"action {name}", "ran", input, output, "faked")
        return output

    def approval(self, step_id: str, *, title: str, assignees: list[str], **options: Any) -> Any:
        output = approval_fake(step_id, self.fakes[step_id]) if step_id in self.fakes else DECIDED
        shown = {"title": title, "assignees": assignees, "context": options.get("context")}
        self._add(step_id, "approval", "ran", shown, output, "decided by the fake")
        return output

    def wait_for_event(self, step_id: str, event_type: str, **options: Any) -> Any:
        shown = {
            "event": event_type,
            "match": options.get("match"),
            "condition": options.get("condition"),
        }
        output = self.fakes.get(step_id, {"type": event_type, "data": options.get("match") or {}})
        if output.get("timed_out"):
            self._add(step_id, "wait_for_event", "ran", shown, {"timed_out": True}, "timed out")
            return TIMED_OUT
        self._add(step_id, "wait_for_event", "ran", shown, output, "an event arrived (fake)")
        return output

    def wait_for_events(self, step_id: str, **options: Any) -> Any:
        mode = "any" if options.get("any") is not None else "all"
        entries = options[mode]
        shown = {mode: entries}
        fake = self.fakes.get(step_id)
        if fake is None:  # by default every event asked for arrives, with its match as data
            events = [{"type": e["event"], "data": e.get("match") or {}} for e in entries]
            arrived = [0] if mode == "any" else list(range(len(entries)))
            events = [event if i in arrived else None for i, event in enumerate(events)]
            fake = {"mode": mode, "arrived": arrived, "events": events, "timed_out": False}
        outcome = EventsOutcome(fake)
        note = "timed out" if not outcome else "the events arrived (fake)"
        self._add(step_id, "wait_for_event", "ran", shown, dict(outcome), note)
        return outcome

    def wait_for_signal(self, step_id: str, name: str, **options: Any) -> Any:
        output = self.fakes.get(step_id, {"signal": name, "data": {}, "timed_out": False})
        if output.get("timed_out"):
            self._add(step_id, "wait_for_signal", "ran", {"name": name}, output, "timed out")
            return TIMED_OUT
        self._add(step_id, "wait_for_signal", "ran", {"name": name}, output, "a signal came (fake)")
        return output

    def child(self, step_id: str, workflow: str, input: Any, **options: Any) -> Any:
        output = self.fakes.get(step_id, {})
        self._add(step_id, f"child {workflow}", "ran", input, output, "faked")
        return output

    def sleep(self, step_id: str, duration: Any) -> None:
        self._add(step_id, "sleep", "ran", {"sleep": duration}, None, "no time passes")

    def parallel(self, step_id: str, branches: list[Any], **options: Any) -> list[Any]:
        results = []
        self._add(step_id, "parallel", "ran", {"branches": len(branches)}, None)
        for _fn, branch, scope in branches:
            try:
                results.append(
                    interpreter.run_branch_steps(
                        branch, scope, self._branch_call, self._branch_trace
                    )
                )
            except Exception as exc:
                last = self.trace.steps[-1]
                last.status, last.output, last.note = "failed", None, str(exc)
                error = {"type": type(exc).__name__, "message": str(exc)}
                raise StepFailed(step_id, error) from None
        return results

    def _branch_call(self, step: dict[str, Any], input: Any, ctx: Any, scope: Any) -> Any:
        registry.get_action(step["action"]).check_input(input)
        return self.fakes.get(step["id"], {})

    def _branch_trace(self, step: dict[str, Any], taken: bool, input: Any) -> None:
        if taken:
            output = self.fakes.get(step["id"], {})
            self._add(step["id"], f"action {step['action']}", "ran", input, output, "faked")
        else:
            self._add(step["id"], "skipped", "skipped", None, note=f"if {step['if']} was false")


def dry_run(
    definition: dict[str, Any],
    data: dict[str, Any],
    *,
    event_type: str = "",
    fakes: dict[str, Any] | None = None,
) -> DryRun:
    """What a run started by an event with ``data`` would do, with actions faked (``fakes``:
    outputs by step id; approvals approve and waits get an event unless faked otherwise).
    FakeError when a fake is of a shape its step could never return (``check_fakes``)."""
    check_fakes(definition, fakes or {})
    result = DryRun()
    trigger_spec = definition.get("trigger", {})
    trigger = {
        "id": "dry-run",
        "type": event_type or trigger_spec.get("event", ""),
        "source": "dry-run",
        "subject": "",
        "data": data,
        "body": data,
        "headers": {},
        "correlation_id": "",
        "causation_id": "",
    }
    if trigger_spec.get("filter"):
        try:
            result.started = matching.condition(trigger_spec["filter"], {"trigger": trigger})
        except matching.ExpressionError as exc:
            result.started, result.error = False, f"trigger filter: {exc}"
        if not result.started:
            result.error = result.error or "the trigger filter is false: no run would start"
            return result
    ctx = DryContext(data, fakes or {}, result)
    scope = interpreter.new_scope(ctx, trigger, definition["name"], 0)
    if "search" in definition:
        try:
            result.search = search.merged({}, render(definition["search"], scope))
        except (TemplateError, search.SearchAttributeError) as exc:
            result.error = f"search: {exc}"
            return result
    try:
        result.output = interpreter.execute(definition, ctx, scope)
    except StepFailed as exc:
        result.error = f"step {exc.step_id!r} failed: {exc.error.get('message')}"
        _unwind(definition, ctx, scope, {"step": exc.step_id, **exc.error})
    except (TemplateError, matching.ExpressionError) as exc:
        result.error = f"output: {exc}"
    return result


def _unwind(
    definition: dict[str, Any], ctx: DryContext, scope: dict[str, Any], error: dict[str, Any]
) -> None:
    for step_id, _undo, input in reversed(ctx.compensations):
        ctx._add(f"compensate:{step_id}", "compensation", "would run", input)
    if "on_failure" in definition:
        call = definition["on_failure"]
        try:
            input = interpreter.failure_input(
                call, {**scope, "error": error}, all_step_ids(definition["steps"])
            )
        except TemplateError as exc:
            ctx._add("on_failure", f"action {call['action']}", "failed", None, note=str(exc))
            return
        ctx._add("on_failure", f"action {call['action']}", "would run", input)
