"""A workflow's page: the diff between two versions, the runs in flight, "Send test event"
(stored and routed as the API would, refused with the form's errors and nothing stored) and
Activate / Deactivate, each allowed to the same people as the API."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission

from automation.commands import workflow_definition_save
from automation.models import Run, Workflow
from events.models import Event

pytestmark = pytest.mark.django_db

V1 = {
    "name": "greet",
    "trigger": {"event": "greet.requested"},
    "steps": [{"id": "hello", "action": "log", "input": {"message": "hi"}}],
}
V2 = {**V1, "steps": [{"id": "hello", "action": "log", "input": {"message": "hey"}}]}
V3 = {**V2, "steps": [*V2["steps"], {"id": "bye", "action": "log", "input": {"message": "bye"}}]}


def _user(django_user_model, name: str, *codenames: str):
    user = django_user_model.objects.create_user(name, f"{name}@example.com", "pw")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def greet():
    for definition in (V1, V2, V3):
        workflow, _, _ = workflow_definition_save(definition=definition)
    return workflow


@pytest.fixture
def viewer(django_user_model):
    return _user(django_user_model, "vera", "view_workflow", "view_run")


def test_the_page_shows_the_latest_change_and_any_two_versions(client, greet, viewer):
    client.force_login(viewer)
    page = client.get("/app/workflows/greet/").content.decode()
    assert "Changes from v2 to v3" in page
    assert '<span class="d-add"><span class="sr-only">added: </span>+' in page
    assert "&quot;bye&quot;" in page
    assert "&quot;hi&quot;" not in page.split('id="diff"')[1]  # v1 is not compared
    page = client.get("/app/workflows/greet/?from=1&to=2").content.decode()
    assert "Changes from v1 to v2" in page
    diff = page.split('id="diff"')[1].split("</pre>")[0]
    assert re.search(
        r'class="d-del"><span class="sr-only">removed: </span>-\s+'
        r"&quot;message&quot;: &quot;hi&quot;",
        diff,
    )
    assert re.search(
        r'class="d-add"><span class="sr-only">added: </span>\+\s+'
        r"&quot;message&quot;: &quot;hey&quot;",
        diff,
    )
    assert "1 line added, 1 removed" in page
    same = client.get("/app/workflows/greet/?from=2&to=2").content.decode()
    assert "No difference between these versions." in same


def test_one_version_has_no_diff(client, viewer):
    workflow_definition_save(definition=V1)
    client.force_login(viewer)
    assert 'id="diff"' not in client.get("/app/workflows/greet/").content.decode()


def test_runs_in_flight_are_listed(client, greet, viewer, workflow_harness, managers):
    waiting = {
        **V3,
        "steps": [{"id": "ok", "approval": {"title": "OK?", "assignees": ["group:managers"]}}],
    }
    workflow_definition_save(definition=waiting)
    done = workflow_harness.start("greet", {})  # v4 waits: in flight
    client.force_login(viewer)
    section = client.get("/app/workflows/greet/").content.decode().split('id="in-flight"')[1]
    section = section.split("</section>")[0]
    assert f'href="/app/runs/{done.id}/"' in section
    assert "Waiting" in section


# --- Send test event --------------------------------------------------------------------


@pytest.fixture
def sender(django_user_model):
    return _user(django_user_model, "sam", "view_workflow", "add_event", "view_event")


def test_a_test_event_is_stored_as_the_api_would_and_starts_the_workflow(
    client, greet, sender, workflow_harness, django_capture_on_commit_callbacks
):
    client.force_login(sender)
    page = client.get("/app/workflows/greet/").content.decode()
    assert 'id="event-form"' in page
    assert 'value="greet.requested"' in page  # the trigger's type, filled in
    with django_capture_on_commit_callbacks(execute=True):  # routing starts after commit
        response = client.post(
            "/app/workflows/greet/send-event/",
            {"type": "greet.requested", "data": '{"who": "ada"}'},
        )
    event = Event.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/app/events/{event.id}/"
    assert (event.type, event.data, event.source) == ("greet.requested", {"who": "ada"}, "api")
    assert event.actor == sender
    workflow_harness.drain()
    run = Run.objects.get(trigger_event=event)  # routed: it started the workflow
    assert run.workflow == greet


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "This is not JSON"),
        ("[1, 2]", "The data must be a JSON object"),
        ("", "This field is required."),
    ],
)
def test_bad_event_data_is_refused_and_nothing_is_stored(client, greet, sender, data, message):
    client.force_login(sender)
    response = client.post(
        "/app/workflows/greet/send-event/", {"type": "greet.requested", "data": data}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Event.objects.exists()


def test_a_bad_event_type_is_refused_and_nothing_is_stored(client, greet, sender):
    client.force_login(sender)
    response = client.post("/app/workflows/greet/send-event/", {"type": "no spaces!", "data": "{}"})
    assert response.status_code == 400
    assert "use dotted names" in response.content.decode()
    assert not Event.objects.exists()


def test_sending_needs_the_event_permission(client, greet, viewer):
    client.force_login(viewer)
    assert 'id="event-form"' not in client.get("/app/workflows/greet/").content.decode()
    response = client.post("/app/workflows/greet/send-event/", {"type": "a.b", "data": "{}"})
    assert response.status_code == 403
    assert not Event.objects.exists()


def test_without_view_event_the_sender_returns_to_the_workflow(client, greet, django_user_model):
    client.force_login(_user(django_user_model, "ed", "view_workflow", "add_event"))
    response = client.post("/app/workflows/greet/send-event/", {"type": "a.b", "data": "{}"})
    assert response["Location"] == "/app/workflows/greet/"
    assert Event.objects.filter(type="a.b").exists()


# --- Activate / deactivate --------------------------------------------------------------


@pytest.fixture
def changer(django_user_model):
    return _user(django_user_model, "carl", "view_workflow", "change_workflow")


def test_deactivating_and_activating_from_the_page(client, greet, changer):
    client.force_login(changer)
    assert 'id="deactivate-form"' in client.get("/app/workflows/greet/").content.decode()
    response = client.post("/app/workflows/greet/deactivate/")
    assert response.status_code == 302
    assert Workflow.objects.get(name="greet").active is False
    page = client.get("/app/workflows/greet/").content.decode()
    assert "greet is inactive: it starts no new runs." in page
    assert 'id="activate-form"' in page
    client.post("/app/workflows/greet/activate/")
    assert Workflow.objects.get(name="greet").active is True
    history = list(LogEntry.objects.filter(object_id=str(greet.pk)).order_by("id"))
    assert [(e.change_message, e.user) for e in history] == [
        ("Deactivated.", changer),
        ("Activated.", changer),
    ]


def test_a_code_workflow_can_be_deactivated_too(client, changer):
    client.force_login(changer)
    client.post("/app/workflows/example-payment/deactivate/")
    assert Workflow.objects.get(name="example-payment").active is False


def test_activating_needs_the_change_permission(client, greet, viewer):
    Workflow.objects.filter(name="greet").update(active=False)
    client.force_login(viewer)
    assert 'id="activate-form"' not in client.get("/app/workflows/greet/").content.decode()
    assert client.post("/app/workflows/greet/activate/").status_code == 403
    assert Workflow.objects.get(name="greet").active is False
    client.logout()
    response = client.post("/app/workflows/greet/activate/")
    assert response.status_code == 302
    assert "/app/login/" in response["Location"]
    assert Workflow.objects.get(name="greet").active is False


def test_data_that_breaks_the_types_schema_is_refused_and_nothing_is_stored(client, greet, sender):
    from events.models import EventSchema

    schema = {"type": "object", "required": ["who"], "properties": {"who": {"type": "string"}}}
    EventSchema.objects.create(type="greet.requested", schema=schema)
    client.force_login(sender)
    response = client.post(
        "/app/workflows/greet/send-event/", {"type": "greet.requested", "data": '{"who": 7}'}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "data.who" in page.split('id="event-form"')[1]  # the failing path, on the form
    assert not Event.objects.exists()


def test_each_version_links_to_its_changes(client, greet, viewer):
    client.force_login(viewer)
    page = client.get("/app/workflows/greet/").content.decode()
    assert 'href="?from=2&amp;to=3#diff"' in page
    assert 'href="?from=1&amp;to=2#diff"' in page
    assert 'href="?from=0&amp;to=1#diff"' not in page  # the first version has none


def test_the_admins_list_actions_record_who_changed_the_flag_too(admin_client, greet):
    admin_client.post(
        "/admin/automation/workflow/", {"action": "deactivate", "_selected_action": [greet.pk]}
    )
    assert Workflow.objects.get(name="greet").active is False
    entry = LogEntry.objects.get(object_id=str(greet.pk))
    assert entry.change_message == "Deactivated."
    assert entry.user.username == "admin"
