"""Declarative definitions run on the engine: every step kind and modifier, end to end, with
the same journal, retries, compensation and failure handling as code workflows."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from automation import NonRetryableError
from automation.commands import workflow_definition_save
from automation.models import Run, StepRecord


def save(steps: list[dict], **extra: Any) -> str:
    definition = {"name": "wf", "trigger": {"event": "test.go"}, "steps": steps, **extra}
    workflow_definition_save(definition=definition)
    return "wf"


def journal(run: Run) -> dict[str, StepRecord]:
    return {record.step_id: record for record in StepRecord.objects.filter(run=run)}


def echo(input: dict, ctx: Any) -> dict:
    return {"echo": input}


def log(message: str, **extra: Any) -> dict:
    return {"id": "x", "action": "log", "input": {"message": message, **extra}}


def test_actions_pass_outputs_on_with_types_kept(workflow_harness):
    workflow_harness.fake("log", returns=echo)
    save(
        [
            {
                "id": "first",
                "action": "log",
                "input": {
                    "message": "hi {{ trigger.data.who }}",
                    "data": "{{ trigger.data.items }}",
                },
            },
            {
                "id": "second",
                "action": "log",
                "input": {
                    "message": "n={{ steps.first.output.echo.data[1].n }}",
                    "data": "{{ steps.first.output.echo.data[1].n }}",
                },
            },
        ]
    )
    run = workflow_harness.start("wf", {"who": "ada", "items": [{"n": 1}, {"n": 2}]})
    output = workflow_harness.result(run)
    assert output["first"]["echo"] == {"message": "hi ada", "data": [{"n": 1}, {"n": 2}]}
    assert output["second"]["echo"] == {"message": "n=2", "data": 2}
    assert journal(run)["second"].input == {"message": "n=2", "data": 2}


def test_event_data_is_never_evaluated_again(workflow_harness):
    workflow_harness.fake("log", returns=echo)
    save(
        [
            {
                "id": "a",
                "action": "log",
                "input": {
                    "message": "got {{ trigger.data.text }}",
                    "data": "{{ trigger.data.text }}",
                },
            }
        ]
    )
    payload = "{{ 7*7 }} {{ ''.__class__.__mro__ }} {{ cycler.__init__.__globals__ }}"
    workflow_harness.emit("test.go", {"text": payload})
    run = Run.objects.get()
    echoed = workflow_harness.result(run)["a"]["echo"]
    assert echoed == {"message": f"got {payload}", "data": payload}


def test_a_path_that_does_not_resolve_fails_the_step_naming_it(workflow_harness):
    save([{"id": "a", "action": "log", "input": {"message": "{{ trigger.data.user.email }}"}}])
    run = workflow_harness.start("wf", {"user": {}})
    run = workflow_harness.refresh(run)
    assert run.status == "failed"
    assert run.error["step"] == "a"
    assert "{{ trigger.data.user.email }} does not resolve" in run.error["message"]
    assert "trigger.data.user has no 'email'" in run.error["message"]
    assert journal(run)["a"].status == "failed"


def test_if_skips_and_the_journal_shows_the_branch_taken(workflow_harness):
    workflow_harness.fake("log", returns={"ok": True})
    save(
        [
            {
                "id": "big",
                "action": "log",
                "if": "trigger.data.total > 1000",
                "input": {"message": "big"},
            },
            {
                "id": "small",
                "action": "log",
                "if": "trigger.data.total <= 1000",
                "input": {"message": "small"},
            },
        ]
    )
    run = workflow_harness.start("wf", {"total": 5})
    assert workflow_harness.result(run) == {"big": None, "small": {"ok": True}}
    records = journal(run)
    assert records["big"].status == "skipped"
    assert "trigger.data.total > 1000" in records["big"].input["skipped"]
    assert workflow_harness.calls == {"small": 1}


def test_the_trigger_filter_decides_which_events_start_runs(workflow_harness):
    workflow_harness.fake("log", returns={})
    workflow_definition_save(
        definition={
            "name": "filtered",
            "trigger": {"event": "user.*", "filter": 'trigger.data.plan != "internal"'},
            "steps": [log("hi")],
        }
    )
    workflow_harness.emit("user.signed_up", {"plan": "internal"})
    workflow_harness.emit("user.signed_up", {"plan": "pro"})
    assert [run.input["plan"] for run in Run.objects.all()] == ["pro"]


def test_retry_backs_off_then_succeeds(workflow_harness):
    attempts = []

    def flaky(input, ctx):
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("down")
        return {"ok": True}

    workflow_harness.fake("log", returns=flaky)
    save([{**log("x"), "retry": {"max_attempts": 3, "initial": "1m", "backoff": "fixed"}}])
    run = workflow_harness.start("wf")
    assert workflow_harness.refresh(run).status == "waiting"
    workflow_harness.run_until_idle()
    assert workflow_harness.result(run) == {"x": {"ok": True}}
    assert len(journal(run)["x"].attempts) == 2


def test_timeout_fails_an_attempt_that_runs_too_long(workflow_harness):
    workflow_harness.fake("log", returns=lambda input, ctx: time.sleep(3))
    save([{**log("x"), "timeout": "200ms", "retry": {"max_attempts": 1}}])
    run = workflow_harness.refresh(workflow_harness.start("wf"))
    assert run.status == "failed"
    assert run.error["type"] == "StepTimeout"


def test_compensate_in_reverse_then_on_failure(workflow_harness):
    undone = []
    workflow_harness.fake("flight", returns={"ref": "F1"})
    workflow_harness.fake("hotel", returns={"ref": "H1"})
    workflow_harness.fake("car", raises=NonRetryableError("sold out"))
    workflow_harness.fake(
        "log", returns=lambda input, *ctx: undone.append(input["message"]) or {"done": True}
    )
    book = {"action": "log", "input": {"message": "book"}}

    def cancel(step: str) -> dict:
        return {"action": "log", "input": {"message": f"cancel {{{{ steps.{step}.output.ref }}}}"}}

    save(
        [
            {"id": "flight", **book, "compensate": cancel("flight")},
            {"id": "hotel", **book, "compensate": cancel("hotel")},
            {"id": "car", **book},
        ],
        on_failure={
            "action": "email.send",
            "input": {
                "to": "ops@example.com",
                "subject": "failed at {{ error.step }}: {{ error.message }}",
            },
        },
    )
    run = workflow_harness.refresh(workflow_harness.start("wf"))
    assert run.status == "failed"
    assert run.error["step"] == "car"
    assert undone == ["cancel H1", "cancel F1"]
    assert [m.subject for m in mail.outbox] == ["failed at car: sold out"]
    records = journal(run)
    assert records["compensate:hotel"].status == "succeeded"
    assert records["on_failure"].status == "succeeded"


def test_approval_waits_for_a_decision_then_branches(workflow_harness, django_user_model):
    manager = django_user_model.objects.create_user("maria")
    manager.groups.add(Group.objects.create(name="managers"))
    workflow_harness.fake("log", returns={"ok": True})
    save(
        [
            {
                "id": "ok",
                "approval": {
                    "title": "Approve {{ trigger.data.amount }}?",
                    "assignees": ["group:managers"],
                    "timeout": "2d",
                },
            },
            {**log("approved"), "id": "yes", "if": "steps.ok.output.approved"},
            {**log("rejected"), "id": "no", "if": "!steps.ok.output.approved"},
        ]
    )
    run = workflow_harness.start("wf", {"amount": 90})
    assert workflow_harness.refresh(run).status == "waiting"
    from approvals.models import Approval

    assert Approval.objects.get(run=run).title == "Approve 90?"
    workflow_harness.decide(run, "ok", "reject", user=manager, comment="too much")
    output = workflow_harness.result(run)
    assert output["yes"] is None
    assert output["no"] == {"ok": True}


def test_approval_on_reject_fail_fails_the_run(workflow_harness, django_user_model):
    manager = django_user_model.objects.create_user("maria")
    manager.groups.add(Group.objects.create(name="managers"))
    save(
        [{"id": "ok", "approval": {"title": "t", "assignees": ["user:maria"], "on_reject": "fail"}}]
    )
    run = workflow_harness.start("wf")
    workflow_harness.decide(run, "ok", "reject", user=manager)
    run = workflow_harness.refresh(run)
    assert run.status == "failed"
    assert run.error["type"] == "Rejected"


def test_wait_for_event_matches_templated_values(workflow_harness):
    workflow_harness.fake("log", returns={})
    save(
        [
            {
                "id": "paid",
                "wait_for_event": {
                    "event": "invoice.paid",
                    "match": {"user_id": "{{ trigger.data.user }}"},
                    "condition": "event.data.amount > 10",
                    "timeout": "3d",
                },
            },
            {**log("paid {{ steps.paid.output.data.amount }}"), "id": "thanks"},
        ]
    )
    run = workflow_harness.start("wf", {"user": "u1"})
    workflow_harness.emit("invoice.paid", {"user_id": "u2", "amount": 50})
    workflow_harness.emit("invoice.paid", {"user_id": "u1", "amount": 5})
    assert workflow_harness.refresh(run).status == "waiting"
    workflow_harness.emit("invoice.paid", {"user_id": "u1", "amount": 50})
    assert journal(run)["thanks"].input == {"message": "paid 50"}
    assert workflow_harness.result(run)["paid"]["timed_out"] is False


def test_wait_for_event_times_out_or_fails(workflow_harness):
    save([{"id": "paid", "wait_for_event": {"event": "invoice.paid", "timeout": "3d"}}])
    run = workflow_harness.start("wf")
    workflow_harness.run_until_idle()
    assert workflow_harness.result(run) == {"paid": {"timed_out": True}}
    save(
        [
            {
                "id": "paid",
                "wait_for_event": {"event": "invoice.paid", "timeout": "3d", "on_timeout": "fail"},
            }
        ]
    )
    run = workflow_harness.start("wf")
    workflow_harness.run_until_idle()
    assert workflow_harness.refresh(run).error["type"] == "TimedOut"


def test_sleep_is_a_durable_timer(workflow_harness):
    workflow_harness.fake("log", returns={})
    save([{"id": "nap", "sleep": "30d"}, log("awake")])
    run = workflow_harness.start("wf")
    assert workflow_harness.refresh(run).status == "waiting"
    workflow_harness.advance_time("29d")
    assert workflow_harness.refresh(run).status == "waiting"
    workflow_harness.advance_time("1d")
    assert workflow_harness.refresh(run).status == "succeeded"


def test_parallel_branches_run_and_later_steps_read_their_outputs(workflow_harness):
    workflow_harness.fake("log", returns=echo)
    save(
        [
            {
                "id": "fan",
                "parallel": [
                    [
                        {
                            "id": "a",
                            "action": "log",
                            "input": {"message": "a {{ trigger.data.n }}"},
                        },
                        {
                            "id": "a2",
                            "action": "log",
                            "input": {"message": "{{ steps.a.output.echo.message }}!"},
                        },
                    ],
                    [
                        {
                            "id": "b",
                            "action": "log",
                            "input": {"message": "b"},
                            "if": "trigger.data.n > 5",
                        }
                    ],
                ],
            },
            {**log("{{ steps.a2.output.echo.message }}"), "id": "after"},
        ]
    )
    run = workflow_harness.start("wf", {"n": 1})
    workflow_harness.run_until_idle()
    output = workflow_harness.result(run)
    assert output["fan"] == {
        "a": {"echo": {"message": "a 1"}},
        "a2": {"echo": {"message": "a 1!"}},
        "b": None,
    }
    assert output["after"] == {"echo": {"message": "a 1!"}}
    assert workflow_harness.calls["fan[0]"] == 1
    assert workflow_harness.calls["a2"] == 1


def test_parallel_retry_applies_to_each_branch(workflow_harness):
    failures = []

    def flaky(input, ctx):
        if not failures:
            failures.append(1)
            raise ConnectionError("blip")
        return {"ok": True}

    workflow_harness.fake("log", returns=flaky)
    save([{"id": "fan", "retry": {"max_attempts": 2, "initial": "1s"}, "parallel": [[log("a")]]}])
    run = workflow_harness.start("wf")
    workflow_harness.run_until_idle()
    assert workflow_harness.result(run)["fan"] == {"x": {"ok": True}}


def test_runs_stay_on_their_version_when_the_definition_changes(workflow_harness):
    workflow_harness.fake("log", returns=echo)
    save([{"id": "nap", "sleep": "1d"}, log("one")])
    old = workflow_harness.start("wf")
    save([{"id": "nap", "sleep": "1d"}, log("two")])
    new = workflow_harness.start("wf")
    workflow_harness.run_until_idle()
    assert workflow_harness.result(old)["x"] == {"echo": {"message": "one"}}
    assert workflow_harness.result(new)["x"] == {"echo": {"message": "two"}}
    assert (old.version.number, new.version.number) == (1, 2)


def test_an_input_that_breaks_the_action_schema_at_run_time_fails_naming_the_field(
    workflow_harness,
):
    save([{"id": "x", "action": "log", "input": {"message": "{{ trigger.data.n }}"}}])
    run = workflow_harness.refresh(workflow_harness.start("wf", {"n": 5}))
    assert run.status == "failed"
    assert "input.message: 5 is not of type 'string'" in run.error["message"]
    assert run.error["retryable"] is False


def test_output_template_shapes_the_run_output(workflow_harness):
    workflow_harness.fake("log", returns={"id": 7})
    save([log("hi")], output={"id": "{{ steps.x.output.id }}", "fixed": True})
    assert workflow_harness.result(workflow_harness.start("wf")) == {"id": 7, "fixed": True}


def test_a_condition_on_missing_data_fails_the_step_saying_so(workflow_harness):
    save([{**log("x"), "if": "trigger.data.missing > 1"}])
    run = workflow_harness.refresh(workflow_harness.start("wf", {}))
    assert run.status == "failed"
    assert run.error["step"] == "x"
    assert "if:" in run.error["message"]


@pytest.mark.parametrize("payload", ["{{ 7*7 }}", "x" * 5000])
def test_cel_on_hostile_event_data_is_inert(workflow_harness, payload):
    workflow_harness.fake("log", returns={})
    save([{**log("x"), "if": 'trigger.data.text == "{{ 7*7 }}"'}])
    run = workflow_harness.start("wf", {"text": payload})
    skipped = journal(workflow_harness.refresh(run))["x"].status == "skipped"
    assert skipped is (payload != "{{ 7*7 }}")


def test_on_failure_may_name_steps_that_did_not_run_and_reads_them_as_null(workflow_harness):
    workflow_harness.fake("first", returns={"ref": "A1"})
    workflow_harness.fake("charge", raises=NonRetryableError("card declined"))
    step = {"action": "log", "input": {"message": "go"}}
    save(
        [
            {"id": "first", **step},
            {"id": "maybe", **step, "if": "false"},
            {"id": "charge", **step},
            {"id": "receipt", **step},
        ],
        on_failure={
            "action": "email.send",
            "input": {
                "to": "ops@example.com",
                "subject": "{{ steps.first.output.ref }} {{ steps.maybe.output.id }} "
                "{{ steps.charge.output.id }} {{ steps.receipt.output.number }}",
            },
        },
    )
    run = workflow_harness.refresh(workflow_harness.start("wf"))
    assert run.status == "failed"
    assert journal(run)["on_failure"].status == "succeeded"
    assert [m.subject for m in mail.outbox] == ["A1 null null null"]
