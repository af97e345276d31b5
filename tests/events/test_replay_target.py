"""Replaying to one workflow (and one version) instead of every subscriber, from the API and
from ``manage.py replay_events``."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from automation.commands import workflow_definition_save
from automation.models import Run
from events.models import Event

pytestmark = pytest.mark.django_db


def declare(name: str, message: str = "v1", event: str = "shop.paid") -> None:
    workflow_definition_save(
        definition={
            "name": name,
            "trigger": {"event": event},
            "steps": [{"id": "note", "action": "log", "input": {"message": message}}],
        }
    )


@pytest.fixture
def replayer(users):
    users["operator"].user_permissions.add(Permission.objects.get(codename="replay_event"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=users['operator'])}")
    return client


@pytest.fixture
def paid(workflow_harness):
    declare("billing")
    declare("shipping")
    declare("other", event="shop.refunded")
    event = workflow_harness.emit("shop.paid", {"order": 7})
    assert Run.objects.filter(trigger_event=event).count() == 2
    return event


def runs_of(event: Event) -> list[tuple[str, int]]:
    return sorted(
        Run.objects.filter(trigger_event__causation_id=str(event.id)).values_list(
            "workflow__name", "version__number"
        )
    )


def test_a_replay_to_one_workflow_starts_only_that_one(
    replayer, paid, workflow_harness, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = replayer.post(
            f"/api/events/{paid.id}/replay/", {"workflow": "billing"}, format="json"
        )
    assert response.status_code == 202
    workflow_harness.drain()
    assert runs_of(paid) == [("billing", 1)]
    copy = Event.objects.get(id=response.json()["id"])
    assert copy.routed_at is not None
    assert copy.causation_id == str(paid.id)


def test_a_replay_to_an_older_version_runs_that_version(
    replayer, paid, workflow_harness, django_capture_on_commit_callbacks
):
    declare("billing", message="v2")
    with django_capture_on_commit_callbacks(execute=True):
        response = replayer.post(
            f"/api/events/{paid.id}/replay/", {"workflow": "billing", "version": 1}, format="json"
        )
    assert response.status_code == 202
    workflow_harness.drain()
    assert runs_of(paid) == [("billing", 1)]


def test_a_replay_without_a_target_goes_to_every_subscriber(
    replayer, paid, workflow_harness, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert replayer.post(f"/api/events/{paid.id}/replay/").status_code == 202
    workflow_harness.drain()
    assert runs_of(paid) == [("billing", 1), ("shipping", 1)]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"workflow": "nope"}, "no workflow named 'nope'"),
        ({"workflow": "billing", "version": 9}, "billing has no version 9 (it has 1)"),
        ({"workflow": "other"}, "is triggered by 'shop.refunded', not 'shop.paid'"),
        ({"version": 1}, "version"),
        ({"workflow": "billing", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_target_is_400_and_stores_nothing(replayer, paid, body, words):
    before = Event.objects.count()
    response = replayer.post(f"/api/events/{paid.id}/replay/", body, format="json")
    assert response.status_code == 400
    assert words in str(response.json()["error"])
    assert Event.objects.count() == before


def test_the_command_replays_to_one_workflow(paid, workflow_harness, capsys):
    with workflow_harness_commit():
        call_command("replay_events", "--type", "shop.paid", "--workflow", "shipping")
    workflow_harness.drain()
    assert runs_of(paid) == [("shipping", 1)]
    assert "Replayed 1 event(s)." in capsys.readouterr().out


def test_the_command_refuses_a_bad_target_before_replaying_anything(paid):
    before = Event.objects.count()
    with pytest.raises(CommandError, match="no version 4"):
        call_command(
            "replay_events",
            "--type",
            "shop.paid",
            "--workflow",
            "billing",
            "--workflow-version",
            "4",
        )
    with pytest.raises(CommandError, match="--workflow-version needs --workflow"):
        call_command("replay_events", "--type", "shop.paid", "--workflow-version", "1")
    assert Event.objects.count() == before


def workflow_harness_commit():
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=True)
