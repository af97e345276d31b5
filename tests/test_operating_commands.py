"""Operating from the shell: emit, run_workflow, replay_events, retry_failed, purge, and the
periodic retention task."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command, load_command_class
from django.utils import timezone

from approvals.models import Approval
from automation import tasks
from automation.models import Run, StepRecord
from events.models import Event
from events.services import emit
from tests.processes import ROOT, project_env, running_server

pytestmark = pytest.mark.django_db

COMMANDS = {
    "emit": "events",
    "replay_events": "events",
    "run_workflow": "automation",
    "retry_failed": "automation",
    "purge": "automation",
    "serve_metrics": "automation",
}


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.parametrize(("name", "app"), COMMANDS.items())
def test_each_command_explains_itself_in_help(name, app):
    parser = load_command_class(app, name).create_parser("manage.py", name)
    text = parser.format_help()
    assert len(parser.description or "") > 80, text
    for action in parser._actions:
        if action.option_strings and action.dest not in ("help", "version"):
            assert action.help, f"{name} {action.option_strings} has no help"


# --- emit -----------------------------------------------------------------------------------


def test_emit_stores_an_event_and_prints_its_id():
    out = run("emit", "order.created", "--data", '{"id": 42}', "--correlation-id", "order-42")
    event = Event.objects.get()
    assert out.strip() == str(event.id)
    assert (event.type, event.data, event.source) == ("order.created", {"id": 42}, "cli")
    assert event.correlation_id == "order-42"


def test_emit_twice_with_one_idempotency_key_stores_one_event():
    run("emit", "order.created", "--idempotency-key", "k1")
    assert "duplicate" in run("emit", "order.created", "--idempotency-key", "k1")
    assert Event.objects.count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["order.created", "--data", "{nope"], "--data is not JSON"),
        (["order.created", "--data", "[1]"], "data: a JSON object is required"),
        (["not a type"], "type:"),
    ],
)
def test_emit_refuses_bad_input_and_stores_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        run("emit", *args)
    assert not Event.objects.exists()


# --- replay_events --------------------------------------------------------------------------


def _aged(event: Event, days: float) -> Event:
    Event.objects.filter(id=event.id).update(received_at=timezone.now() - timedelta(days=days))
    return event


def test_replay_events_by_type_and_time_range():
    old = _aged(emit("order.created", {"n": 1}), 10)
    recent = _aged(emit("order.created", {"n": 2}), 2)
    paid = _aged(emit("order.paid", {"n": 3}), 2)
    _aged(emit("user.created", {"n": 4}), 2)
    since = (timezone.now() - timedelta(days=5)).isoformat()

    dry = run("replay_events", "--type", "order.*", "--since", since, "--dry-run")
    assert "Would replay 2 event(s)." in dry
    assert Event.objects.count() == 4

    run("replay_events", "--type", "order.*", "--since", since)
    copies = Event.objects.exclude(causation_id="")
    assert sorted(copies.values_list("causation_id", flat=True)) == sorted(
        [str(recent.id), str(paid.id)]
    )
    assert not copies.filter(causation_id=str(old.id)).exists()


def test_replay_events_refuses_a_time_without_a_zone():
    with pytest.raises(CommandError, match="--since"):
        run("replay_events", "--type", "order.created", "--since", "yesterday")


# --- retry_failed ---------------------------------------------------------------------------


def test_retry_failed_dry_run_lists_then_retries_in_bulk(workflow_harness):
    for destination in ("Oslo", "Rome"):
        workflow_harness.emit("example.trip.requested", {"destination": destination, "fail": "car"})
    assert Run.objects.filter(status="failed").count() == 2

    dry = run("retry_failed", "--workflow", "example-trip-booking", "--dry-run")
    assert dry.count("would retry") == 2
    assert "at car" in dry
    assert Run.objects.filter(status="failed").count() == 2
    assert "Would retry 0 run(s)." in run("retry_failed", "--workflow", "another", "--dry-run")

    assert "Retried 1 run(s)." in run("retry_failed", "--step", "car", "--limit", "1")
    assert Run.objects.filter(status="failed").count() == 1
    assert "Retried 1 run(s)." in run("retry_failed")
    assert not Run.objects.filter(status="failed").exists()


# --- purge and retention --------------------------------------------------------------------


@pytest.fixture
def history(workflow_harness, django_user_model):
    """An old finished run, a recent one, an old run still waiting, and their events."""
    from django.contrib.auth.models import Group

    Group.objects.create(name="managers")
    workflow_harness.emit("example.trip.requested", {"destination": "Oslo", "fail": "car"})
    workflow_harness.emit("example.trip.requested", {"destination": "Rome"})
    workflow_harness.emit("example.expense.submitted", {"amount": 90, "employee": "e@x.com"})
    old_failed, recent, waiting = Run.objects.order_by("created_at")
    assert (old_failed.status, recent.status, waiting.status) == ("failed", "succeeded", "waiting")
    long_ago = timezone.now() - timedelta(days=40)
    Run.objects.filter(id__in=[old_failed.id, waiting.id]).update(
        created_at=long_ago, finished_at=long_ago if old_failed.finished_at else None
    )
    Run.objects.filter(id=old_failed.id).update(finished_at=long_ago)
    Event.objects.update(received_at=long_ago)
    return {"old": old_failed, "recent": recent, "waiting": waiting}


def test_purge_deletes_old_finished_runs_and_old_events_in_batches(history):
    dry = run("purge", "--runs-older-than", "30", "--events-older-than", "30", "--dry-run")
    assert "Would delete 1 finished runs" in dry
    assert "Would delete 2 events" in dry
    assert Run.objects.count() == 3

    out = run("purge", "--runs-older-than", "30", "--events-older-than", "30", "--batch-size", "1")
    assert "Deleted 1 finished runs" in out
    assert "Deleted 2 events" in out
    assert set(Run.objects.values_list("id", flat=True)) == {
        history["recent"].id,
        history["waiting"].id,
    }
    assert not StepRecord.objects.filter(run_id=history["old"].id).exists()
    # The waiting run keeps its trigger and its approval; the recent run only loses its link.
    assert Event.objects.get().id == history["waiting"].trigger_event_id
    assert Approval.objects.filter(run=history["waiting"]).exists()
    assert Run.objects.get(id=history["recent"].id).trigger_event is None


def test_purge_without_an_age_deletes_nothing(history):
    assert "Nothing to purge" in run("purge")
    assert Run.objects.count() == 3


def test_the_periodic_task_applies_the_retention_settings(history, settings):
    assert settings.CELERY_BEAT_SCHEDULE["automation.purge"]["task"] == "automation.purge"
    settings.RUNS_RETENTION_DAYS = 30
    settings.EVENTS_RETENTION_DAYS = 0  # keep events forever
    assert tasks.purge() == {"runs": 1, "events": 0}
    assert Run.objects.count() == 2
    assert Event.objects.count() == 3


# --- run_workflow, against a real server --------------------------------------------------


def _run_workflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "run_workflow", *args, "--timeout", "60"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.mark.django_db(transaction=True)
def test_run_workflow_follows_the_run_live_until_it_ends(tmp_path):
    env = project_env(EXAMPLES="true")
    with running_server(env, tmp_path / "server.log") as server:
        ok = _run_workflow(env, "example-trip-booking", "--input", '{"destination": "Oslo"}')
        failed = _run_workflow(
            env, "example-trip-booking", "--input", '{"destination": "Oslo", "fail": "car"}'
        )
    assert ok.returncode == 0, (ok.stdout, ok.stderr, server.output()[-2000:])
    lines = ok.stdout.splitlines()
    assert lines[0].startswith("Started run ")
    assert any("flight" in line and "succeeded" in line for line in lines)
    assert any("car" in line and "succeeded" in line for line in lines)
    assert "Run succeeded. Output:" in lines[-1]

    assert failed.returncode == 1, (failed.stdout, failed.stderr)
    assert "Run failed at step car" in failed.stderr
    assert any("compensate:flight" in line for line in failed.stdout.splitlines())


def test_run_workflow_names_an_unknown_workflow():
    with pytest.raises(CommandError, match="no workflow named 'nope'"):
        run("run_workflow", "nope")


def test_settings_document_retention_defaults():
    assert settings.RUNS_RETENTION_DAYS == 0
    assert settings.EVENTS_RETENTION_DAYS == 0


def test_replay_events_takes_any_zone_offset_python_accepts():
    recent = _aged(emit("order.created", {"n": 1}), 1)
    # +22:38 is valid ISO 8601 that PostgreSQL refuses as a zone: it must reach it in UTC.
    since = (timezone.now() - timedelta(days=2)).astimezone(
        timezone.get_fixed_timezone(22 * 60 + 38)
    )
    dry = run("replay_events", "--type", "order.*", "--since", since.isoformat(), "--dry-run")
    assert "Would replay 1 event(s)." in dry
    assert Event.objects.filter(id=recent.id).exists()


# --- run_workflow --run: what a run waits for, and until when -------------------------------


@pytest.mark.django_db
def test_run_workflow_shows_a_waiting_approval_with_the_date_it_is_due(workflow_harness):
    from django.contrib.auth.models import Group

    Group.objects.create(name="sm-approvers")
    waiting = workflow_harness.start("sm-approval", {"key": "k1"})
    due = Approval.objects.get(run=waiting).due_at
    out = run("run_workflow", "--run", str(waiting.id), "--no-follow")
    lines = out.splitlines()
    assert any(
        "ok" in line and "waiting" in line and f"(due at {due:%Y-%m-%d %H:%M:%S} UTC)" in line
        for line in lines
    ), out
    assert "retry at" not in out
    assert lines[-1].endswith("run waiting in 'ok' for an approval"), out
