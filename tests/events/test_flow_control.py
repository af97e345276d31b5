"""Flow control on a workflow's trigger, end to end: events are stored and routed, runs are
started, delayed or refused, the sweep fires the delays, and the event's page and API say
what happened to each event."""

from __future__ import annotations

import pytest
from django.urls import reverse

from automation.commands import workflow_definition_save
from automation.engine import registry
from automation.engine.errors import WorkflowError
from automation.models import FlowKey, Run, RunStatus, TriggerOutcome, Workflow
from events.models import Event

pytestmark = pytest.mark.django_db


def declare(name: str, **trigger: object) -> None:
    definition = {
        "name": name,
        "trigger": {"event": "order.updated", **trigger},
        "steps": [{"id": "note", "action": "log", "input": {"message": "got {{ trigger.data }}"}}],
    }
    workflow_definition_save(definition=definition)


def outcomes(event: Event) -> list[tuple[str, str]]:
    return [(o.workflow.name, o.outcome) for o in TriggerOutcome.objects.filter(event=event)]


def test_rate_limit_starts_nothing_beyond_the_limit_and_says_why(workflow_harness, client, users):
    declare("limited", rate_limit={"key": "trigger.data.customer", "limit": 1, "period": "1h"})
    first = workflow_harness.emit("order.updated", {"customer": "acme"})
    second = workflow_harness.emit("order.updated", {"customer": "acme"})
    other = workflow_harness.emit("order.updated", {"customer": "globex"})

    assert Run.objects.filter(trigger_event=first, status=RunStatus.SUCCEEDED).exists()
    assert TriggerOutcome.objects.get(event=first).key == "acme"
    assert not Run.objects.filter(trigger_event=second).exists()
    assert Run.objects.filter(trigger_event=other).exists()  # its own key, its own limit
    skipped = TriggerOutcome.objects.get(event=second)
    assert skipped.outcome == "skipped"
    assert skipped.run_id is None
    assert skipped.key == "acme"
    assert "rate limit: 1 start(s) per 1h for key 'acme' reached" in skipped.reason

    client.force_login(users["admin"])
    body = client.get(f"/api/events/{second.id}/").json()
    assert body["runs"] == []
    assert body["flow"][0]["outcome"] == "skipped"
    assert body["flow"][0]["workflow"] == "limited"
    assert "rate limit" in body["flow"][0]["reason"]
    page = client.get(reverse("app:event", args=[second.id])).content.decode()
    assert "Flow control" in page
    assert "rate limit: 1 start(s) per 1h" in page

    workflow_harness.advance_time("1h")
    later = workflow_harness.emit("order.updated", {"customer": "acme"})
    assert Run.objects.filter(trigger_event=later, status=RunStatus.SUCCEEDED).exists()


def test_throttle_delays_runs_beyond_the_limit_and_drops_none(workflow_harness, client, users):
    declare("throttled", throttle={"key": "trigger.data.customer", "limit": 2, "period": "1m"})
    events = [
        workflow_harness.emit("order.updated", {"customer": "acme", "n": n}) for n in range(5)
    ]
    runs = [Run.objects.get(trigger_event=event) for event in events]
    assert [run.status for run in runs] == ["succeeded"] * 2 + ["waiting"] * 3
    assert runs[2].waiting_for == "its turn (throttle)"
    assert [o for e in events for o in outcomes(e)] == [("throttled", "started")] * 2 + [
        ("throttled", "delayed")
    ] * 3
    assert "delayed until" in TriggerOutcome.objects.get(event=events[2]).reason

    workflow_harness.advance_time("59s")
    assert Run.objects.filter(status=RunStatus.WAITING).count() == 3
    workflow_harness.advance_time("1s")  # the period since the first two has passed
    assert [Run.objects.get(pk=run.pk).status for run in runs[2:]] == [
        "succeeded",
        "succeeded",
        "waiting",
    ]
    workflow_harness.advance_time("1m")
    assert Run.objects.filter(status=RunStatus.SUCCEEDED).count() == 5

    client.force_login(users["admin"])
    body = client.get(f"/api/events/{events[4].id}/").json()
    assert body["flow"][0]["outcome"] == "delayed"
    assert body["flow"][0]["run"] == str(runs[4].id)


def test_debounce_starts_one_run_with_the_last_event_after_a_quiet_period(workflow_harness):
    declare("debounced", debounce={"key": "trigger.data.order_id", "period": "5s"})
    first = workflow_harness.emit("order.updated", {"order_id": 7, "n": 1})
    workflow_harness.advance_time("3s")
    second = workflow_harness.emit("order.updated", {"order_id": 7, "n": 2})
    other = workflow_harness.emit("order.updated", {"order_id": 8, "n": 1})
    workflow_harness.advance_time("3s")  # 6s after the first, 3s after the last
    assert Run.objects.filter(workflow__name="debounced").count() == 2
    assert not Run.objects.filter(status=RunStatus.SUCCEEDED).exists()

    workflow_harness.advance_time("2s")
    run = Run.objects.get(trigger_event=second)
    assert run.status == RunStatus.SUCCEEDED
    assert run.input == {"order_id": 7, "n": 2}
    assert Run.objects.get(trigger_event=other).status == RunStatus.SUCCEEDED
    # Both events of order 7 ended up in the one run.
    assert TriggerOutcome.objects.get(event=first).run_id == run.id
    assert TriggerOutcome.objects.get(event=second).run_id == run.id
    assert {o.outcome for o in TriggerOutcome.objects.all()} == {"debounced"}

    # The window closed with that run: the next event opens another.
    third = workflow_harness.emit("order.updated", {"order_id": 7, "n": 3})
    workflow_harness.advance_time("5s")
    assert Run.objects.get(trigger_event=third).status == RunStatus.SUCCEEDED


def test_debounce_starts_at_most_timeout_after_the_first_event(workflow_harness):
    declare("capped", debounce={"period": "5s", "timeout": "12s"})
    for n in range(3):  # every 4s: never quiet for 5s
        workflow_harness.emit("order.updated", {"n": n})
        workflow_harness.advance_time("4s")
    # 12s after the first the run started, with the last event before then.
    run = Run.objects.get()
    assert run.status == RunStatus.SUCCEEDED
    assert run.input == {"n": 2}


def test_a_key_that_cannot_be_evaluated_starts_nothing_and_says_why(workflow_harness):
    declare("keyed", rate_limit={"key": "trigger.data.customer.name", "limit": 5, "period": "1m"})
    event = workflow_harness.emit("order.updated", {"customer": "acme"})
    assert not Run.objects.exists()
    event.refresh_from_db()
    assert "workflow keyed v1 not started: trigger.rate_limit.key" in event.route_errors[0]
    assert TriggerOutcome.objects.get(event=event).outcome == "skipped"


def test_priority_is_sent_with_the_run(workflow_harness):
    sent = []
    original = workflow_harness.backend.advance

    def advance(run_id, priority=0):
        sent.append(priority)
        original(run_id)

    workflow_harness.backend.advance = advance
    declare("ordered", priority="trigger.data.plan == 'enterprise' ? 10 : 0")
    workflow_harness.emit("order.updated", {"plan": "enterprise"})
    workflow_harness.emit("order.updated", {"plan": "free"})
    assert sorted(Run.objects.values_list("priority", flat=True)) == [0, 10]
    # The first run of an event is advanced by its router; a second workflow's is sent.
    declare("ordered-too", priority="trigger.data.plan == 'enterprise' ? 10 : 0")
    workflow_harness.emit("order.updated", {"plan": "enterprise"})
    assert 10 in sent


def test_a_run_held_back_keeps_its_priority_when_its_turn_comes(workflow_harness):
    sent = []
    original = workflow_harness.backend.advance

    def advance(run_id, priority=0):
        sent.append(priority)
        original(run_id)

    workflow_harness.backend.advance = advance
    declare(
        "held",
        debounce={"period": "5s"},
        priority="trigger.data.plan == 'enterprise' ? 10 : 0",
    )
    workflow_harness.emit("order.updated", {"plan": "enterprise"})
    assert sent == []
    workflow_harness.advance_time("5s")
    assert sent == [10]
    assert Run.objects.get().status == RunStatus.SUCCEEDED


def test_broker_priority_puts_higher_first():
    from automation.tasks import broker_priority

    assert broker_priority(10) < broker_priority(1) < broker_priority(0) < broker_priority(-1)
    assert broker_priority(0) == 5
    assert broker_priority(1000) == 0
    assert broker_priority(-1000) == 9


def test_the_same_options_on_workflow(workflow_harness):
    @registry.workflow("code-limited", on="order.updated", rate_limit={"limit": 1, "period": "1h"})
    def code_limited(ctx, event):
        return {"ok": True}

    try:
        registry.sync_code_workflows()
        workflow_harness.emit("order.updated", {})
        workflow_harness.emit("order.updated", {})
        assert Run.objects.filter(workflow__name="code-limited").count() == 1
        assert FlowKey.objects.get().kind == "rate_limit"
    finally:
        registry._workflows.pop(("code-limited", 1))
        registry._synced_generation = -1  # the next sync mirrors the registry without it

    @registry.workflow("code-batched", on="order.created", batch={"max_size": 2, "timeout": "1m"})
    def code_batched(ctx, event):
        return [e["data"]["n"] for e in event.events]

    try:
        registry.sync_code_workflows()
        workflow_harness.emit("order.created", {"n": 1})
        workflow_harness.emit("order.created", {"n": 2})
        assert workflow_harness.result(Run.objects.get(workflow__name="code-batched")) == [1, 2]
    finally:
        registry._workflows.pop(("code-batched", 1))
        registry._synced_generation = -1  # the next sync mirrors the registry without it

    with pytest.raises(WorkflowError, match=r"throttle.period: .* is not a duration"):
        registry.workflow("bad-throttle", throttle={"limit": 1, "period": "soon"})(lambda c, e: 1)


@pytest.mark.parametrize(
    ("trigger", "path", "message"),
    [
        ({"rate_limit": {"limit": 0, "period": "1h"}}, "trigger.rate_limit.limit", "minimum"),
        ({"rate_limit": {"limit": 1}}, "trigger.rate_limit", "'period' is missing"),
        ({"throttle": {"limit": 1, "period": "soon"}}, "trigger.throttle.period", "duration"),
        ({"throttle": {"limit": 1, "period": "0s"}}, "trigger.throttle.period", "longer than"),
        ({"debounce": {"period": "5s", "key": "trigger.data.("}}, "trigger.debounce.key", "CEL"),
        ({"debounce": {"period": "5s", "key": "input.x"}}, "trigger.debounce.key", "only trigger"),
        ({"debounce": {"period": "5s", "every": "1m"}}, "trigger.debounce", "every"),
        (
            {"debounce": {"period": "5s"}, "throttle": {"limit": 1, "period": "1m"}},
            "trigger.throttle",
            "one of debounce, batch and throttle, not debounce and throttle",
        ),
        ({"priority": "trigger.data.plan =="}, "trigger.priority", "invalid CEL"),
    ],
)
def test_bad_flow_control_is_400_by_path_and_saves_nothing(client, users, trigger, path, message):
    client.force_login(users["admin"])
    definition = {
        "name": "bad-flow",
        "trigger": {"event": "order.updated", **trigger},
        "steps": [{"id": "note", "action": "log", "input": {"message": "hi"}}],
    }
    response = client.post("/api/workflows/", {"definition": definition}, "application/json")
    assert response.status_code == 400
    errors = response.json()["error"]["errors"]
    assert any(e["path"] == path and message in e["message"] for e in errors), errors
    assert not Run.objects.exists()

    assert not Workflow.objects.filter(name="bad-flow").exists()


def test_the_sweep_deletes_key_rows_that_hold_nothing_any_more(workflow_harness):
    declare("expiring", rate_limit={"key": "trigger.data.customer", "limit": 1, "period": "1m"})
    workflow_harness.emit("order.updated", {"customer": "acme"})
    workflow_harness.advance_time("1m")
    assert FlowKey.objects.count() == 1  # within the margin: kept
    workflow_harness.advance_time("5m")
    assert not FlowKey.objects.exists()
    # Nothing is lost with it: the key starts afresh.
    event = workflow_harness.emit("order.updated", {"customer": "acme"})
    assert TriggerOutcome.objects.get(event=event).outcome == "started"


def declare_batch(name: str, **batch: object) -> None:
    workflow_definition_save(
        definition={
            "name": name,
            "trigger": {"event": "order.updated", "batch": batch},
            "steps": [{"id": "note", "action": "log", "input": {"message": "batch"}}],
            "output": {"first": "{{ trigger.data.n }}", "events": "{{ trigger.events }}"},
        }
    )


def test_batch_starts_one_run_when_full_with_every_event(workflow_harness, client, users):
    declare_batch("batched", max_size=3, timeout="5s", key="trigger.data.tenant")
    events = [workflow_harness.emit("order.updated", {"tenant": "t1", "n": n}) for n in range(3)]
    other = workflow_harness.emit("order.updated", {"tenant": "t2", "n": 9})
    run = Run.objects.get(trigger_event=events[0])
    assert run.status == RunStatus.SUCCEEDED  # full: started without waiting for the timeout
    result = workflow_harness.result(run)
    assert result["first"] == 0
    assert [e["data"]["n"] for e in result["events"]] == [0, 1, 2]
    assert [e["id"] for e in result["events"]] == [str(e.id) for e in events]
    assert Run.objects.get(trigger_event=other).status == RunStatus.WAITING
    assert all(
        TriggerOutcome.objects.get(event=e).run_id == run.id
        and TriggerOutcome.objects.get(event=e).outcome == "batched"
        for e in events
    )
    client.force_login(users["admin"])
    body = client.get(f"/api/events/{events[1].id}/").json()
    assert body["flow"][0]["outcome"] == "batched"
    assert body["flow"][0]["run"] == str(run.id)

    # The next event of t1 opens a new batch; t2's closes at its timeout.
    later = workflow_harness.emit("order.updated", {"tenant": "t1", "n": 3})
    workflow_harness.advance_time("5s")
    assert [
        e["data"]["n"]
        for e in workflow_harness.result(Run.objects.get(trigger_event=other))["events"]
    ] == [9]
    assert Run.objects.get(trigger_event=later).status == RunStatus.SUCCEEDED
    assert Run.objects.count() == 3
