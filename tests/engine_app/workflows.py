"""Workflows exercising engine behaviour. Steps that must be counted append a line per real
execution to ``<DATA_DIR>/executions.log``, which every process of a test run shares."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from django.conf import settings

from automation import Concurrency, NonRetryableError, workflow


def log_execution(tag: str) -> None:
    with (Path(settings.DATA_DIR) / "executions.log").open("a") as handle:
        handle.write(f"{tag} {os.getpid()}\n")


def executions(tag: str) -> int:
    path = Path(settings.DATA_DIR) / "executions.log"
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.split()[0] == tag)


def slow_step(run_key: str, seconds: float) -> dict[str, Any]:
    log_execution(f"start:{run_key}")
    time.sleep(seconds)
    log_execution(f"end:{run_key}")
    return {"pid": os.getpid()}


def whoami(seconds: float) -> dict[str, Any]:
    time.sleep(seconds)
    return {"pid": os.getpid()}


def noop() -> None:
    return None


def always_fails(message: str) -> None:
    raise ValueError(message)


def refuse(message: str) -> None:
    raise NonRetryableError(message)


def returns_a_set() -> Any:
    return {1, 2}


@workflow("test-slow", on="test.slow")
def slow(ctx: Any, event: Any) -> dict[str, Any]:
    result = ctx.step("slow", slow_step, event.data["key"], event.data.get("seconds", 3))
    return {"worker_pid": result["pid"]}


@workflow("test-sleep", on="test.sleep")
def sleeper(ctx: Any, event: Any) -> dict[str, Any]:
    before = ctx.now()
    ctx.sleep("nap", event.data.get("duration", "2s"))
    after = ctx.now()
    return {"slept": (after - before).total_seconds()}


@workflow("test-wait", on="test.wait")
def waiter(ctx: Any, event: Any) -> dict[str, Any]:
    got = ctx.wait_for_event(
        "reply",
        "test.reply",
        match={"key": event.data["key"]},
        timeout=event.data.get("timeout", "1h"),
        lookback=event.data.get("lookback"),
    )
    return {"timed_out": not got, "reply": got["data"] if got else None}


@workflow("test-wait-cel", on="test.wait_cel")
def waiter_cel(ctx: Any, event: Any) -> dict[str, Any]:
    got = ctx.wait_for_event("big", "test.reading", match="event.data.value > 100", timeout="1h")
    return {"value": got["data"]["value"] if got else None}


@workflow("test-parallel", on="test.parallel")
def parallel(ctx: Any, event: Any) -> list[Any]:
    seconds = event.data.get("seconds", 1)
    return ctx.parallel("fan", [(whoami, seconds), (whoami, seconds)])


@workflow("test-parallel-fails", on="test.parallel_fails")
def parallel_fails(ctx: Any, event: Any) -> list[Any]:
    return ctx.parallel("fan", [(whoami, 0), (refuse, "branch broke")])


@workflow("test-noop", on="test.noop")
def three_noops(ctx: Any, event: Any) -> None:
    ctx.step("one", noop)
    ctx.step("two", noop)
    ctx.step("three", noop)


@workflow("test-bad-result")
def bad_result(ctx: Any, event: Any) -> None:
    ctx.step("set", returns_a_set)


#: What a step may return that JSON holds but no database reads back (by ``kind`` in the input).
UNSTORABLE = {"nan": float("nan"), "infinity": float("inf"), "surrogate": "a\ud800b"}


@workflow("test-unstorable-result")
def unstorable_result(ctx: Any, event: Any) -> None:
    kind = ctx.input["kind"]
    ctx.step("echo", lambda: {"rows": [{"ok": 1}, {"value": UNSTORABLE[kind]}]})


@workflow("test-duplicate-id")
def duplicate_id(ctx: Any, event: Any) -> None:
    ctx.step("same", noop)
    ctx.step("same", noop)


@workflow("test-body-raises")
def body_raises(ctx: Any, event: Any) -> None:
    ctx.step("fine", noop)
    raise RuntimeError("the workflow code itself is broken")


@workflow("test-retry", retry={"max_attempts": 3, "initial": "10s", "backoff": "exponential"})
def retrying(ctx: Any, event: Any) -> None:
    ctx.step("flaky", always_fails, "boom")


@workflow("test-non-retryable")
def non_retryable(ctx: Any, event: Any) -> None:
    ctx.step("refused", refuse, "bad input")


@workflow("test-step-timeout")
def step_timeout(ctx: Any, event: Any) -> None:
    ctx.step("slow", whoami, 2, timeout="200ms", retry={"max_attempts": 1})


@workflow("test-run-timeout", timeout="1h")
def run_timeout(ctx: Any, event: Any) -> None:
    ctx.sleep("long", "2h")


@workflow("test-one-per-customer", concurrency=Concurrency(limit=1, key="customer"))
def one_per_customer(ctx: Any, event: Any) -> None:
    ctx.sleep("hold", "1h")


@workflow("test-skip-when-busy", concurrency=Concurrency(limit=1, key="customer", on_limit="skip"))
def skip_when_busy(ctx: Any, event: Any) -> None:
    ctx.sleep("hold", "1h")


@workflow(
    "test-latest-wins",
    concurrency=Concurrency(limit=1, key="customer", on_limit="cancel_previous"),
)
def latest_wins(ctx: Any, event: Any) -> None:
    ctx.sleep("hold", "1h")


def record_failure(ctx: Any, error: dict[str, Any]) -> dict[str, Any]:
    return {"alerted": error.get("step")}


@workflow("test-on-failure", on_failure=record_failure)
def with_on_failure(ctx: Any, event: Any) -> None:
    ctx.step("refused", refuse, "no")


@workflow("test-values")
def values(ctx: Any, event: Any) -> dict[str, Any]:
    first = ctx.uuid()
    ctx.sleep("pause", "1m")
    return {"uuid": str(first), "now": ctx.now().isoformat()}


@workflow("test-wildcard", on="audit.*", filter='trigger.data.user != "system"')
def wildcard(ctx: Any, event: Any) -> str:
    return event.type


@workflow("test-reserved-id")
def reserved_id(ctx: Any, event: Any) -> None:
    ctx.step("compensate:charge", noop)


@workflow("test-quorum")
def quorum(ctx: Any, event: Any) -> dict[str, Any]:
    return ctx.approval("ok", title="Two managers", assignees=["group:managers"], quorum=2)


@workflow("test-four-eyes")
def four_eyes(ctx: Any, event: Any) -> dict[str, Any]:
    return ctx.approval("ok", title="Not your own", assignees=["group:managers"], four_eyes=True)


@workflow("test-escalate")
def escalate(ctx: Any, event: Any) -> dict[str, Any]:
    return ctx.approval(
        "ok",
        title="Escalates",
        assignees=["group:managers"],
        timeout="1h",
        on_timeout="escalate",
        escalate_to=["group:directors"],
        escalation_timeout="2h",
    )


@workflow("test-delegated-purchase", on="test.purchase")
def delegated_purchase(ctx: Any, event: Any) -> dict[str, Any]:
    """Search attributes, a guarded change and an approval with a form and a reminder: the
    three additions of issue 18 (items 6-8) on one run, for the worker tests."""
    ctx.set_search_attributes({"customer": event.data["customer"]})
    checked = ctx.patched("budget-check")
    if checked:
        ctx.step("budget", noop)
    decision = ctx.approval(
        "ok",
        title=f"Buy for {event.data['customer']}?",
        assignees=["user:ann"],
        timeout="1h",
        remind_before="59m59s",
        fields=[{"name": "amount", "type": "number", "required": True}],
    )
    ctx.set_search_attributes({"stage": decision["decision"]})
    return {"checked": checked, "decision": decision}


def charge_card() -> str:
    logging.getLogger("tests.engine_app.charge").info("charging the card")
    return "charged"


@workflow("test-logging", on="test.logging")
def logs_from_a_step(ctx: Any, event: Any) -> None:
    ctx.step("charge", charge_card)


from tests.engine_app import state_workflows  # noqa: E402, F401  (registers the sm-* workflows)

# --- waits for any or all of several events, signals and queries ---------------------------


def _either(key: str) -> list[dict[str, Any]]:
    return [
        {"event": "test.paid", "match": {"key": key}},
        {"event": "test.voided", "match": {"key": key}},
    ]


@workflow("test-wait-any", on="test.wait-any")
def wait_any(ctx: Any, event: Any) -> dict[str, Any]:
    key, timeout = event.data["key"], event.data.get("timeout", "1h")
    got = ctx.wait_for_events("either", any=_either(key), timeout=timeout)
    return {"timed_out": not got, "arrived": got["arrived"], "events": got["events"]}


@workflow("test-wait-all", on="test.wait-all")
def wait_all(ctx: Any, event: Any) -> dict[str, Any]:
    key, timeout = event.data["key"], event.data.get("timeout", "1h")
    got = ctx.wait_for_events("both", all=_either(key), timeout=timeout)
    return {"timed_out": not got, "arrived": got["arrived"], "events": got["events"]}


@workflow("test-signal", on="test.signal")
def wait_signal(ctx: Any, event: Any) -> dict[str, Any]:
    first = ctx.wait_for_signal("first", "go", timeout=event.data.get("timeout", "1h"))
    if not first:
        return {"timed_out": True}
    second = ctx.wait_for_signal("second", "go", timeout="1h")
    return {"timed_out": False, "first": first["data"], "second": second["data"]}


@workflow.query(wait_signal)
def progress(run: Any) -> dict[str, Any]:
    """Which signals the run has taken so far."""
    return {"status": run.status, "taken": sorted(run.steps)}


@workflow.query(wait_signal, name="step-output")
def step_output(run: Any, step: str = "first") -> Any:
    return run.steps.get(step)


@workflow.query(wait_signal, name="slow")
def slow_answer(run: Any) -> str:
    time.sleep(float(run.input.get("query_sleep", 0)))
    return "late"


@workflow.query(wait_signal)
def broken(run: Any) -> Any:
    return run.input["no-such-key"]


@workflow.query(wait_signal)
def huge(run: Any) -> str:
    return "x" * int(run.input.get("query_bytes", 10))


@workflow.query("test-signal", name="meddle")
def meddle(run: Any) -> None:
    run.steps["first"] = "forged"  # a read-only mapping: refused
