"""Model changes become events (admin-configured bridges and the decorator), schedules emit
events, and schemas and bridges are checked when saved."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db import transaction
from django_celery_beat.models import PeriodicTask

from events import bridge
from events.models import Event, EventSchema, SignalBridge
from events.schedules import schedule_create
from events.tasks import emit_scheduled

pytestmark = pytest.mark.django_db


def test_bridge_emits_on_create_with_the_serialised_instance():
    SignalBridge.objects.create(model="auth.Group", action="created", event_type="group.created")
    group = Group.objects.create(name="managers")
    event = Event.objects.get(type="group.created")
    assert event.source == "signal:auth.Group"
    assert event.subject == f"auth.Group:{group.pk}"
    assert event.data["action"] == "created"
    assert event.data["instance"] == {
        "model": "auth.group",
        "pk": group.pk,
        "fields": {"name": "managers", "permissions": []},
    }


def test_bridge_emits_on_delete_and_update():
    SignalBridge.objects.create(model="auth.group", action="updated", event_type="group.updated")
    SignalBridge.objects.create(model="auth.group", action="deleted", event_type="group.deleted")
    group = Group.objects.create(name="a")
    group.name = "b"
    group.save()
    group.delete()
    assert list(Event.objects.order_by("received_at").values_list("type", flat=True)) == [
        "group.updated",
        "group.deleted",
    ]


def test_field_change_from_a_to_b():
    SignalBridge.objects.create(
        model="auth.User",
        action="updated",
        field="is_active",
        from_value="True",
        to_value="False",
        event_type="user.deactivated",
    )
    user = User.objects.create_user("ann")
    user.email = "ann@example.com"
    user.save()  # another field: nothing
    user.is_active = False
    user.save()
    user.save()  # no change: nothing
    user.is_active = True
    user.save()  # the other direction: nothing
    event = Event.objects.get()
    assert event.type == "user.deactivated"
    assert event.data["changes"] == {"is_active": {"from": True, "to": False}}


def test_a_bridge_event_exists_only_if_the_transaction_commits():
    SignalBridge.objects.create(model="auth.Group", action="created", event_type="group.created")

    def failing_business_write():
        with transaction.atomic():
            Group.objects.create(name="ghost")
            raise RuntimeError("business write failed")

    with pytest.raises(RuntimeError):
        failing_business_write()
    assert not Event.objects.exists()


def test_inactive_bridges_emit_nothing():
    SignalBridge.objects.create(
        model="auth.Group", action="created", event_type="group.created", active=False
    )
    Group.objects.create(name="x")
    assert not Event.objects.exists()


def test_decorator_in_code_builds_the_data_and_can_skip():
    registered = list(bridge._code_rules)
    try:

        @bridge.model_event(User, "updated", field="email", event_type="user.email_changed")
        def email_changed(instance, changes):
            if instance.username == "quiet":
                return None
            return {"user": instance.username, "old": changes["email"]["from"]}

        ann = User.objects.create_user("ann", email="a@x.y")
        quiet = User.objects.create_user("quiet", email="q@x.y")
        ann.email = "new@x.y"
        ann.save()
        quiet.email = "other@x.y"
        quiet.save()
        event = Event.objects.get()
        assert (event.type, event.data) == ("user.email_changed", {"user": "ann", "old": "a@x.y"})
    finally:
        bridge._code_rules[:] = registered


def test_decorator_refuses_a_field_rule_on_created():
    with pytest.raises(ValueError, match="updated"):
        bridge.model_event(User, "created", field="email", event_type="x.y")


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"model": "nope.Model", "action": "created", "event_type": "a.b"}, "model"),
        ({"model": "auth.User", "action": "created", "event_type": "bad type"}, "event_type"),
        (
            {"model": "auth.User", "action": "updated", "field": "nope", "event_type": "a.b"},
            "field",
        ),
        (
            {"model": "auth.User", "action": "created", "field": "email", "event_type": "a.b"},
            "action",
        ),
        (
            {"model": "auth.User", "action": "updated", "to_value": "x", "event_type": "a.b"},
            "field",
        ),
    ],
)
def test_bridges_are_validated_on_save(fields, bad):
    with pytest.raises(ValidationError) as info:
        SignalBridge(**fields).full_clean()
    assert bad in info.value.message_dict


def test_schemas_are_validated_on_save_naming_the_problem():
    with pytest.raises(ValidationError) as info:
        EventSchema(type="a.b", schema={"type": "objekt"}).full_clean()
    assert "schema.type" in info.value.message_dict["schema"][0]
    with pytest.raises(ValidationError):
        EventSchema(type="a.b", schema=["not", "an", "object"]).full_clean()
    EventSchema(type="a.b", schema={"type": "object", "required": ["id"]}).full_clean()


# --- Schedules --------------------------------------------------------------------------------


def test_schedule_is_a_periodic_task_that_emits_its_event():
    task = schedule_create(
        name="daily report", event_type="report.due", data={"kind": "daily"}, cron="0 9 * * 1-5"
    )
    row = PeriodicTask.objects.get(name="daily report")
    assert row.task == "events.emit_scheduled"
    assert (row.crontab.hour, row.crontab.day_of_week) == ("9", "1-5")
    # What beat does at the due time: send the task with the row's kwargs and its name.
    result = emit_scheduled.apply(
        kwargs=json.loads(task.kwargs), task_id="tick-1", headers={"periodic_task_name": row.name}
    )
    event = Event.objects.get(id=result.get())
    assert (event.type, event.data) == ("report.due", {"kind": "daily"})
    assert event.source == "schedule:daily report"


def test_a_redelivered_schedule_message_emits_once():
    task = schedule_create(name="tick", event_type="clock.tick", every_seconds=60)
    assert task.interval.every == 60
    for _ in range(2):
        emit_scheduled.apply(kwargs=json.loads(task.kwargs), task_id="same-message")
    assert Event.objects.count() == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "exactly one"),
        ({"cron": "* *"}, "5 fields"),
        ({"cron": "* * * * *", "every_seconds": 5}, "exactly one"),
        ({"every_seconds": 0}, "at least 1"),
        ({"cron": "61 * * * *"}, "minute"),
        ({"cron": "0 24 * * *"}, "hour"),
        ({"cron": "0 9 32 * *"}, "day of month"),
        ({"cron": "0 9 * 13 *"}, "month"),
        ({"cron": "0 9 * * funday"}, "day of week"),
        ({"cron": "0 9 * * 1", "timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_schedule_needs_one_valid_timing(options, message):
    with pytest.raises(ValueError, match=message):
        schedule_create(name="x", event_type="a.b", **options)
    assert not PeriodicTask.objects.filter(name="x").exists()


def test_a_cron_schedule_runs_in_the_time_zone_it_is_given():
    task = schedule_create(
        name="oslo mornings", event_type="report.due", cron="0 9 * * 1-5", timezone="Europe/Oslo"
    )
    assert str(task.crontab.timezone) == "Europe/Oslo"
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "9", "1-5")
