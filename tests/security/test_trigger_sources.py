"""A workflow driven by a webhook can say so: ``trigger.source`` (and ``source`` on a
``wait_for_event`` step, ``@workflow(source=...)`` in code) is a pattern on the stored source,
so an API client who may post events (``events.add_event``) cannot start a Stripe-driven
workflow, nor resolve its waits, by posting an event of the same type."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from automation import workflow
from automation.commands import workflow_definition_save
from automation.definitions.validation import InvalidDefinition
from automation.models import Run, RunStatus
from events.webhooks import webhook_endpoint_create
from tests.events.signing import body_of, stripe_headers

pytestmark = pytest.mark.django_db

FULFIL = {
    "name": "sec-fulfil",
    "trigger": {"event": "payment_intent.succeeded", "source": "webhook:stripe"},
    "steps": [
        {"id": "ship", "action": "log", "input": {"message": "ship"}},
        {
            "id": "refund",
            "wait_for_event": {
                "event": "charge.refunded",
                "source": "webhook:*",
                "timeout": "1h",
            },
        },
    ],
}


@workflow("sec-code-fulfil", on="invoice.paid", source="webhook:stripe")
def code_fulfil(ctx: Any, event: Any) -> Any:
    return {"paid": True}


@pytest.fixture
def mallory(django_user_model) -> Client:
    """May post events (events.add_event): what an integration's account has."""
    user = django_user_model.objects.create_user("mallory", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="add_event"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def act(workflow_harness, django_capture_on_commit_callbacks):
    def act(request: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            response = request()
        assert response.status_code == 202, response.content
        workflow_harness.drain()
        return response

    return act


@pytest.fixture
def stripe(client) -> Any:
    _, secret = webhook_endpoint_create(slug="stripe", scheme="stripe")

    def deliver(id: str, type: str) -> Any:
        body = body_of({"id": id, "type": type, "data": {"object": {"amount": 5}}})
        return client.post(
            "/hooks/stripe/", body, "application/json", headers=stripe_headers(secret, body)
        )

    return deliver


def post(client: Client, type: str) -> Any:
    return client.post("/api/events/", json.dumps({"type": type, "data": {}}), "application/json")


def test_an_api_event_starts_no_webhook_only_workflow_the_genuine_webhook_does(
    act, mallory, stripe
):
    workflow_definition_save(definition=FULFIL)
    act(lambda: post(mallory, "payment_intent.succeeded"))
    act(lambda: post(mallory, "invoice.paid"))
    assert not Run.objects.exists()

    act(lambda: stripe("evt_1", "payment_intent.succeeded"))
    act(lambda: stripe("evt_2", "invoice.paid"))
    started = Run.objects.values_list("workflow__name", "trigger_event__source")
    assert sorted(started) == [
        ("sec-code-fulfil", "webhook:stripe"),
        ("sec-fulfil", "webhook:stripe"),
    ]


def test_an_api_event_resolves_no_webhook_only_wait_the_genuine_webhook_does(act, mallory, stripe):
    workflow_definition_save(definition=FULFIL)
    act(lambda: stripe("evt_1", "payment_intent.succeeded"))
    run = Run.objects.get(workflow__name="sec-fulfil")
    assert run.status == RunStatus.WAITING

    act(lambda: post(mallory, "charge.refunded"))
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING

    act(lambda: stripe("evt_2", "charge.refunded"))
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.output["refund"]["source"] == "webhook:stripe"


def test_a_trigger_without_source_still_takes_any_source(act, mallory):
    workflow_definition_save(definition={**FULFIL, "trigger": {"event": "payment_intent.*"}})
    act(lambda: post(mallory, "payment_intent.succeeded"))
    assert Run.objects.filter(workflow__name="sec-fulfil").count() == 1


@pytest.mark.parametrize(
    ("where", "value", "path"),
    [
        (("trigger", "source"), "", "trigger.source"),
        (("trigger", "source"), 5, "trigger.source"),
        (("steps", 1, "wait_for_event", "source"), "", "steps[1].wait_for_event.source"),
    ],
)
def test_a_bad_source_pattern_is_refused_on_save_with_its_path(where, value, path):
    definition = json.loads(json.dumps(FULFIL))
    target = definition
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    with pytest.raises(InvalidDefinition) as refused:
        workflow_definition_save(definition=definition)
    assert path in [error.path for error in refused.value.errors]
