"""The runs API: list with filters, a run with its journal, cancel and retry."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from automation.models import Run

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(users):
    operator = users["operator"]
    operator.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_run", "change_run"])
    )
    return operator


def test_list_filters_by_workflow_status_and_correlation(client, workflow_harness, operator):
    workflow_harness.emit("example.trip.requested", {"destination": "Oslo", "fail": "car"})
    workflow_harness.emit("example.order.placed", {"orderId": "o-1"}, correlation_id="c-42")
    client.force_login(operator)
    failed = client.get("/api/runs/?status=failed").json()["results"]
    assert [r["workflow"] for r in failed] == ["example-trip-booking"]
    assert failed[0]["error"]["step"] == "car"
    by_corr = client.get("/api/runs/?correlation_id=c-42").json()["results"]
    assert [r["workflow"] for r in by_corr] == ["example-order-fanout"]
    assert client.get("/api/runs/?workflow=nope").json()["results"] == []
    assert client.get("/api/runs/?status=broken").status_code == 400


def test_detail_shows_each_step_with_attempts_and_timings(client, workflow_harness, operator):
    workflow_harness.emit("example.trip.requested", {"destination": "Oslo", "fail": "car"})
    run = Run.objects.get()
    client.force_login(operator)
    body = client.get(f"/api/runs/{run.id}/").json()
    steps = {step["id"]: step for step in body["steps"]}
    assert steps["flight"]["status"] == "succeeded"
    assert steps["flight"]["output"] == {"kind": "flight", "booking": "flight-Oslo"}
    assert steps["car"]["error"]["type"] == "NonRetryableError"
    assert steps["compensate:hotel"]["duration"] is not None


def test_cancel_and_retry_call_the_services_and_refuse_what_cannot_be_done(
    client, workflow_harness, operator
):
    waiting = workflow_harness.start("test-wait", {"key": "api"})
    workflow_harness.emit("example.trip.requested", {"destination": "Rome", "fail": "car"})
    failed = Run.objects.get(workflow__name="example-trip-booking")
    client.force_login(operator)
    response = workflow_harness._committed(client.post, f"/api/runs/{waiting.id}/cancel/")
    assert response.status_code == 202
    workflow_harness.drain()
    assert workflow_harness.refresh(waiting).status == "cancelled"
    again = client.post(f"/api/runs/{waiting.id}/cancel/")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "not_allowed_now")

    assert client.post(f"/api/runs/{waiting.id}/retry/").status_code == 409
    assert (
        workflow_harness._committed(client.post, f"/api/runs/{failed.id}/retry/").status_code == 202
    )
    workflow_harness.drain()
    assert workflow_harness.refresh(failed).status == "failed"  # the car is still sold out
    assert failed.steps.get(step_id="car").attempts[-2]["error"]["type"] == "Retried"


def test_runs_need_their_permissions(client, workflow_harness, users):
    run = workflow_harness.start("test-noop")
    client.force_login(users["outsider"])
    assert client.get("/api/runs/").status_code == 403
    assert client.get(f"/api/runs/{run.id}/").status_code == 403
    assert client.post(f"/api/runs/{run.id}/cancel/").status_code == 403
    client.logout()
    assert client.get("/api/runs/").status_code == 401


def test_the_run_list_query_count_does_not_grow(
    client, workflow_harness, operator, django_assert_max_num_queries
):
    for i in range(20):
        workflow_harness.start("test-noop", {"i": i})
    client.force_login(operator)
    with django_assert_max_num_queries(6):
        assert len(client.get("/api/runs/").json()["results"]) == 20
