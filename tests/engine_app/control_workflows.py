"""Workflows for pausing, resuming and rerunning runs: each step counts its real executions
(``executions("<step>:<key>")``), in every process of a test run."""

from __future__ import annotations

from typing import Any

from automation import workflow
from tests.engine_app.workflows import executions, log_execution, slow_step


def counted(key: str, step: str) -> int:
    log_execution(f"{step}:{key}")
    return executions(f"{step}:{key}")


@workflow("test-control", on="test.control")
def controlled(ctx: Any, event: Any) -> dict[str, Any]:
    """first, a nap, second, third: the nap is the wait a paused run keeps."""
    key = event.data["key"]
    first = ctx.step("first", counted, key, "first")
    ctx.sleep("nap", event.data.get("nap", "1h"))
    second = ctx.step("second", counted, key, "second")
    third = ctx.step("third", counted, key, "third")
    return {"first": first, "second": second, "third": third}


@workflow("test-control-slow", on="test.control_slow")
def slow_then_more(ctx: Any, event: Any) -> dict[str, Any]:
    """A slow step, then another: a run paused during the slow one stops before "after"."""
    key = event.data["key"]
    ctx.step("slow", slow_step, key, event.data.get("seconds", 2))
    return {"after": ctx.step("after", counted, key, "after")}
