"""The replay check (manage.py check_replay) and ctx.patched(): a deploy that changes a
workflow's code is checked against the journals of its runs before it ships, and a change
guarded by ctx.patched() keeps old runs on their old path."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from automation.engine import registry
from automation.models import Run, StepRecord, Timer
from tests.engine_app.workflows import executions, log_execution

pytestmark = pytest.mark.django_db


def charge(tag: str) -> dict[str, str]:
    log_execution(tag)
    return {"charged": tag}


def shipped(ctx, event):
    ctx.step("validate", charge, "validate")
    ctx.sleep("cool-off", "1h")
    ctx.step("ship", charge, "ship")
    return {"done": True}


@pytest.fixture
def replay_workflow():
    """A code workflow "test-replay" v1 whose function a test may swap, as a deploy would."""
    registry.workflow("test-replay")(shipped)
    registry.sync_code_workflows(force=True)
    yield registry.get_workflow("test-replay", 1)
    del registry._workflows[("test-replay", 1)]


def check(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("check_replay", *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code), out.getvalue()
    return 0, out.getvalue()


def snapshot(run: Run) -> tuple:
    run.refresh_from_db()
    steps = list(StepRecord.objects.filter(run=run).values_list("step_id", "status", "output"))
    return run.status, run.waiting_for, steps, Timer.objects.count()


def test_unchanged_code_replays_cleanly_and_runs_nothing(workflow_harness, replay_workflow):
    waiting = workflow_harness.start("test-replay")
    done = workflow_harness.start("test-replay")
    workflow_harness.run_until_idle()
    assert workflow_harness.refresh(done).status == "succeeded"
    before = (executions("validate"), executions("ship"))

    code, out = check("--workflow", "test-replay", "-v", "2")

    assert code == 0
    assert "Checked 2 run(s): 2 replay cleanly, 0 diverge" in out
    assert f"ok run {waiting.id}" in out
    assert (executions("validate"), executions("ship")) == before


def test_a_renamed_step_is_reported_with_its_run_and_step_and_exits_1(
    workflow_harness, replay_workflow
):
    run = workflow_harness.start("test-replay")  # waits in cool-off
    before, validated = snapshot(run), executions("validate")

    def renamed(ctx, event):
        ctx.step("check", charge, "validate")
        ctx.sleep("cool-off", "1h")

    replay_workflow.fn = renamed
    code, out = check()

    assert code == 1
    assert f"DIVERGED run {run.id} (test-replay v1, waiting) at step 'check'" in out
    assert "'validate'" in out
    assert "1 diverge" in out
    assert snapshot(run) == before  # the check changed nothing
    assert executions("validate") == validated


def test_code_that_now_ends_before_a_recorded_step_diverges(workflow_harness, replay_workflow):
    run = workflow_harness.start("test-replay")
    workflow_harness.run_until_idle()
    assert workflow_harness.refresh(run).status == "succeeded"
    shipped_before = executions("ship")

    def shorter(ctx, event):
        ctx.step("validate", charge, "validate")
        ctx.sleep("cool-off", "1h")
        return {"done": True}

    replay_workflow.fn = shorter
    code, out = check("--workflow", "test-replay")

    assert code == 1
    assert "at step 'ship'" in out
    assert "the code now ends before reaching it" in out
    assert executions("ship") == shipped_before


def test_a_new_step_guarded_by_patched_keeps_old_runs_on_the_old_path(
    workflow_harness, replay_workflow
):
    old = workflow_harness.start("test-replay")  # recorded validate, sleeping in cool-off
    frauds = executions("fraud")

    def unguarded(ctx, event):
        ctx.step("validate", charge, "validate")
        ctx.step("fraud-check", charge, "fraud")
        ctx.sleep("cool-off", "1h")
        ctx.step("ship", charge, "ship")
        return {"done": True}

    def guarded(ctx, event):
        ctx.step("validate", charge, "validate")
        if ctx.patched("fraud-check"):
            ctx.step("fraud-check", charge, "fraud")
        ctx.sleep("cool-off", "1h")
        ctx.step("ship", charge, "ship")
        return {"done": True}

    replay_workflow.fn = unguarded
    assert check()[0] == 1  # the check catches the unguarded change before it ships

    replay_workflow.fn = guarded
    assert check() == (0, "Checked 1 run(s): 1 replay cleanly, 0 diverge, 0 skipped.\n")

    new = workflow_harness.start("test-replay")
    workflow_harness.run_until_idle()
    assert workflow_harness.result(old) == {"done": True}
    assert workflow_harness.result(new) == {"done": True}
    assert not old.steps.filter(step_id__in=["fraud-check", "patch:fraud-check"]).exists()
    marker = new.steps.get(step_id="patch:fraud-check")
    assert (marker.kind, marker.seq) == ("marker", None)
    assert new.steps.filter(step_id="fraud-check", status="succeeded").exists()
    assert executions("fraud") == frauds + 1  # the new run only

    assert check() == (0, "Checked 2 run(s): 2 replay cleanly, 0 diverge, 0 skipped.\n")


def test_patched_answers_the_same_for_a_run_on_every_replay(workflow_harness, replay_workflow):
    def twice(ctx, event):
        first = ctx.patched("v2")
        ctx.sleep("nap", "1h")
        return {"first": first, "again": ctx.patched("v2")}

    replay_workflow.fn = twice
    run = workflow_harness.start("test-replay")
    workflow_harness.run_until_idle()
    assert workflow_harness.result(run) == {"first": True, "again": True}
    assert run.steps.filter(kind="marker").count() == 1


def test_a_step_id_in_the_marker_namespace_is_refused(workflow_harness, replay_workflow):
    def clash(ctx, event):
        ctx.step("patch:x", charge, "x")

    replay_workflow.fn = clash
    run = workflow_harness.refresh(workflow_harness.start("test-replay"))
    assert run.status == "failed"
    assert "reserved" in run.error["message"]


def test_since_and_limit_narrow_the_runs_checked(workflow_harness, replay_workflow, clock):
    first = workflow_harness.start("test-replay")
    Run.objects.filter(id=first.id).update(created_at="2026-01-01T00:00:00Z")
    workflow_harness.start("test-replay")
    workflow_harness.start("test-replay")

    assert "Checked 2 run(s)" in check("--since", "2026-06-01")[1]
    assert "Checked 3 run(s)" in check("--since", "2025-12-31T23:00:00+00:00")[1]
    assert "Checked 1 run(s)" in check("--limit", "1")[1]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--since", "last tuesday"], "--since 'last tuesday'"),
        (["--since", "2026-01-31T12:00"], "with its zone"),
        (["--limit", "0"], "--limit must be at least 1"),
        (["--workflow", "no-such-workflow"], "no code workflow of that name"),
    ],
)
def test_bad_options_are_refused_naming_the_option(args, problem, replay_workflow):
    with pytest.raises(CommandError, match=problem):
        call_command("check_replay", *args, stdout=StringIO())


def test_a_run_whose_unfinished_version_left_the_code_diverges(workflow_harness):
    @registry.workflow("test-replay-gone")
    def gone(ctx, event):
        ctx.sleep("nap", "1h")

    registry.sync_code_workflows(force=True)
    try:
        run = workflow_harness.start("test-replay-gone")
    finally:
        del registry._workflows[("test-replay-gone", 1)]
    code, out = check("--workflow", "test-replay-gone")
    assert code == 1
    assert f"DIVERGED run {run.id}" in out
    assert "not in the code" in out or "no code workflow" in out


def test_replay_run_checks_one_run_from_a_test_of_ones_own(workflow_harness, replay_workflow):
    from automation.engine.replaycheck import replay_run

    run = workflow_harness.start("test-replay")
    assert replay_run(run).result == "ok"

    def reordered(ctx, event):
        ctx.sleep("cool-off", "1h")
        ctx.step("validate", charge, "validate")

    replay_workflow.fn = reordered
    outcome = replay_run(run)
    assert (outcome.result, outcome.step) == ("diverged", "cool-off")
