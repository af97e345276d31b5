"""Admins inspect runs and act on them from Django admin."""

from __future__ import annotations

import pytest

from automation.models import Run

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client, users):
    client.force_login(users["admin"])
    return client


def failed_trip(harness, destination="Oslo"):
    harness.emit("example.trip.requested", {"destination": destination, "fail": "car"})
    return Run.objects.get(workflow__name="example-trip-booking", input__destination=destination)


def test_run_page_shows_the_journal_and_the_error(workflow_harness, admin_client_):
    run = failed_trip(workflow_harness)
    page = admin_client_.get(f"/admin/automation/run/{run.id}/change/").content.decode()
    assert "no car available for Oslo" in page
    for step in ("flight", "hotel", "car", "compensate:hotel", "compensate:flight"):
        assert step in page


def test_dead_letter_lists_failed_runs_and_retries_them_in_bulk(workflow_harness, admin_client_):
    failed = failed_trip(workflow_harness)
    workflow_harness.emit("example.user.signed_up", {"email": "ok@example.com", "plan": "pro"})
    succeeded = Run.objects.get(workflow__name="example-onboarding")
    listing = admin_client_.get("/admin/automation/deadletterrun/").content.decode()
    assert str(failed.id) in listing
    assert str(succeeded.id) not in listing

    response = workflow_harness._committed(
        admin_client_.post,
        "/admin/automation/deadletterrun/",
        {"action": "retry_all", "_selected_action": [str(failed.id)]},
    )
    assert response.status_code == 302
    workflow_harness.drain()
    assert workflow_harness.refresh(failed).status == "failed"  # still no car: failed again
    car = workflow_harness.refresh(failed).steps.get(step_id="car")
    assert car.attempt == 1  # a fresh attempt budget …
    assert [a["error"]["type"] for a in car.attempts] == [
        "NonRetryableError",
        "Retried",
        "NonRetryableError",
    ]


def test_cancel_action_cancels_active_runs(workflow_harness, admin_client_):
    run = workflow_harness.start("test-wait", {"key": "admin"})
    workflow_harness._committed(
        admin_client_.post,
        "/admin/automation/run/",
        {"action": "cancel", "_selected_action": [str(run.id)]},
    )
    workflow_harness.drain()
    assert workflow_harness.refresh(run).status == "cancelled"


def test_run_list_queries_do_not_grow_with_the_number_of_runs(
    workflow_harness, admin_client_, django_assert_max_num_queries
):
    for i in range(30):
        workflow_harness.start("test-noop", {"i": i})
    with django_assert_max_num_queries(12):
        assert admin_client_.get("/admin/automation/run/").status_code == 200


def test_operators_without_staff_rights_are_sent_to_login(client, users):
    client.force_login(users["operator"])
    assert client.get("/admin/automation/run/").status_code == 302
