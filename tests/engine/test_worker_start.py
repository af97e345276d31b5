"""What a worker does once at start, before its pool forks."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from automation.engine import registry
from automation.models import Workflow, WorkflowVersion
from automation.signals import _warm_up

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_code_workflows_are_synced_before_the_pool_forks(monkeypatch):
    """The pool processes inherit the "synced" mark instead of each syncing on its first event,
    and the parent holds no database connection its children would inherit."""
    WorkflowVersion.objects.all().delete()
    Workflow.objects.all().delete()
    monkeypatch.setattr(registry, "_synced_generation", -1)
    _warm_up()
    names = set(Workflow.objects.values_list("name", flat=True))
    assert {spec.name for spec in registry.workflows()} <= names
    assert registry._synced_generation == registry._generation
    connection.ensure_connection()  # as a worker's own start-up queries leave it
    _warm_up()
    assert connection.connection is None


def test_nothing_is_closed_under_a_caller_s_transaction(monkeypatch):
    """A worker built inside a transaction (celery.contrib.testing's start_worker in a test)
    keeps it: the sync waits for the first event there."""
    monkeypatch.setattr(registry, "_synced_generation", -1)
    with transaction.atomic():
        Workflow.objects.exists()
        _warm_up()
        assert connection.connection is not None
        assert registry._synced_generation == -1


def test_a_worker_starts_when_the_database_is_unreachable(monkeypatch, caplog):
    """The first event syncs instead; a database that is down at start is not a crash."""
    monkeypatch.setattr(registry, "_synced_generation", -1)
    monkeypatch.setitem(connection.settings_dict, "PORT", "1")
    monkeypatch.setitem(connection.settings_dict, "NAME", "/nonexistent/dir/db.sqlite3")
    connection.close()
    _warm_up()
    assert "could not sync the code workflows at start" in caplog.text
    assert registry._synced_generation == -1
