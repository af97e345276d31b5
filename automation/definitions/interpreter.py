"""Runs a declarative definition on the engine: each step becomes the Context operation a code
workflow would call (``ctx.action``, ``ctx.approval``, ``ctx.wait_for_event``, ``ctx.sleep``,
``ctx.parallel``, ``ctx.child``), so definitions get the same journal, replay, retries, timeouts,
compensation and failure handling as code.

Like a code workflow, the interpreter is replayed from the start on every advance; everything
it decides (templates, ``if`` conditions) depends only on the trigger and recorded step
outputs, so every replay takes the same path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from automation.definitions import secrets as secret_store
from automation.definitions.celpaths import null_skipped
from automation.definitions.templates import TemplateError, render, uses_secrets
from automation.definitions.templates import skipped as is_skipped
from automation.definitions.validation import all_step_ids, step_kind
from automation.engine import attempts, journal, matching, registry
from automation.engine.errors import NonRetryableError, StepFailed
from automation.engine.registry import WorkflowSpec

Scope = dict[str, Any]


class DefinitionRuntimeError(NonRetryableError):
    """A template or condition of the definition could not be evaluated on this run's data."""


SEARCH_STEP = "(search)"  # not a valid step id of a definition, so it names no step of it


def workflow_spec(name: str, number: int, definition: dict[str, Any]) -> WorkflowSpec:
    """The engine's view of one version of a declarative workflow."""
    state: dict[str, Scope] = {}

    def run(ctx: Any, event: Any) -> Any:
        scope = new_scope(ctx, event.as_dict(), name, number)
        state["scope"] = scope
        if "search" in definition:
            set_search(ctx, definition["search"], scope)
        return execute(definition, ctx, scope)

    on_failure = None
    if "on_failure" in definition:
        on_failure = _failure_handler(
            definition["on_failure"], state, all_step_ids(definition["steps"])
        )
    trigger = definition.get("trigger", {})
    return WorkflowSpec(
        name=name,
        fn=run,
        version=number,
        on=trigger.get("event", ""),
        filter=trigger.get("filter", ""),
        on_failure=on_failure,
        description=definition.get("description", ""),
    )


def new_scope(ctx: Any, trigger: dict[str, Any], name: str, number: int) -> Scope:
    trigger = dict(trigger)
    trigger.setdefault("body", trigger.get("data"))
    return {
        "trigger": trigger,
        "input": ctx.input,
        "run": {
            "id": ctx.run_id,
            "correlation_id": ctx.correlation_id,
            "workflow": name,
            "version": number,
        },
        "steps": {},
    }


def set_search(ctx: Any, search: dict[str, Any], scope: Scope) -> None:
    """The definition's ``search:`` attributes, rendered on the trigger (a template that cannot
    be rendered fails the run at the journaled step "(search)", saying why)."""
    ctx.set_search_attributes(_render(ctx, SEARCH_STEP, search, scope))


def execute(definition: dict[str, Any], ctx: Any, scope: Scope) -> Any:
    for step in definition["steps"]:
        run_step(ctx, step, scope)
    if "output" in definition:
        return render(definition["output"], scope)
    return {step_id: entry["output"] for step_id, entry in scope["steps"].items()}


def run_step(ctx: Any, step: dict[str, Any], scope: Scope) -> None:
    step_id = step["id"]
    if "if" in step and not _condition(ctx, step_id, step["if"], scope):
        ctx.skip(step_id, f"if {step['if']} was false")
        scope["steps"][step_id] = {"output": None, "skipped": True}
        return
    kind = step_kind(step)
    output = _KINDS[kind](ctx, step, scope)
    scope["steps"][step_id] = {"output": output, "skipped": False}
    if "compensate" in step:
        ctx.compensations.append(_compensation(ctx, step, scope))


def cel_scope(scope: Scope) -> dict[str, Any]:
    return {key: scope[key] for key in ("trigger", "steps", "input", "run")}


def condition_holds(expression: str, scope: Scope) -> bool:
    """Evaluate an ``if``. A path into a step skipped by its own ``if`` reads as null at any
    depth, as in templates (see celpaths for how CEL is made to read it so)."""
    skipped = frozenset(step_id for step_id in scope["steps"] if is_skipped(scope, step_id))
    return matching.condition(null_skipped(expression, skipped), cel_scope(scope))


def _fail(ctx: Any, step_id: str, message: str) -> None:
    """Fail the step with a journaled error (so the run's page shows where and why)."""
    ctx.step(step_id, _reject, message, retry={"max_attempts": 1})
    raise AssertionError("_reject always raises")


def _reject(message: str) -> None:
    raise DefinitionRuntimeError(message)


def _condition(ctx: Any, step_id: str, expression: str, scope: Scope) -> bool:
    try:
        return condition_holds(expression, scope)
    except matching.ExpressionError as exc:
        _fail(ctx, step_id, f"if: {exc}")
        raise AssertionError("unreachable") from exc


def _render(ctx: Any, step_id: str, value: Any, scope: Scope) -> Any:
    try:
        return render(value, scope)
    except TemplateError as exc:
        _fail(ctx, step_id, str(exc))
        raise AssertionError("unreachable") from exc


# --- step kinds ----------------------------------------------------------------------------


def _action(ctx: Any, step: dict[str, Any], scope: Scope) -> Any:
    step_id = step["id"]
    input = _render(ctx, step_id, step.get("input", {}), scope)
    options = {key: step[key] for key in ("retry", "timeout", "circuit") if key in step}
    if uses_secrets(step.get("input", {})):
        options["invoke"] = with_secrets(step["action"], step["input"], dict(scope))
    return ctx.action(step_id, step["action"], input, **options)


def with_secrets(action: str, raw: Any, scope: Scope) -> Callable[[Any, Any], Any]:
    """Call ``action`` with ``raw`` rendered with the secrets' values, at call time; what
    comes back (output or error) has the values replaced by their placeholders."""
    spec = registry.get_action(action)

    def invoke(shown: Any, ctx: Any) -> Any:
        used: dict[str, str] = {}
        real = render(raw, scope, secrets=used)
        try:
            output = spec.invoke(real, ctx)
        except Exception as exc:
            clean = secret_store.scrubbed(exc, used)
            if clean is exc:
                raise
            raise clean from None
        return secret_store.redact_value(journal.to_json(output, f"the result of {action}"), used)

    invoke.action_name = spec.name  # type: ignore[attr-defined]
    return invoke


def _approval(ctx: Any, step: dict[str, Any], scope: Scope) -> Any:
    step_id, spec = step["id"], step["approval"]
    shown = {key: spec[key] for key in ("title", "description", "context") if key in spec}
    shown = _render(ctx, step_id, shown, scope)
    result = ctx.approval(
        step_id,
        title=str(shown["title"]),
        assignees=spec["assignees"],
        description=str(shown.get("description", "")),
        context=shown.get("context") or {},
        timeout=spec.get("timeout", step.get("timeout")),
        on_timeout=spec.get("on_timeout", "reject"),
        quorum=spec.get("quorum", 1),
        four_eyes=spec.get("four_eyes", False),
        escalate_to=spec.get("escalate_to"),
        escalation_timeout=spec.get("escalation_timeout"),
        fields=spec.get("fields"),
        remind_before=spec.get("remind_before", "auto"),
    )
    if spec.get("on_reject") == "fail" and not result["approved"]:
        raise StepFailed(
            step_id,
            {
                "type": "Rejected",
                "message": f"approval {step_id!r} ended {result['decision']}",
                "retryable": False,
            },
        )
    return result


def _wait(ctx: Any, step: dict[str, Any], scope: Scope) -> Any:
    step_id, spec = step["id"], step["wait_for_event"]
    if "any" in spec or "all" in spec:
        return _wait_several(ctx, step, scope)
    match = _render(ctx, step_id, spec.get("match", {}), scope)
    event = ctx.wait_for_event(
        step_id,
        spec["event"],
        match=match or None,
        condition=spec.get("condition"),
        source=spec.get("source", ""),
        timeout=spec.get("timeout", step.get("timeout")),
        lookback=spec.get("lookback"),
    )
    if event:
        return {"timed_out": False, **event}
    if spec.get("on_timeout") == "fail":
        raise StepFailed(
            step_id,
            {
                "type": "TimedOut",
                "message": f"no {spec['event']} event arrived in time",
                "retryable": False,
            },
        )
    return {"timed_out": True}


def _wait_several(ctx: Any, step: dict[str, Any], scope: Scope) -> Any:
    step_id, spec = step["id"], step["wait_for_event"]
    mode = "any" if "any" in spec else "all"
    entries = []
    for entry in spec[mode]:
        match = _render(ctx, step_id, entry.get("match", {}), scope)
        entries.append({**entry, "match": match or None})
    outcome = ctx.wait_for_events(
        step_id,
        **{mode: entries},
        timeout=spec.get("timeout", step.get("timeout")),
        lookback=spec.get("lookback"),
    )
    if not outcome and spec.get("on_timeout") == "fail":
        wanted = ", ".join(entry["event"] for entry in spec[mode])
        _timed_out(step_id, f"{mode} of {wanted} did not arrive in time")
    return dict(outcome)


def _wait_signal(ctx: Any, step: dict[str, Any], scope: Scope) -> Any:
    step_id, spec = step["id"], step["wait_for_signal"]
    signal = ctx.wait_for_signal(
        step_id, spec["name"], timeout=spec.get("timeout", step.get("timeout"))
    )
    if signal:
        return signal
    if spec.get("on_timeout") == "fail":
        _timed_out(step_id, f"no signal {spec['name']!r} arrived in time")
    return {"timed_out": True}


def _timed_out(step_id: str, message: str) -> None:
    raise StepFailed(step_id, {"type": "TimedOut", "message": message, "retryable": False})


def _sleep(ctx: Any, step: dict[str, Any], scope: Scope) -> Any:
    ctx.sleep(step["id"], step["sleep"])
    return None


def _parallel(ctx: Any, step: dict[str, Any], scope: Scope) -> Any:
    snapshot = journal.to_json(scope, "the workflow's data")
    branches = [(run_branch, branch, snapshot) for branch in step["parallel"]]
    results = ctx.parallel(step["id"], branches, retry=step.get("retry"))
    merged = {}
    for result in results:
        for inner_id, entry in result.items():
            scope["steps"][inner_id] = entry
            merged[inner_id] = entry["output"]
    return merged


def _child(ctx: Any, step: dict[str, Any], scope: Scope) -> Any:
    step_id, spec = step["id"], step["child"]
    input = _render(ctx, step_id, spec.get("input", {}), scope)
    if not isinstance(input, dict):
        _fail(ctx, step_id, f"child.input rendered as {type(input).__name__}; it must be an object")
    return ctx.child(step_id, spec["workflow"], input, compensate=spec.get("compensate", True))


_KINDS: dict[str | None, Callable[[Any, dict[str, Any], Scope], Any]] = {
    "action": _action,
    "approval": _approval,
    "wait_for_event": _wait,
    "wait_for_signal": _wait_signal,
    "sleep": _sleep,
    "parallel": _parallel,
    "child": _child,
}


# --- compensation and failure --------------------------------------------------------------


def _compensation(ctx: Any, step: dict[str, Any], scope: Scope) -> tuple[str, Any, Any]:
    """What the engine runs if the run fails later: (step id, undo, its input). The input is
    rendered now, when the step's output is known, so the journal shows it."""
    call, step_id = step["compensate"], step["id"]
    spec = registry.get_action(call["action"])
    try:
        input = render(call.get("input", {}), scope)
    except TemplateError as exc:
        problem = str(exc)

        def undo(input: Any) -> Any:
            raise DefinitionRuntimeError(f"compensate: {problem}")

        return step_id, undo, None

    call_it = spec.invoke
    if uses_secrets(call.get("input", {})):
        call_it = with_secrets(spec.name, call["input"], dict(scope))

    def undo(input: Any) -> Any:
        return call_it(input, ctx)

    undo.action_name = spec.name  # type: ignore[attr-defined]  (the harness fakes by name)
    return step_id, undo, input


def _failure_handler(
    call: dict[str, Any], state: dict[str, Scope], step_ids: set[str]
) -> Callable[..., Any]:
    spec = registry.get_action(call["action"])

    def on_failure(ctx: Any, error: dict[str, Any]) -> Any:
        scope = {**state["scope"], "error": {k: v for k, v in error.items() if k != "traceback"}}
        input = failure_input(call, scope, step_ids)
        if uses_secrets(call.get("input", {})):
            return with_secrets(spec.name, call["input"], scope)(input, ctx)
        return spec.invoke(input, ctx)

    on_failure.action_name = spec.name  # type: ignore[attr-defined]
    return on_failure


def failure_input(call: dict[str, Any], scope: Scope, step_ids: set[str]) -> Any:
    """on_failure's input: it may name any step; one that did not run (skipped, after the
    failing one, or the failing one itself) renders as null."""
    ran = {step_id for step_id, entry in scope["steps"].items() if not entry.get("skipped")}
    return render(call.get("input", {}), scope, absent=step_ids - ran)


# --- parallel branches (run as tasks of their own, on any worker) ----------------------------


class BranchContext:
    """What an action inside a parallel branch gets as ``ctx``: the run's identity and a stable
    idempotency key per step (branches have no journal of their own steps)."""

    def __init__(self, scope: Scope, step_id: str) -> None:
        self.run_id = scope["run"]["id"]
        self.correlation_id = scope["run"]["correlation_id"]
        self.input = scope["input"]
        self.current_step_id = step_id

    def idempotency_key(self, step_id: str) -> str:
        return f"{self.run_id}:{step_id}"


ActionCall = Callable[[dict[str, Any], Any, Any, Scope], Any]


def run_branch(branch: list[dict[str, Any]], scope: Scope) -> dict[str, Any]:
    """One branch of a parallel step: its action steps in order. Returns
    ``{step_id: {"output", "skipped"}}``. A failure fails the branch (retried as a whole)."""
    return run_branch_steps(branch, scope, _call_action)


def _call_action(step: dict[str, Any], input: Any, ctx: Any, scope: Scope) -> Any:
    spec = registry.get_action(step["action"])
    fn = spec.invoke
    if uses_secrets(step.get("input", {})):
        fn = with_secrets(spec.name, step["input"], scope)
    fn = attempts.intercepted(step["id"], fn)
    return journal.to_json(fn(input, ctx), f"the result of step {step['id']!r}")


def run_branch_steps(
    branch: list[dict[str, Any]],
    scope: Scope,
    call: ActionCall,
    trace: Callable[..., None] | None = None,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for step in branch:
        step_id = step["id"]
        try:
            taken = "if" not in step or condition_holds(step["if"], scope)
            input = render(step.get("input", {}), scope) if taken else None
        except (matching.ExpressionError, TemplateError) as exc:
            raise DefinitionRuntimeError(f"step {step_id!r}: {exc}") from None
        if trace is not None:
            trace(step, taken, input)
        if taken:
            output = call(step, input, BranchContext(scope, step_id), scope)
            entry = {"output": output, "skipped": False}
        else:
            entry = {"output": None, "skipped": True}
        scope["steps"][step_id] = entry
        results[step_id] = entry
    return results
