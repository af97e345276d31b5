"""A run's journal reads in the order it happened, the same in the API, on the run page, in
admin and in ``manage.py run_workflow``, on SQLite and PostgreSQL alike (compensation records
have no ``seq``, and the two databases sort NULLs at opposite ends)."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management.base import BaseCommand

from automation.management.commands.run_workflow import Follower
from automation.models import Run

pytestmark = pytest.mark.django_db

SAGA_ORDER = ["flight", "hotel", "car", "compensate:hotel", "compensate:flight"]


@pytest.fixture
def failed_trip(workflow_harness):
    workflow_harness.emit("example.trip.requested", {"destination": "Oslo", "fail": "car"})
    run = Run.objects.get(workflow__name="example-trip-booking")
    assert run.status == "failed"
    return run


def test_the_api_lists_compensations_after_the_steps_they_undo(client, users, failed_trip):
    client.force_login(users["admin"])
    steps = client.get(f"/api/runs/{failed_trip.id}/").json()["steps"]
    assert [step["id"] for step in steps] == SAGA_ORDER


def test_the_run_page_lists_compensations_after_the_steps_they_undo(client, users, failed_trip):
    client.force_login(users["admin"])
    page = client.get(f"/app/runs/{failed_trip.id}/").content.decode()
    assert re.findall(r'data-step="([^"]+)"', page) == SAGA_ORDER


def test_admin_lists_compensations_after_the_steps_they_undo(client, users, failed_trip):
    client.force_login(users["admin"])
    page = client.get(f"/admin/automation/run/{failed_trip.id}/change/").content.decode()
    shown = re.findall(r'<td class="original">\s*<p>\s*(\S+) \(', page)
    assert shown == SAGA_ORDER


def test_run_workflow_prints_compensations_after_the_steps_they_undo(failed_trip):
    out = StringIO()
    Follower(BaseCommand(stdout=out), failed_trip, interval=0.01, timeout=5).follow()
    lines = out.getvalue().splitlines()
    printed = [re.match(r"\[[^]]*\]\s+(\S+)", line).group(1) for line in lines]
    printed = [word for word in printed if word != "run"]
    assert printed == SAGA_ORDER
