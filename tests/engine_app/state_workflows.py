"""Small workflows for the model-based test of run states (tests/engine/test_run_state_machine.py).

Every step they run appends ``(key, what)`` to ``EXECUTIONS`` (the test drives the engine in its
own thread), so the test counts real executions: of each step, and of each compensation and its
order. ``key`` is the run's input key; a child run's key is its parent's with "-kid".
"""

from __future__ import annotations

from typing import Any

from automation import workflow

EXECUTIONS: list[tuple[str, str]] = []
#: The steps each workflow undoes when it fails or is cancelled, in the order they complete.
COMPENSATED = {"sm-saga": ["charge", "reserve"], "sm-child": ["before"]}
APPROVERS = "group:sm-approvers"


def act(key: str, what: str) -> dict[str, str]:
    EXECUTIONS.append((key, what))
    return {"key": key, "did": what}


def undo(output: dict[str, str]) -> None:
    EXECUTIONS.append((output["key"], f"undo:{output['did']}"))


def ship(key: str) -> dict[str, str]:
    """The test replaces this step with a fake that fails for the runs it marks broken."""
    return act(key, "ship")


@workflow("sm-sequence")
def sequence(ctx: Any, event: Any) -> str:
    key = event.data["key"]
    ctx.step("one", act, key, "one")
    ctx.sleep("pause", "30m")
    ctx.step("two", act, key, "two")
    return "done"


@workflow("sm-saga")
def saga(ctx: Any, event: Any) -> str:
    key = event.data["key"]
    ctx.step("charge", act, key, "charge", compensate=undo)
    ctx.step("reserve", act, key, "reserve", compensate=undo)
    ctx.step("ship", ship, key, retry={"max_attempts": 1})
    return "shipped"


@workflow("sm-approval")
def approval(ctx: Any, event: Any) -> str:
    key = event.data["key"]
    outcome = ctx.approval(
        "ok",
        title=f"Approve {key}?",
        assignees=[APPROVERS],
        quorum=event.data.get("quorum", 1),
        timeout="1h",
        on_timeout=event.data.get("on_timeout", "reject"),
    )
    ctx.step("after", act, key, "after")
    return outcome["decision"]


@workflow("sm-wait")
def wait(ctx: Any, event: Any) -> bool:
    key = event.data["key"]
    got = ctx.wait_for_event(
        "reply", "sm.reply", match={"key": key}, timeout="1h", lookback=event.data.get("lookback")
    )
    ctx.step("after", act, key, "after")
    return bool(got)


@workflow("sm-parallel")
def parallel(ctx: Any, event: Any) -> list[Any]:
    key = event.data["key"]
    return ctx.parallel("fan", [(act, key, "left"), (act, key, "right")])


@workflow("sm-child")
def child(ctx: Any, event: Any) -> Any:
    key = event.data["key"]
    ctx.step("before", act, key, "before", compensate=undo)
    return ctx.child("kid", "sm-wait", {"key": f"{key}-kid"})
