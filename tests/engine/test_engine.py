"""Engine guarantees and failure modes, through the time-skipping harness."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError

from automation import workflow
from automation.commands import run_retry
from automation.engine import executor, registry
from automation.engine.errors import UnknownWorkflow, WorkflowError
from automation.engine.runs import run_cancel
from automation.models import Run, StepRecord, Timer, Wait
from tests.engine_app.workflows import executions

pytestmark = pytest.mark.django_db


def start(harness, name, data=None):
    return harness.start(name, data or {})


def test_a_redelivered_advance_message_does_nothing(workflow_harness):
    run = start(workflow_harness, "test-noop")
    assert workflow_harness.result(run) is None
    assert executor.run_advance(run.id) == "not pending"
    assert run.steps.count() == 3


def test_a_step_result_is_recorded_once_per_run_and_step(workflow_harness):
    run = start(workflow_harness, "test-noop")
    with pytest.raises(IntegrityError):
        StepRecord.objects.create(run=run, step_id="one", status="succeeded")


def test_a_result_that_is_not_json_fails_the_run_saying_so(workflow_harness):
    run = workflow_harness.refresh(start(workflow_harness, "test-bad-result"))
    assert run.status == "failed"
    assert run.error["step"] == "set"
    assert "not JSON-serialisable" in run.error["message"]
    assert run.error["retryable"] is False


@pytest.mark.parametrize(
    ("kind", "problem"),
    [("nan", "NaN, Infinity"), ("infinity", "NaN, Infinity"), ("surrogate", "lone surrogate")],
)
def test_a_result_no_database_can_read_back_fails_the_run_naming_its_path(
    workflow_harness, kind, problem
):
    run = start(workflow_harness, "test-unstorable-result", {"kind": kind})
    run = workflow_harness.refresh(run)
    assert run.status == "failed"
    assert run.error["step"] == "echo"
    assert "cannot be stored: rows[1].value:" in run.error["message"]
    assert problem in run.error["message"]
    assert run.error["retryable"] is False


def test_a_large_event_becomes_the_run_input_unchanged(workflow_harness):
    data = {"a": list(range(30_000)), "text": "caf\u00e9 \U0001f600", "n": {"x": 1.5}}
    run = workflow_harness.refresh(start(workflow_harness, "test-noop", data))
    assert run.input == data
    assert workflow_harness.result(run) is None


def test_a_duplicate_step_id_fails_the_run_naming_it(workflow_harness):
    run = workflow_harness.refresh(start(workflow_harness, "test-duplicate-id"))
    assert run.status == "failed"
    assert "duplicate step id 'same'" in run.error["message"]


def test_a_workflow_body_that_raises_fails_with_its_traceback(workflow_harness):
    run = workflow_harness.refresh(start(workflow_harness, "test-body-raises"))
    assert run.status == "failed"
    assert run.error["step"] == "(workflow)"
    assert run.error["type"] == "RuntimeError"
    assert "the workflow code itself is broken" in run.error["traceback"]


def test_unknown_workflow_is_refused_with_the_known_names():
    from automation.engine.runs import run_start

    with pytest.raises(UnknownWorkflow, match="no workflow named 'nope'"):
        run_start(workflow="nope")


def test_retries_back_off_exponentially_and_are_timer_rows(workflow_harness):
    run = start(workflow_harness, "test-retry")
    step = run.steps.get(step_id="flaky")
    assert (step.status, step.attempt) == ("waiting", 1)
    timer = Timer.objects.get(run=run, fired_at__isnull=True)
    first_delay = (timer.due_at - step.finished_at).total_seconds()
    assert 8 <= first_delay <= 12  # 10 s ± 20 % jitter

    workflow_harness.advance_time(timer.due_at - step.finished_at)
    step.refresh_from_db()
    second = Timer.objects.get(run=run, fired_at__isnull=True)
    assert 16 <= (second.due_at - step.finished_at).total_seconds() <= 24  # 20 s ± 20 %

    workflow_harness.run_until_idle()
    run = workflow_harness.refresh(run)
    assert run.status == "failed"
    assert run.error["attempt"] == 3
    step.refresh_from_db()
    assert [a["attempt"] for a in step.attempts] == [1, 2, 3]


def test_a_non_retryable_error_fails_at_once(workflow_harness):
    run = workflow_harness.refresh(start(workflow_harness, "test-non-retryable"))
    assert run.status == "failed"
    assert run.steps.get(step_id="refused").attempt == 1
    assert run.error["retryable"] is False


def test_a_step_over_its_timeout_fails_with_step_timeout(workflow_harness):
    run = workflow_harness.refresh(start(workflow_harness, "test-step-timeout"))
    assert run.status == "failed"
    assert run.error["type"] == "StepTimeout"


def test_the_run_timeout_fails_a_run_still_active_at_its_deadline(workflow_harness):
    run = start(workflow_harness, "test-run-timeout")
    workflow_harness.run_until_idle()
    run = workflow_harness.refresh(run)
    assert run.status == "failed"
    assert "deadline" in run.error["message"]


def test_on_failure_runs_after_the_failure(workflow_harness):
    run = workflow_harness.refresh(start(workflow_harness, "test-on-failure"))
    assert run.status == "failed"
    assert run.steps.get(step_id="on_failure").output == {"alerted": "refused"}


def test_recorded_values_are_the_same_on_every_replay(workflow_harness):
    run = start(workflow_harness, "test-values")
    first_uuid = run.steps.get(step_id="uuid#1").output
    workflow_harness.run_until_idle()
    assert workflow_harness.result(run)["uuid"] == first_uuid


def test_changed_code_under_a_running_run_fails_it_naming_both_steps(workflow_harness):
    @workflow("test-drifting")
    def original(ctx, event):
        ctx.step("validate", executions, "x")
        ctx.sleep("pause", "1h")

    registry.sync_code_workflows(force=True)
    run = start(workflow_harness, "test-drifting")
    assert workflow_harness.refresh(run).status == "waiting"

    spec = registry.get_workflow("test-drifting", 1)

    def changed(ctx, event):
        ctx.step("charge", executions, "x")
        ctx.sleep("pause", "1h")

    spec.fn = changed
    try:
        workflow_harness.run_until_idle()
    finally:
        del registry._workflows[("test-drifting", 1)]
    run = workflow_harness.refresh(run)
    assert run.status == "failed"
    assert run.error["type"] == "DeterminismError"
    assert "'validate'" in run.error["message"]
    assert "'charge'" in run.error["message"]


def test_a_run_whose_version_left_the_code_fails_clearly(workflow_harness):
    @workflow("test-vanishing", version=1)
    def vanishing(ctx, event):
        ctx.sleep("pause", "1h")

    registry.sync_code_workflows(force=True)
    run = start(workflow_harness, "test-vanishing")

    @workflow("test-vanishing", version=2)
    def vanishing_v2(ctx, event):
        return None

    del registry._workflows[("test-vanishing", 1)]  # v2 shipped, v1 removed too early
    try:
        workflow_harness.run_until_idle()
    finally:
        del registry._workflows[("test-vanishing", 2)]
    run = workflow_harness.refresh(run)
    assert run.status == "failed"
    assert "version 1 is not in the code any more (registered versions: 2)" in run.error["message"]


def test_cancel_ends_the_wait_and_compensates(workflow_harness):
    from examples import actions

    workflow_harness.emit("example.user.signed_up", {"email": "c@example.com", "plan": "pro"})
    run = Run.objects.get(workflow__name="example-onboarding")
    assert workflow_harness.result(run)  # finished: cancel refused
    with pytest.raises(WorkflowError, match="already finished"):
        run_cancel(run=run)

    run = start(workflow_harness, "test-wait", {"key": "k"})
    assert workflow_harness.refresh(run).status == "waiting"
    workflow_harness._committed(run_cancel, run=run)
    workflow_harness.drain()
    run = workflow_harness.refresh(run)
    assert run.status == "cancelled"
    assert Wait.objects.get(run=run).status == "cancelled"
    assert not Timer.objects.filter(run=run, fired_at__isnull=True).exists()
    assert actions.LEDGER  # the example's effects are visible to the demo


def test_waits_match_exactly_by_path_or_by_cel(workflow_harness):
    exact = start(workflow_harness, "test-wait", {"key": "a"})
    cel = start(workflow_harness, "test-wait-cel")
    workflow_harness.emit("test.reading", {"value": 50})
    workflow_harness.emit("test.reply", {"key": "b"})
    assert workflow_harness.refresh(exact).status == "waiting"
    assert workflow_harness.refresh(cel).status == "waiting"
    workflow_harness.emit("test.reading", {"value": 150})
    workflow_harness.emit("test.reply", {"key": "a", "answer": 42})
    assert workflow_harness.result(cel) == {"value": 150}
    assert workflow_harness.result(exact) == {
        "timed_out": False,
        "reply": {"key": "a", "answer": 42},
    }


def test_an_event_that_arrived_before_the_wait_is_found_by_the_lookback(workflow_harness):
    workflow_harness.emit("test.reply", {"key": "early", "answer": 1})
    run = start(workflow_harness, "test-wait", {"key": "early"})
    assert workflow_harness.result(run) == {
        "timed_out": False,
        "reply": {"key": "early", "answer": 1},
    }


def test_an_event_older_than_the_lookback_is_not_used(workflow_harness):
    workflow_harness.emit("test.reply", {"key": "old"})
    run = start(workflow_harness, "test-wait", {"key": "old", "lookback": 0, "timeout": "1m"})
    workflow_harness.run_until_idle()
    assert workflow_harness.result(run) == {"timed_out": True, "reply": None}


def test_a_failing_branch_fails_the_parallel_step_fast(workflow_harness):
    run = workflow_harness.refresh(start(workflow_harness, "test-parallel-fails"))
    assert run.status == "failed"
    assert run.error["step"] == "fan"
    assert run.error["branch"] == "fan[1]"
    assert "branch broke" in run.error["message"]


def test_concurrency_limit_queues_then_starts_the_next_run(workflow_harness):
    first = start(workflow_harness, "test-one-per-customer", {"customer": "acme"})
    second = start(workflow_harness, "test-one-per-customer", {"customer": "acme"})
    other = start(workflow_harness, "test-one-per-customer", {"customer": "globex"})
    assert workflow_harness.refresh(second).queued
    assert workflow_harness.refresh(other).status == "waiting"
    workflow_harness.run_until_idle()
    for run in (first, second, other):
        assert workflow_harness.refresh(run).status == "succeeded"
    assert (
        workflow_harness.refresh(second).started_at >= workflow_harness.refresh(first).finished_at
    )


def test_concurrency_limit_can_skip_or_cancel_previous(workflow_harness):
    start(workflow_harness, "test-skip-when-busy", {"customer": "acme"})
    skipped = workflow_harness.refresh(
        start(workflow_harness, "test-skip-when-busy", {"customer": "acme"})
    )
    assert skipped.status == "cancelled"
    assert "skipped" in skipped.error["message"]

    old = start(workflow_harness, "test-latest-wins", {"customer": "acme"})
    new = start(workflow_harness, "test-latest-wins", {"customer": "acme"})
    assert workflow_harness.refresh(old).status == "cancelled"
    assert workflow_harness.refresh(new).status == "waiting"


def test_retry_resumes_from_the_failed_step_and_redoes_compensated_ones(workflow_harness):
    from examples import actions

    actions.LEDGER.clear()
    workflow_harness.emit("example.trip.requested", {"destination": "Rome", "fail": "car"})
    run = Run.objects.get(workflow__name="example-trip-booking")
    assert workflow_harness.refresh(run).status == "failed"
    with pytest.raises(WorkflowError, match="only failed runs"):
        run_retry(run=start(workflow_harness, "test-wait", {"key": "waiting"}))
    # After the fix (here: the car is available now), retry from the failed step.
    run.input = {**run.input, "fail": None}
    run.trigger_event.data = run.input
    run.trigger_event.save()
    workflow_harness._committed(run_retry, run=run)
    workflow_harness.drain()
    assert workflow_harness.result(run)["bookings"] == ["flight-Rome", "hotel-Rome", "car-Rome"]
    # The saga had cancelled the flight and hotel, so the retry books them again.
    assert actions.LEDGER["book-flight"] == ["Rome", "Rome"]
    assert actions.LEDGER["cancel-flight"] == ["flight-Rome"]


def test_a_retried_step_gets_a_fresh_attempt_budget(workflow_harness):
    workflow_harness.emit("example.record.changed", {"id": "budget", "failures": 99})
    run = Run.objects.get(workflow__name="example-crm-sync")
    workflow_harness.run_until_idle()
    assert workflow_harness.refresh(run).status == "failed"
    assert workflow_harness.calls["sync"] == 4
    workflow_harness._committed(run_retry, run=run)
    workflow_harness.run_until_idle()
    assert workflow_harness.refresh(run).status == "failed"  # still rate limited …
    assert workflow_harness.calls["sync"] == 8  # … after the policy's 4 attempts again
    history = run.steps.get(step_id="sync").attempts
    assert [entry["error"]["type"] for entry in history].count("Retried") == 1


def test_a_run_taken_back_from_a_dead_worker_reexecutes_the_step_and_counts_it(
    workflow_harness, clock
):
    from automation.engine import leases

    run = workflow_harness._committed(
        __import__("automation.engine.runs", fromlist=["run_start"]).run_start,
        workflow="test-noop",
    )
    workflow_harness.backend.queue.clear()  # the advance message is "lost with the worker"
    assert leases.claim(run.id, "dead-worker")
    StepRecord.objects.create(run=run, step_id="one", seq=0, status="running", attempt=1)

    clock.advance(timedelta(minutes=5))  # the dead worker's lease expires
    workflow_harness.tick()
    run = workflow_harness.refresh(run)
    assert run.status == "succeeded"
    assert run.recoveries == 1
    one = run.steps.get(step_id="one")
    assert one.attempt == 2
    assert one.attempts[0]["error"]["type"] == "WorkerLost"


def test_a_run_that_keeps_killing_its_workers_is_dead_lettered(workflow_harness, clock, settings):
    from automation.engine import leases
    from automation.engine.runs import run_start

    settings.AUTOMATION_MAX_RECOVERIES = 2
    run = workflow_harness._committed(run_start, workflow="test-noop")
    workflow_harness.backend.queue.clear()
    for _ in range(3):
        Run.objects.filter(id=run.id).update(status="pending")
        assert leases.claim(run.id, "doomed-worker")
        clock.advance(timedelta(minutes=5))
        workflow_harness._committed(
            __import__("automation.engine.sweeps", fromlist=["x"]).runs_recover
        )
        workflow_harness.backend.queue.clear()
    run = workflow_harness.refresh(run)
    assert run.status == "failed"
    assert run.error["type"] == "DeadLetter"


def test_workflow_versions_are_immutable(workflow_harness):
    from automation.models import WorkflowVersion

    registry.sync_code_workflows(force=True)
    version = WorkflowVersion.objects.get(workflow__name="test-noop")
    version.trigger_event = "changed"
    with pytest.raises(ValueError, match="immutable"):
        version.save()


def test_a_wildcard_trigger_with_a_filter_starts_once_per_matching_event(workflow_harness):
    events = [
        ("audit.login", "ada"),
        ("audit.logout", "ada"),
        ("audit.login", "system"),  # filtered out
        ("auditor.hired", "ada"),  # another type
    ]
    for event_type, user in events:
        workflow_harness.emit(event_type, {"user": user})
    runs = Run.objects.filter(workflow__name="test-wildcard")
    assert sorted(run.output for run in runs) == ["audit.login", "audit.logout"]
    from events.routing import event_route

    event = runs[0].trigger_event
    # Routing the same event again (a redelivered task, a sweep) starts nothing new.
    type(event).objects.filter(id=event.id).update(routed_at=None)
    workflow_harness._committed(event_route, event_id=event.id)
    assert Run.objects.filter(workflow__name="test-wildcard").count() == 2


def test_branches_still_queued_when_the_run_is_cancelled_are_dropped(workflow_harness, clock):
    from automation.engine import branches, executor
    from automation.engine.runs import run_start

    run = workflow_harness._committed(run_start, workflow="test-parallel", input={"seconds": 0})
    queue = workflow_harness.backend.queue
    workflow_harness._committed(executor.run_advance, queue.popleft()[1][0])
    branch_messages = list(queue)  # both branches dispatched, neither run yet
    queue.clear()
    assert len(branch_messages) == 2

    workflow_harness._committed(run_cancel, run=run)
    workflow_harness.drain()
    assert workflow_harness.refresh(run).status == "cancelled"
    assert set(run.steps.filter(kind="branch").values_list("status", flat=True)) == {"cancelled"}

    for _, args in branch_messages:  # the late deliveries do nothing
        assert branches.execute_branch(*args) == "nothing to do"
    clock.advance(timedelta(hours=1))
    workflow_harness.tick()  # and the recovery sweep does not send them again
    assert not queue


def test_a_lost_advance_message_is_sent_again_by_the_sweep(workflow_harness, clock):
    from automation.engine.runs import run_start

    run = workflow_harness._committed(run_start, workflow="test-noop")
    workflow_harness.backend.queue.clear()  # the broker lost it
    workflow_harness.tick()
    assert workflow_harness.refresh(run).status == "pending"  # not yet: it may still arrive
    clock.advance(timedelta(minutes=3))
    workflow_harness.tick()
    assert workflow_harness.refresh(run).status == "succeeded"


def test_step_ids_shaped_like_the_engines_own_are_refused(workflow_harness):
    run = workflow_harness.refresh(start(workflow_harness, "test-reserved-id"))
    assert run.status == "failed"
    assert "reserved for the engine" in run.error["message"]
