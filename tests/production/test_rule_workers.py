"""Event rules on the production path: two real Celery worker processes on Redis route the
events of one window at the same moment (racing on the same rule keys), and beat's sweep fires
the deadlines and window ends. Every window yields exactly one derived event."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from automation.models import Heartbeat
from events import publisher
from events.models import Event
from rules.models import EventCause, RuleKey
from rules.services import rule_save
from tests.processes import celery_worker, manage, project_env, wait_for
from tests.production.test_flow_control_workers import SendToRedis

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

USERS = 8
# One transaction: the events are committed, and sent to the workers, at once.
EMIT_MANY = (
    "from django.db import transaction\nfrom events.services import emit\n"
    "with transaction.atomic():\n"
    f"    for n in range({USERS * 3}):\n"
    f"        emit('rw.login_failed', {{'user': f'u{{n % {USERS}}}'}})\n"
    f"    for n in range({USERS}):\n"
    "        emit('rw.order_created', {'order': n})\n"
    "        emit('rw.payment', {'shop': 'north', 'amount': n})"
)


@pytest.fixture
def env(redis_url) -> Iterator[dict[str, str]]:
    backend = SendToRedis(redis_url)
    previous_router = publisher.set_router(backend.route)
    yield project_env(
        DJANGO_SETTINGS_MODULE="tests.settings",
        CELERY_BROKER_URL=redis_url,
        REDIS_URL=redis_url,
        SWEEP_INTERVAL="1",
    )
    publisher.set_router(previous_router)


def test_workers_racing_on_rule_windows_emit_each_derived_event_once(env, tmp_path):
    rule_save(
        definition={
            "name": "rw-logins",
            "kind": "threshold",
            "event": "rw.login_failed",
            "correlate": "data.user",
            "count": 3,
            "within": "1h",
            "emit": {"type": "rw.suspicious"},
        }
    )
    rule_save(
        definition={
            "name": "rw-unpaid",
            "kind": "absence",
            "match": [{"event": "rw.order_created"}, {"event": "rw.order_paid"}],
            "correlate": "data.order",
            "within": "2s",
            "emit": {"type": "rw.unpaid"},
        }
    )
    rule_save(
        definition={
            "name": "rw-sales",
            "kind": "aggregate",
            "event": "rw.payment",
            "correlate": "data.shop",
            "value": "data.amount",
            "function": "sum",
            "every": "2s",
            "emit": {"type": "rw.sales"},
        }
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
                Event.objects.filter(type="rw.unpaid").count() == USERS
                and not RuleKey.objects.filter(opened_at__isnull=False).exists()
            ),
            timeout=60,
            message=f"the rules did not close their windows:\n{logs[0].read_text()[-3000:]}",
        )
    suspicious = Event.objects.filter(type="rw.suspicious")
    assert sorted(e.subject for e in suspicious) == sorted(f"u{n}" for n in range(USERS))
    for event in suspicious:
        assert EventCause.objects.filter(derived=event).count() == 3
        assert event.routed_at is not None
    unpaid = Event.objects.filter(type="rw.unpaid")
    assert sorted(int(e.subject) for e in unpaid) == list(range(USERS))
    sales = Event.objects.filter(type="rw.sales")
    assert sum(e.data["value"] for e in sales) == sum(range(USERS))  # none twice, none lost
    assert sum(e.data["count"] for e in sales) == USERS
