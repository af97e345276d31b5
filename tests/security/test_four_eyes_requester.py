"""Four-eyes holds whichever way a run started: the person who caused the triggering event
(the API user who posted it, the user who replayed it, the admin whose save a signal bridge
turned into it, the requester of the run that emitted it, the parent run's requester) is the
run's requester, and cannot decide its four-eyes approval (403). Webhooks and schedules have no
requester: an external system or the clock caused them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connections
from django.test import Client

from approvals.models import Approval
from automation import workflow
from automation.commands import workflow_definition_save
from automation.models import Run
from events import bridge
from events.models import Event, SignalBridge
from events.services import emit
from events.webhooks import webhook_endpoint_create

pytestmark = pytest.mark.django_db

SPEND = {
    "name": "sec-spend",
    "trigger": {"event": "spend.requested"},
    "steps": [
        {
            "id": "ok",
            "approval": {"title": "Spend?", "assignees": ["group:approvers"], "four_eyes": True},
        }
    ],
}
RELAY = {
    "name": "sec-relay",
    "trigger": {"event": "relay.requested"},
    "steps": [{"id": "pass", "action": "event.emit", "input": {"type": "spend.requested"}}],
}


@workflow("sec-parent", on="parent.requested")
def parent(ctx: Any, event: Any) -> Any:
    return ctx.child("spend", "sec-child-spend", {})


@workflow("sec-child-spend")
def child_spend(ctx: Any, event: Any) -> Any:
    return ctx.approval("ok", title="Spend?", assignees=["group:approvers"], four_eyes=True)


@pytest.fixture(autouse=True)
def _fresh_bridges():
    """Signal bridges are cached per process; a rolled-back test must not leave one behind."""
    bridge.cache_clear()
    yield
    bridge.cache_clear()


@pytest.fixture
def approvers(django_user_model):
    """ann and bob approve; ann may also post and replay events and use the admin."""
    group = Group.objects.create(name="approvers")
    ann = django_user_model.objects.create_user("ann", password="pw", is_staff=True)
    bob = django_user_model.objects.create_user("bob", password="pw")
    for user in (ann, bob):
        user.groups.add(group)
    ann.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["add_event", "view_event", "replay_event", "add_group"]
        )
    )
    workflow_definition_save(definition=SPEND)
    workflow_definition_save(definition=RELAY)
    return ann, bob


@pytest.fixture
def act(workflow_harness, django_capture_on_commit_callbacks):
    """Do something as a request would (its after-commit routing runs), then drive the runs."""

    def act(request: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            response = request()
        workflow_harness.drain()
        return response

    return act


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def spend_approval() -> Approval:
    return Approval.objects.get(step_id="ok")


def decide(user: Any, approval: Approval) -> Any:
    return client_for(user).post(
        f"/api/approvals/{approval.pk}/decide/", {"decision": "approve"}, "application/json"
    )


def assert_four_eyes_refuses(ann: Any, bob: Any) -> None:
    approval = spend_approval()
    assert approval.four_eyes
    assert approval.requested_by == ann
    refused = decide(ann, approval)
    assert refused.status_code == 403, refused.content
    assert "four-eyes" in refused.json()["error"]["message"]
    assert decide(bob, approval).status_code == 200


def post_event(user: Any, type: str) -> Any:
    body = json.dumps({"type": type, "data": {"amount": 900}})
    return client_for(user).post("/api/events/", body, "application/json")


def test_the_user_who_posts_the_event_cannot_approve_the_run_it_started(act, approvers):
    ann, bob = approvers
    assert act(lambda: post_event(ann, "spend.requested")).status_code == 202
    event = Event.objects.get(type="spend.requested")
    assert event.actor == ann
    assert Run.objects.get(trigger_event=event).started_by == ann
    assert_four_eyes_refuses(ann, bob)


def test_a_cloudevent_posted_by_a_user_is_theirs_too(act, approvers):
    ann, bob = approvers
    document = {"specversion": "1.0", "id": "c-1", "source": "erp", "type": "spend.requested"}
    response = act(
        lambda: client_for(ann).post(
            "/api/events/", json.dumps(document), "application/cloudevents+json"
        )
    )
    assert response.status_code == 202, response.content
    assert_four_eyes_refuses(ann, bob)


def test_the_user_who_replays_an_event_is_the_requester_of_its_runs(act, approvers):
    ann, bob = approvers
    original = emit("spend.requested", {"amount": 900})  # stored, never routed: no run
    response = act(lambda: client_for(ann).post(f"/api/events/{original.pk}/replay/"))
    assert response.status_code == 202, response.content
    assert Event.objects.get(pk=response.json()["id"]).actor == ann
    assert_four_eyes_refuses(ann, bob)


def test_an_admin_save_turned_into_an_event_by_a_signal_is_the_admins(act, approvers):
    ann, bob = approvers
    SignalBridge.objects.create(model="auth.Group", action="created", event_type="spend.requested")
    saved = act(lambda: client_for(ann).post("/admin/auth/group/add/", {"name": "buyers"}))
    assert saved.status_code == 302, saved.content
    event = Event.objects.get(type="spend.requested")
    assert (event.source, event.actor) == ("signal:auth.Group", ann)
    assert_four_eyes_refuses(ann, bob)


def test_an_event_emitted_by_a_run_keeps_the_runs_requester(act, approvers):
    ann, bob = approvers
    act(lambda: post_event(ann, "relay.requested"))
    emitted = Event.objects.get(type="spend.requested")
    assert emitted.source.startswith("run:")
    assert emitted.actor == ann
    assert_four_eyes_refuses(ann, bob)


def test_a_child_run_has_its_parents_requester(act, approvers):
    ann, bob = approvers
    act(lambda: post_event(ann, "parent.requested"))
    child = Run.objects.get(workflow__name="sec-child-spend")
    assert child.parent_run.started_by == ann
    assert child.started_by == ann
    assert_four_eyes_refuses(ann, bob)


def test_a_webhook_delivery_has_no_requester(act, approvers, client):
    ann, _bob = approvers
    webhook_endpoint_create(slug="erp", scheme="none")
    body = json.dumps({"type": "spend.requested"})
    assert act(lambda: client.post("/hooks/erp/", body, "application/json")).status_code == 202
    approval = spend_approval()
    assert approval.requested_by is None  # an external system asked: any approver may decide
    assert decide(ann, approval).status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_the_signed_in_user_is_known_to_signals_under_asgi(django_user_model):
    """The embedded server is ASGI: the request's user reaches the signal through the thread
    the sync view runs in."""
    from asgiref.sync import sync_to_async
    from django.test import AsyncClient

    def setup() -> Any:
        bridge.cache_clear()
        SignalBridge.objects.create(model="auth.Group", action="created", event_type="g.made")
        return django_user_model.objects.create_superuser("root", password="pw")

    root = await sync_to_async(setup)()
    try:
        client = AsyncClient()
        await client.aforce_login(root)
        response = await client.post("/admin/auth/group/add/", {"name": "buyers"})
        assert response.status_code == 302
        event = await Event.objects.aget(type="g.made")
        assert event.actor_id == root.pk
    finally:
        bridge.cache_clear()
        # The connection asgiref's thread opened would keep PostgreSQL's test database open.
        await sync_to_async(connections.close_all)()


def _schedule_form(kwargs: dict[str, Any], task: str = "events.emit_scheduled") -> dict[str, Any]:
    from django_celery_beat.models import IntervalSchedule

    every = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    return {
        "name": "nightly-spend", "regtask": task, "task": "", "enabled": "on",
        "interval": every.pk, "crontab": "", "solar": "", "clocked": "", "args": "[]",
        "kwargs": json.dumps(kwargs), "priority": "", "headers": "{}",
    }  # fmt: skip


@pytest.fixture
def scheduler(approvers):
    """ann may also manage schedules in the admin (staff, not a superuser)."""
    ann, bob = approvers
    ann.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="django_celery_beat")
    )
    return ann, bob


def test_a_schedule_saved_in_the_admin_is_its_savers_whatever_the_kwargs_say(act, scheduler):
    from django_celery_beat.models import PeriodicTask

    from events.tasks import emit_scheduled

    ann, bob = scheduler
    form = _schedule_form({"type": "spend.requested", "actor_id": bob.pk})
    saved = client_for(ann).post("/admin/django_celery_beat/periodictask/add/", form)
    assert saved.status_code == 302, saved.content.decode()[:3000]
    kwargs = json.loads(PeriodicTask.objects.get(name="nightly-spend").kwargs)
    assert kwargs == {"type": "spend.requested", "actor_id": ann.pk}  # bob's id dropped

    act(lambda: emit_scheduled.apply(kwargs=kwargs, headers={"periodic_task_name": "n"}))
    assert Event.objects.get(type="spend.requested").actor == ann
    assert_four_eyes_refuses(ann, bob)


def test_running_a_schedule_from_the_admin_makes_the_clicker_the_requester(act, scheduler):
    from django_celery_beat.models import PeriodicTask

    from automation.celery import app
    from events.schedules import schedule_create

    ann, bob = scheduler
    schedule_create(name="nightly-spend", event_type="spend.requested", every_seconds=3600)
    task = PeriodicTask.objects.get(name="nightly-spend")
    app.conf.task_always_eager = True
    try:
        ran = act(
            lambda: client_for(ann).post(
                "/admin/django_celery_beat/periodictask/",
                {"action": "run_tasks", "_selected_action": [task.pk]},
            )
        )
    finally:
        app.conf.task_always_eager = False
    assert ran.status_code == 302
    assert Event.objects.get(type="spend.requested").actor == ann
    assert_four_eyes_refuses(ann, bob)


def test_staff_may_schedule_only_event_emission(scheduler):
    from django_celery_beat.models import PeriodicTask

    ann, _bob = scheduler
    form = _schedule_form({}, task="automation.purge")
    refused = client_for(ann).post("/admin/django_celery_beat/periodictask/add/", form)
    assert refused.status_code == 200  # the form again, with the reason
    assert "events.emit_scheduled" in refused.content.decode()
    assert not PeriodicTask.objects.filter(name="nightly-spend").exists()


MAKER = {
    "name": "sec-maker",
    "trigger": {"event": "team.requested"},
    "steps": [
        {"id": "make", "action": "record.create",
         "input": {"model": "auth.Group", "fields": {"name": "buyers"}}},
    ],
}  # fmt: skip


def test_engine_work_done_in_a_request_is_not_credited_to_its_user(
    rf, approvers, workflow_harness, settings, django_capture_on_commit_callbacks
):
    """A backend that routes and advances inline runs engine work in the request's thread:
    a save a run makes there (a signal turns it into an event) is the run's, not the signed-in
    user's. Otherwise bob, resuming ann's run, would become the requester of what it starts."""
    from automation.lib.requestuser import RequestUserMiddleware
    from events.routing import event_route

    ann, bob = approvers
    settings.AUTOMATION_RECORD_MODELS = ["auth.Group"]
    workflow_definition_save(definition=MAKER)
    SignalBridge.objects.create(model="auth.Group", action="created", event_type="spend.requested")
    event = emit("team.requested", {}, actor_id=ann.pk)

    def view(request: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            event_route(event_id=event.id)
        workflow_harness.drain()
        return None

    request = rf.post("/somewhere/")
    request.user = bob
    RequestUserMiddleware(view)(request)
    made = Event.objects.get(type="spend.requested")
    assert made.source == "signal:auth.Group"
    assert made.actor_id != bob.pk


def test_who_caused_an_event_is_shown_in_the_api_and_on_its_page(act, approvers):
    ann, _bob = approvers
    posted = act(lambda: post_event(ann, "spend.requested")).json()
    assert posted["actor"] == "ann"
    listed = client_for(ann).get("/api/events/").json()["results"]
    assert [e["actor"] for e in listed] == ["ann"]
    assert client_for(ann).get(f"/api/events/{posted['id']}/").json()["actor"] == "ann"
    page = client_for(ann).get(f"/app/events/{posted['id']}/").content.decode()
    assert "Caused by user" in page
    assert ">ann<" in page
