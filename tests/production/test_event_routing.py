"""Routing on the production path: events stored by one process are routed by a Celery worker
on Redis through the messages of the storing process's publisher thread, with no sweep."""

from __future__ import annotations

import pytest

from automation.models import Heartbeat, Run
from events.models import Event
from tests.processes import celery_worker, manage, project_env, wait_for

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

# One transaction: the 40 events are committed, and handed to the publisher, at once.
EMIT_MANY = (
    "from django.db import transaction\nfrom events.services import emit\n"
    "with transaction.atomic():\n    for n in range(40): emit('test.noop', {'n': n})"
)


def test_events_of_a_process_that_exits_at_once_are_all_routed_without_the_sweep(
    redis_url, tmp_path
):
    """A management command stores 40 events in one transaction and exits at once: its
    publisher sends them (together: events.route_events) before the process ends, and a worker
    without beat, so without the sweep, starts every run."""
    env = project_env(
        DJANGO_SETTINGS_MODULE="tests.settings", CELERY_BROKER_URL=redis_url, REDIS_URL=redis_url
    )
    log = tmp_path / "worker.log"
    with celery_worker(env, log, concurrency=2):
        wait_for(Heartbeat.objects.exists, timeout=40, message=f"no worker:\n{log.read_text()}")
        manage(env, "shell", "-v0", "-c", EMIT_MANY)
        wait_for(
            lambda: (
                Run.objects.filter(workflow__name="test-noop", status="succeeded").count() == 40
            ),
            timeout=60,
            message=f"not every event started its run:\n{log.read_text()[-3000:]}",
        )
    assert Event.objects.filter(type="test.noop", routed_at__isnull=True).count() == 0
