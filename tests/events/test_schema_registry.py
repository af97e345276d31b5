"""The schema registry: versions through the API under a compatibility mode, the version each
event was validated by, and upcasters that show old events in the latest shape to workflows,
waits and replays without rewriting them."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from automation.commands import workflow_definition_save
from automation.models import Run
from events.models import Event, EventSchema
from events.upcasting import latest_data, upcaster

pytestmark = pytest.mark.django_db

V1 = {
    "type": "object",
    "properties": {"total": {"type": "number"}, "zip": {"type": "string"}},
    "required": ["total"],
}
# v2 renames total to amount, moves zip under address and adds currency with a default.
V2 = {
    "type": "object",
    "properties": {
        "amount": {"type": "number"},
        "currency": {"type": "string"},
        "address": {"type": "object", "properties": {"zip": {"type": "string"}}},
    },
}
V2_UPCAST = [
    {"rename": {"from": "total", "to": "amount"}},
    {"move": {"from": "zip", "to": "address.zip"}},
    {"default": {"path": "currency", "value": "EUR"}},
]


@pytest.fixture
def schema_api(users):
    """The operator with the schema permissions and event ingest."""
    codenames = ["view_eventschema", "add_eventschema", "add_event", "view_event"]
    users["operator"].user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=users['operator'])}")
    return client


def register(api, **body):
    return api.post("/api/schemas/", body, format="json")


def test_each_changed_schema_is_a_new_version_and_the_same_one_is_not(schema_api):
    first = register(schema_api, type="shop.order", schema=V1)
    assert first.status_code == 201
    assert first.json()["version"] == 1
    assert first.json()["compatibility"] == "backward"  # Confluent's default
    assert register(schema_api, type="shop.order", schema=V1).status_code == 200
    loose = {**V1, "required": []}  # dropping a requirement is backward compatible
    second = register(schema_api, type="shop.order", schema=loose)
    assert (second.status_code, second.json()["version"]) == (201, 2)

    detail = schema_api.get("/api/schemas/shop.order/").json()
    assert detail["latest_version"] == 2
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    assert detail["versions"][1]["schema"] == V1
    listed = schema_api.get("/api/schemas/").json()["results"]
    assert [(row["type"], row["version"]) for row in listed] == [("shop.order", 2)]


def test_a_version_breaking_the_mode_is_409_naming_path_and_rule_and_stores_nothing(schema_api):
    register(schema_api, type="shop.order", schema={**V1, "required": []})
    response = register(schema_api, type="shop.order", schema=V1)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "incompatible_schema"
    assert error["problems"] == ["backward: field `data.total` became required"]
    assert "backward: field `data.total` became required" in error["message"]
    assert EventSchema.objects.filter(type="shop.order").count() == 1


def test_forward_and_full_modes_refuse_widening(schema_api):
    register(schema_api, type="shop.order", schema=V1, compatibility="forward")
    response = register(schema_api, type="shop.order", schema={**V1, "required": []})
    assert response.status_code == 409
    assert response.json()["error"]["problems"] == [
        "forward: field `data.total` is no longer required"
    ]
    # The mode is the type's: the next POST without one keeps forward.
    enum = {**V1, "properties": {**V1["properties"], "zip": {"type": "string", "enum": ["1000"]}}}
    assert register(schema_api, type="shop.order", schema=enum).status_code == 201
    assert register(schema_api, type="shop.order", schema=V1).status_code == 409


def test_mode_none_allows_a_breaking_version(schema_api):
    register(schema_api, type="shop.order", schema=V1)
    response = register(schema_api, type="shop.order", schema=V2, compatibility="none")
    assert (response.status_code, response.json()["version"]) == (201, 2)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "bad type!", "schema": V1}, "type"),
        ({"type": "shop.order", "schema": {"type": "objekt"}}, "schema"),
        ({"type": "shop.order", "schema": V1, "compatibility": "sideways"}, "compatibility"),
        ({"type": "shop.order", "schema": V1, "upcast": [{"rename": {"from": "a"}}]}, "upcast"),
        (
            {
                "type": "shop.order",
                "schema": V1,
                "upcast": [{"rename": {"from": "a", "to": "b.c"}}],
            },
            "upcast",
        ),
        ({"type": "shop.order", "schema": V1, "colour": "red"}, "colour"),
        ({"schema": V1}, "type"),
    ],
)
def test_a_bad_request_is_400_naming_the_field_and_stores_nothing(schema_api, body, field):
    response = register(schema_api, **body)
    assert response.status_code == 400
    problems = response.json()["error"]["fields"][field]
    assert isinstance(problems, list)  # as every other 400 of the API
    assert problems
    assert not EventSchema.objects.exists()


def test_an_unknown_type_is_404(schema_api):
    assert schema_api.get("/api/schemas/no.such/").status_code == 404


def test_outsiders_cannot_read_or_register(users):
    anonymous = APIClient()
    assert anonymous.get("/api/schemas/").status_code == 401
    assert register(anonymous, type="a.b", schema=V1).status_code == 401
    outsider = APIClient()
    outsider.force_authenticate(users["outsider"])
    assert outsider.get("/api/schemas/").status_code == 403
    assert register(outsider, type="a.b", schema=V1).status_code == 403
    assert not EventSchema.objects.exists()


def test_each_event_records_the_version_that_validated_it(schema_api):
    assert (
        schema_api.post("/api/events/", {"type": "shop.none", "data": {}}, format="json").json()[
            "schema_version"
        ]
        is None
    )
    register(schema_api, type="shop.order", schema=V1)
    first = schema_api.post(
        "/api/events/", {"type": "shop.order", "data": {"total": 3}}, format="json"
    )
    assert first.json()["schema_version"] == 1
    register(schema_api, type="shop.order", schema=V2, compatibility="none", upcast=V2_UPCAST)
    second = schema_api.post(
        "/api/events/", {"type": "shop.order", "data": {"amount": 4}}, format="json"
    )
    assert second.json()["schema_version"] == 2
    assert Event.objects.get(id=first.json()["id"]).schema_version == 1


def _old_event(**data):
    """An event stored under v1, before v2 (with its upcast steps) was registered."""
    EventSchema.objects.create(type="shop.order", version=1, schema=V1)
    event = Event.objects.create(type="shop.order", source="api", data=data, schema_version=1)
    EventSchema.objects.create(
        type="shop.order", version=2, schema=V2, compatibility="none", upcast=V2_UPCAST
    )
    return event


def test_declarative_upcasts_give_the_latest_shape_without_rewriting_the_event():
    event = _old_event(total=12, zip="1000")
    assert latest_data(event) == {"amount": 12, "address": {"zip": "1000"}, "currency": "EUR"}
    assert event.as_trigger()["data"]["amount"] == 12
    event.refresh_from_db()
    assert event.data == {"total": 12, "zip": "1000"}  # stored as it came


def test_a_code_upcaster_runs_after_the_version_steps():
    event = _old_event(total=12)

    @upcaster("shop.order", from_version=1)
    def cents(data):
        return {**data, "cents": data["amount"] * 100}

    try:
        assert latest_data(event)["cents"] == 1200
    finally:
        from events import upcasting

        upcasting._code.pop(("shop.order", 1))


def test_events_stored_before_any_schema_are_upcast_from_version_zero():
    event = Event.objects.create(type="shop.legacy", source="api", data={"total": 1})
    EventSchema.objects.create(
        type="shop.legacy",
        version=1,
        schema={},
        upcast=[{"rename": {"from": "total", "to": "sum"}}],
    )
    assert latest_data(event) == {"sum": 1}


def test_workflows_see_old_events_in_the_latest_shape(
    workflow_harness, django_capture_on_commit_callbacks
):
    workflow_definition_save(
        definition={
            "name": "big-orders",
            "trigger": {"event": "shop.order", "filter": "trigger.data.amount > 10"},
            "steps": [
                {"id": "note", "action": "log", "input": {"message": "{{ trigger.data.currency }}"}}
            ],
        }
    )
    event = _old_event(total=12)
    from events.routing import event_route

    with django_capture_on_commit_callbacks(execute=True):
        event_route(event_id=event.id)  # the filter reads `amount`, which v1 called `total`
    run = Run.objects.get(trigger_event=event)
    assert run.input == {"amount": 12, "currency": "EUR"}
    workflow_harness.drain()
    assert workflow_harness.refresh(run).status == "succeeded"


def test_a_replay_stores_the_latest_shape_and_the_original_stays(users, workflow_harness):
    event = _old_event(total=12)
    from events.routing import event_replay

    copy = event_replay(event=event)
    assert copy.data == {"amount": 12, "currency": "EUR"}
    assert copy.schema_version == 2
    event.refresh_from_db()
    assert event.data == {"total": 12}


def test_the_admin_shows_every_version_and_refuses_a_breaking_one(client, users):
    client.force_login(users["admin"])
    EventSchema.objects.create(type="shop.order", version=1, schema={**V1, "required": []})
    page = client.get("/admin/events/eventschema/add/")
    assert page.status_code == 200
    response = client.post(
        "/admin/events/eventschema/add/",
        {
            "type": "shop.order",
            "version": 2,
            "compatibility": "backward",
            "schema": '{"type": "object", "required": ["total"]}',
            "upcast": "[]",
            "active": "on",
        },
    )
    assert response.status_code == 200
    assert "backward: field `data.total` became required" in response.content.decode()
    assert EventSchema.objects.count() == 1
    row = EventSchema.objects.get()
    EventSchema.objects.create(type="shop.order", version=2, schema={"type": "object"})
    detail = client.get(f"/admin/events/eventschema/{row.pk}/change/").content.decode()
    assert "v1" in detail
    assert "v2" in detail


def test_a_waiting_run_matches_an_old_event_by_its_latest_shape(
    workflow_harness, django_capture_on_commit_callbacks
):
    workflow_definition_save(
        definition={
            "name": "await-payment",
            "trigger": {"event": "shop.started"},
            "steps": [
                {
                    "id": "paid",
                    "wait_for_event": {
                        "event": "shop.order",
                        "match": {"amount": 12},
                        "timeout": "1d",
                        "lookback": "0s",
                    },
                }
            ],
        }
    )
    started = workflow_harness.emit("shop.started", {})
    run = Run.objects.get(trigger_event=started)
    assert workflow_harness.refresh(run).status == "waiting"
    event = _old_event(total=12)  # v1 called it total; the wait matches v2's amount
    from events.routing import event_route

    with django_capture_on_commit_callbacks(execute=True):
        event_route(event_id=event.id)
    workflow_harness.drain()
    workflow_harness.result(run)  # it succeeded: the wait took the event
    step = run.steps.get(step_id="paid")
    assert step.output["data"] == {"amount": 12, "currency": "EUR"}


def test_the_example_schema_versions_register_and_upcast_old_orders(schema_api):
    from pathlib import Path

    from events.services import emit

    versions = json.loads(
        (Path(__file__).parents[2] / "examples/schemas/example.order.placed.json").read_text()
    )
    assert register(schema_api, **versions[0]).status_code == 201
    old = emit("example.order.placed", {"customer": "acme", "price": "9"})
    assert register(schema_api, **versions[1]).status_code == 201
    assert latest_data(old) == {"customer": "acme", "amount": "9", "currency": "EUR"}
    detail = schema_api.get("/api/schemas/example.order.placed/").json()
    assert [v["version"] for v in detail["versions"]] == [2, 1]


def test_the_admin_offers_the_next_version_with_the_previous_schema(client, users):
    client.force_login(users["admin"])
    row = EventSchema.objects.create(type="shop.order", version=3, schema=V1, compatibility="full")
    detail = client.get(f"/admin/events/eventschema/{row.pk}/change/").content.decode()
    assert "/admin/events/eventschema/add/?type=shop.order" in detail
    form = client.get("/admin/events/eventschema/add/?type=shop.order").context["adminform"].form
    assert form.initial["version"] == 4
    assert form.initial["compatibility"] == "full"


def test_a_wait_looking_back_finds_an_old_event_by_its_latest_shape(workflow_harness):
    event = _old_event(total=12)  # stored before the wait began, under v1's `total`
    Event.objects.create(type="shop.order", source="api", data={"total": 5}, schema_version=1)
    workflow_definition_save(
        definition={
            "name": "await-payment",
            "trigger": {"event": "shop.started"},
            "steps": [
                {
                    "id": "paid",
                    "wait_for_event": {
                        "event": "shop.order",
                        "match": {"amount": 12},
                        "timeout": "1d",
                        "lookback": "1h",
                    },
                }
            ],
        }
    )
    run = Run.objects.get(trigger_event=workflow_harness.emit("shop.started", {}))
    workflow_harness.result(run)  # the wait took the event at once
    step = run.steps.get(step_id="paid")
    assert step.output["id"] == str(event.id)
    assert step.output["data"] == {"amount": 12, "currency": "EUR"}
