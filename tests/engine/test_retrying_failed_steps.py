"""Retrying: a run retried from its failed step (its unfinished branches, its full attempt
budget, failures the workflow handled itself left alone) and branches that honour the
non-retryable classes of their policy. Each scenario used to leave a run stuck or wrong."""

from __future__ import annotations

import pytest

from automation import NonRetryableError, workflow
from automation.commands import run_retry
from automation.engine import registry
from automation.models import StepRecord

pytestmark = pytest.mark.django_db

STATE: dict = {"a_fail": True, "b_calls": 0}
FLAKY = {"broken": True}


def book() -> dict:
    return {"booking": 1}


def always_fails() -> None:
    raise ValueError("boom")


def branch_a() -> str:
    if STATE["a_fail"]:
        raise NonRetryableError("a is broken")
    return "a"


def branch_b() -> str:
    STATE["b_calls"] += 1
    if STATE["b_calls"] == 1:
        raise ValueError("b flaky once")
    return "b"


def optional_fn() -> str:
    if FLAKY["broken"]:
        raise NonRetryableError("optional service down")
    return "ok"


def last_fn() -> str:
    if FLAKY["broken"]:
        raise NonRetryableError("last broken")
    return "done"


@workflow("review-parallel")
def parallel_wf(ctx, event):
    return ctx.parallel("fan", [branch_a, branch_b], retry={"max_attempts": 3, "initial": "10s"})


@workflow("review-retry-once", retry={"max_attempts": 3, "initial": "1s"})
def retry_once(ctx, event):
    return ctx.step("flaky", always_fails)


@workflow("review-caught")
def caught(ctx, event):
    from automation import StepFailed

    try:
        ctx.step("optional", optional_fn)
    except StepFailed:
        ctx.step("fallback", book)  # the workflow handled this failure itself
    return ctx.step("last", last_fn)


def raises_key_error() -> None:
    raise KeyError("no such customer")


@workflow("review-parallel-nonretryable")
def parallel_nonretryable(ctx, event):
    return ctx.parallel(
        "fan", [raises_key_error], retry={"max_attempts": 3, "non_retryable": [KeyError]}
    )


@pytest.fixture(autouse=True)
def _fresh():
    registry.sync_code_workflows(force=True)
    STATE.update(a_fail=True, b_calls=0)


def test_retry_after_a_parallel_step_failed_fast_reruns_the_unfinished_branches(workflow_harness):
    run = workflow_harness.start("review-parallel", {})
    workflow_harness.drain()
    assert workflow_harness.refresh(run).status == "failed"
    STATE["a_fail"] = False  # the cause is fixed; retry from the failed step
    workflow_harness._committed(run_retry, run=run)
    workflow_harness.run_until_idle()
    assert workflow_harness.result(run) == ["a", "b"]


def test_retry_from_the_failed_step_gets_the_full_attempt_budget(workflow_harness):
    run = workflow_harness.start("review-retry-once", {})
    workflow_harness.run_until_idle()
    assert workflow_harness.calls["flaky"] == 3
    workflow_harness._committed(run_retry, run=run)
    workflow_harness.run_until_idle()
    assert workflow_harness.refresh(run).status == "failed"
    assert workflow_harness.calls["flaky"] == 6


def test_retry_leaves_failures_the_workflow_handled_alone(workflow_harness):
    FLAKY["broken"] = True
    run = workflow_harness.refresh(workflow_harness.start("review-caught", {}))
    assert run.error["step"] == "last"
    FLAKY["broken"] = False  # the cause of "last" is fixed
    workflow_harness._committed(run_retry, run=run)
    workflow_harness.run_until_idle()
    assert workflow_harness.result(run) == "done"
    assert run.steps.get(step_id="optional").status == "failed"


def test_parallel_branches_honour_non_retryable_classes(workflow_harness):
    run = workflow_harness.start("review-parallel-nonretryable", {})
    workflow_harness.run_until_idle()
    branch = StepRecord.objects.get(run=workflow_harness.refresh(run), step_id="fan[0]")
    assert branch.attempt == 1
    assert run.status == "failed"
