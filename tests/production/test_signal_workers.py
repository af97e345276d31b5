"""Signals, waits for several events and queries on the production path: real Celery worker
processes on Redis, the sweep run by beat inside a worker, the API answered in this process."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction

from automation.models import Run, Signal
from events.services import emit
from tests.processes import celery_worker, wait_for
from tests.production.test_engine_workers import env, finished, ready, start  # noqa: F401

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def operator(client, django_user_model):
    user = django_user_model.objects.create_user("olivia", password="x")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_run", "change_run"]))
    client.force_login(user)
    return user


def _waiting_on(run: Run, step_id: str) -> bool:
    run.refresh_from_db()
    return run.status == "waiting" and f"in {step_id!r}" in run.waiting_for


def test_a_signal_wakes_a_run_waiting_on_a_real_worker(env, tmp_path, client, operator):  # noqa: F811
    url = None
    with celery_worker(env, tmp_path / "w.log", concurrency=2, beat=True) as worker:
        ready(worker, tmp_path / "w.log")
        run = start("test.signal", {})
        url = f"/api/runs/{run.id}/signals/"
        wait_for(lambda: _waiting_on(run, "first"), timeout=20, message="never waited")
        answer = client.get(f"/api/runs/{run.id}/queries/progress/").json()
        assert answer["result"] == {"status": "waiting", "taken": []}
        sent = client.post(url, {"name": "go", "data": {"n": 1}}, content_type="application/json")
        assert sent.status_code == 202
        assert sent.json()["step_id"] == "first"
        wait_for(lambda: _waiting_on(run, "second"), timeout=20, message="not woken")
        client.post(url, {"name": "go", "data": {"n": 2}}, content_type="application/json")
        run = finished(run)
        answer = client.get(f"/api/runs/{run.id}/queries/progress/").json()
    assert run.output == {"timed_out": False, "first": {"n": 1}, "second": {"n": 2}}
    assert answer["result"] == {"status": "succeeded", "taken": ["first", "second"]}
    late = client.post(url, {"name": "go"}, content_type="application/json")
    assert late.status_code == 409
    assert Signal.objects.filter(run=run).count() == 2


def test_waits_for_all_and_any_on_a_real_worker(env, tmp_path):  # noqa: F811
    with celery_worker(env, tmp_path / "w.log", concurrency=2, beat=True) as worker:
        ready(worker, tmp_path / "w.log")
        with transaction.atomic():
            emit("test.paid", {"key": "k1"})  # before the wait: found by its lookback
        both = start("test.wait-all", {"key": "k1"})
        either = start("test.wait-any", {"key": "k2", "timeout": "30s"})
        lonely = start("test.wait-any", {"key": "k3", "timeout": "2s"})
        wait_for(lambda: _waiting_on(both, "both"), timeout=20, message="never waited")
        wait_for(lambda: _waiting_on(either, "either"), timeout=20, message="never waited")
        with transaction.atomic():
            emit("test.voided", {"key": "k1"})
            emit("test.voided", {"key": "k2"})
        both, either, lonely = (finished(run) for run in (both, either, lonely))
    assert both.output["arrived"] == [0, 1]
    assert [e["type"] for e in both.output["events"]] == ["test.paid", "test.voided"]
    assert either.output["arrived"] == [1]
    assert lonely.output == {"timed_out": True, "arrived": [], "events": [None, None]}
