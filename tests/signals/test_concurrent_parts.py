"""Two events filling the last two parts of a wait for all, at the same moment in two
processes' transactions: the step's journal record is locked first, so exactly one of them
completes the step, with both events (PostgreSQL: SQLite serialises every writer anyway)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from automation.engine import registry
from automation.engine.runs import wait_resolve
from automation.models import StepRecord, Wait
from events.services import emit

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="row locks: SQLite serialises every writer"
    ),
]


def test_two_events_at_once_complete_an_all_wait_once(workflow_harness):
    registry.sync_code_workflows(force=True)
    run = workflow_harness.start("test-wait-all", {"key": "race"})
    with transaction.atomic():
        paid = emit("test.paid", {"key": "race"})
        voided = emit("test.voided", {"key": "race"})
    parts = list(Wait.objects.filter(run=run).order_by("part"))
    barrier = threading.Barrier(2)
    results: list[bool] = []

    def fill(part: Wait, event) -> None:
        try:
            barrier.wait()
            results.append(wait_resolve(wait=part, event=event, wake=False))
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=fill, args=(parts[0], paid)),
        threading.Thread(target=fill, args=(parts[1], voided)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [True, True]  # each filled its part
    step = StepRecord.objects.get(run=run, step_id="both")
    assert step.status == "succeeded"
    assert step.output["arrived"] == [0, 1]
    assert [e["id"] for e in step.output["events"]] == [str(paid.id), str(voided.id)]
