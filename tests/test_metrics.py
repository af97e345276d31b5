"""GET /metrics: Prometheus text fed by the engine's lifecycle signals and the events app."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from prometheus_client.parser import text_string_to_metric_families

from events.webhooks import webhook_endpoint_create

pytestmark = pytest.mark.django_db


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def grew(before, after, name, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_runs_steps_and_retries_are_counted(client, workflow_harness):
    before = scrape(client)
    workflow_harness.start("test-noop", {})
    workflow_harness.run_until_idle()
    workflow_harness.start("test-retry", {})
    for _ in range(3):
        workflow_harness.advance_time(timedelta(hours=1))
    after = scrape(client)
    started = "automation_runs_started_total"
    assert grew(before, after, started, workflow="test-noop") == 1
    assert grew(before, after, started, workflow="test-retry") == 1
    finished = "automation_runs_finished_total"
    assert grew(before, after, finished, workflow="test-noop", status="succeeded") == 1
    assert grew(before, after, finished, workflow="test-retry", status="failed") == 1
    steps = "automation_step_duration_seconds_count"
    assert grew(before, after, steps, kind="step", status="succeeded") == 3
    assert grew(before, after, steps, kind="step", status="retrying") == 2
    assert grew(before, after, steps, kind="step", status="failed") == 1
    assert grew(before, after, "automation_step_retries_total", kind="step") == 2
    assert grew(before, after, "automation_timer_lateness_seconds_count", kind="wake") == 2


def test_events_ingested_and_webhook_rejections_are_counted(
    client, users, django_capture_on_commit_callbacks
):
    webhook_endpoint_create(slug="signed", scheme="standard_webhooks")
    before = scrape(client)
    client.force_login(users["admin"])
    with django_capture_on_commit_callbacks(execute=True):  # counted once committed
        client.post("/api/events/", {"type": "order.created", "data": {}}, "application/json")
    client.post("/hooks/signed/", b"{}", content_type="application/json")  # unsigned
    client.post("/hooks/nowhere/", b"{}", content_type="application/json")
    after = scrape(client)
    ingested = "automation_events_ingested_total"
    # No workflow listens for order.created: its type is counted as "other" (bounded labels).
    assert grew(before, after, ingested, type="other", source="api") == 1
    rejected = "automation_webhook_rejections_total"
    assert grew(before, after, rejected, reason="invalid_signature") == 1
    assert grew(before, after, rejected, reason="unknown_endpoint") == 1


def test_waiting_work_is_shown_as_gauges(client, workflow_harness):
    Group.objects.create(name="managers")
    workflow_harness.emit("example.expense.submitted", {"amount": 90, "employee": "e@x.com"})
    samples = scrape(client)
    assert samples[("automation_approvals_waiting", ())] == 1
    assert samples[("automation_runs_active", (("status", "waiting"),))] == 1
    assert samples[("automation_events_unrouted", ())] == 0
    # The embedded broker (an on-disk queue) tells its depth.
    assert ("automation_broker_queue_depth", (("queue", "celery"),)) in samples
