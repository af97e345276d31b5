"""Flow control on the production path: real Celery worker processes on Redis route the events
(several at once, racing on the same keys), beat's sweep fires the debounce, and the broker
hands a busy worker the higher-priority run first."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

from automation.commands import workflow_definition_save
from automation.engine import dispatch
from automation.engine.runs import run_start
from automation.models import Heartbeat, Run, RunStatus, TriggerOutcome
from automation.tasks import broker_priority
from events import publisher
from events.models import Event
from tests.processes import celery_worker, kill_hard, manage, project_env, wait_for

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

EVENTS = 30
# One transaction: the events are committed, and sent to the workers, at once.
EMIT_MANY = (
    "from django.db import transaction\nfrom events.services import emit\n"
    "with transaction.atomic():\n"
    f"    for n in range({EVENTS}): emit('flow.order.updated', {{'customer': 'acme', "
    "'order_id': 'o-1', 'n': n})"
)


class SendToRedis:
    """Dispatch from the test process to the Redis broker the workers consume, with the
    priorities the production settings give (automation.settings, automation.tasks)."""

    def __init__(self, url: str) -> None:
        self.app = Celery("test-client", broker=url)
        self.app.conf.broker_transport_options = {
            "priority_steps": list(range(10)),
            "queue_order_strategy": "priority",
        }

    def advance(self, run_id: str, priority: int = 0) -> None:
        self.app.send_task(
            "automation.advance_run", args=[run_id], priority=broker_priority(priority)
        )

    def branch(self, run_id: str, step_id: str) -> None:
        self.app.send_task("automation.run_branch", args=[run_id, step_id])

    def route(self, event_id: str) -> None:
        self.app.send_task("events.route_event", args=[event_id])


@pytest.fixture
def env(redis_url) -> Iterator[dict[str, str]]:
    backend = SendToRedis(redis_url)
    previous = dispatch.set_backend(backend)
    previous_router = publisher.set_router(backend.route)
    yield project_env(
        DJANGO_SETTINGS_MODULE="tests.settings",
        CELERY_BROKER_URL=redis_url,
        REDIS_URL=redis_url,
        SWEEP_INTERVAL="1",
    )
    dispatch.set_backend(previous)
    publisher.set_router(previous_router)


def declare(name: str, trigger: dict[str, Any]) -> None:
    workflow_definition_save(
        definition={
            "name": name,
            "trigger": trigger,
            "steps": [{"id": "note", "action": "log", "input": {"message": "n={{ input.n }}"}}],
        }
    )


def test_workers_racing_on_one_key_keep_the_limit_and_debounce_into_one_run(env, tmp_path):
    declare(
        "flow-limited",
        {
            "event": "flow.order.updated",
            "rate_limit": {"key": "trigger.data.customer", "limit": 3, "period": "1h"},
        },
    )
    declare(
        "flow-debounced",
        {
            "event": "flow.order.updated",
            "debounce": {"key": "trigger.data.order_id", "period": "2s", "timeout": "1m"},
        },
    )
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    with (
        celery_worker(env, logs[0], concurrency=2, beat=True),
        celery_worker(env, logs[1], concurrency=2),
    ):
        wait_for(Heartbeat.objects.exists, timeout=40, message=f"no worker:\n{logs[0].read_text()}")
        manage(env, "shell", "-v0", "-c", EMIT_MANY)
        wait_for(
            lambda: (
                not Event.objects.filter(routed_at__isnull=True).exists()
                and Event.objects.count() == EVENTS
            ),
            timeout=60,
            message="the events were not routed",
        )
        debounced = wait_for(
            lambda: Run.objects.filter(
                workflow__name="flow-debounced", status=RunStatus.SUCCEEDED
            ).first(),
            timeout=30,
            message=f"the debounced run did not run:\n{logs[0].read_text()[-3000:]}",
        )
    limited = TriggerOutcome.objects.filter(workflow__name="flow-limited")
    assert limited.filter(outcome="started").count() == 3
    assert limited.filter(outcome="skipped").count() == EVENTS - 3
    assert Run.objects.filter(workflow__name="flow-limited").count() == 3
    # Every event ended up in the one debounced run, which ran with the last one routed.
    folded = TriggerOutcome.objects.filter(workflow__name="flow-debounced")
    assert folded.count() == EVENTS
    assert set(folded.values_list("run_id", flat=True)) == {debounced.id}
    assert Run.objects.filter(workflow__name="flow-debounced").count() == 1
    assert debounced.trigger_event_id == folded.order_by("-created_at").first().event_id


def test_waiting_messages_go_to_the_worker_higher_priority_first(env, tmp_path):
    """Runs queued while no worker is free (here: none is running yet) are taken by priority,
    not in the order they were sent."""
    declare("flow-ordered", {})
    low = [run_start(workflow="flow-ordered", input={"n": n}) for n in range(4)]
    high = run_start(workflow="flow-ordered", input={"n": 99}, priority=10)
    log = tmp_path / "worker.log"
    with celery_worker(env, log, concurrency=1):
        wait_for(
            lambda: (
                Run.objects.filter(workflow__name="flow-ordered", status="succeeded").count() == 5
            ),
            timeout=40,
            message=f"the runs did not finish:\n{log.read_text()[-3000:]}",
        )
    started = {run.id: run.started_at for run in Run.objects.filter(workflow__name="flow-ordered")}
    assert started[high.id] < min(started[run.id] for run in low), started


KILLED_EVENTS = 150
EMIT_FOR_KILL = (
    "from django.db import transaction\nfrom events.services import emit\n"
    "with transaction.atomic():\n"
    f"    for n in range({KILLED_EVENTS}): emit('flow.order.updated', {{'customer': 'acme', "
    "'n': n})"
)


def test_kill_9_while_routing_counts_every_event_once(env, tmp_path):
    """A worker killed mid-routing leaves its events unrouted (their decisions rolled back
    with the claim); another worker's sweep routes them: every event has exactly one outcome
    per workflow and the limits hold."""
    declare(
        "flow-limited",
        {
            "event": "flow.order.updated",
            "rate_limit": {"key": "trigger.data.customer", "limit": 5, "period": "1h"},
        },
    )
    declare(
        "flow-throttled",
        {
            "event": "flow.order.updated",
            "throttle": {"key": "trigger.data.customer", "limit": 1, "period": "1h"},
        },
    )
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    with celery_worker(env, logs[0], concurrency=2) as first:
        wait_for(Heartbeat.objects.exists, timeout=40, message=f"no worker:\n{logs[0].read_text()}")
        manage(env, "shell", "-v0", "-c", EMIT_FOR_KILL)
        wait_for(
            lambda: Event.objects.filter(routed_at__isnull=False).count() >= 10,
            timeout=30,
            message=f"nothing was routed:\n{logs[0].read_text()[-3000:]}",
        )
        kill_hard(first)
    left = Event.objects.filter(routed_at__isnull=True).count()
    with celery_worker(env, logs[1], concurrency=2, beat=True):
        wait_for(
            lambda: not Event.objects.filter(routed_at__isnull=True).exists(),
            timeout=90,
            message=f"the events left were not routed:\n{logs[1].read_text()[-3000:]}",
        )
    print(f"events left unrouted by the killed worker: {left} of {KILLED_EVENTS}")
    limited = TriggerOutcome.objects.filter(workflow__name="flow-limited")
    assert limited.count() == KILLED_EVENTS
    assert limited.filter(outcome="started").count() == 5
    throttled = TriggerOutcome.objects.filter(workflow__name="flow-throttled")
    assert throttled.count() == KILLED_EVENTS
    assert throttled.filter(outcome="started").count() == 1
    assert Run.objects.filter(workflow__name="flow-limited").count() == 5
    assert Run.objects.filter(workflow__name="flow-throttled").count() == KILLED_EVENTS
    assert Run.objects.filter(workflow__name="flow-throttled", status="waiting").count() == (
        KILLED_EVENTS - 1
    )
