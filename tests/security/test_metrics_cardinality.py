"""/metrics stays small whatever senders invent: event types only workflows listen for get a
label of their own, sources are reduced to their kind, and label values are printable.

Before, every event type posted by an unauthenticated webhook sender became a series (3,000
types grew /metrics to 1.6 MB), every run that emitted an event made a ``source="run:<uuid>"``
series, and a NUL byte in a CloudEvent source was printed raw.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from automation import metric_labels
from automation.commands import workflow_definition_save
from automation.engine.matching import type_matches
from events.services import emit
from events.webhooks import webhook_endpoint_create

pytestmark = pytest.mark.django_db

INGESTED = "automation_events_ingested_total"


def _ingested(client) -> dict[tuple[str, str], float]:
    """The events-ingested counter by (type, source); fails if /metrics does not parse."""
    text = client.get("/metrics").content.decode()
    return {
        (sample.labels["type"], sample.labels["source"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == INGESTED
    }


def _deliver(client, body: dict) -> None:
    response = client.post("/hooks/open/", json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.content


def test_event_types_nobody_listens_for_share_one_label(
    client, users, django_capture_on_commit_callbacks
):
    webhook_endpoint_create(slug="open", scheme="none")
    workflow_definition_save(
        definition={
            "name": "on-paid",
            "trigger": {"event": "invoice.paid"},
            "steps": [{"id": "note", "action": "log", "input": {"message": "paid"}}],
        },
        user=users["admin"],
    )
    before = len(client.get("/metrics").content)
    counted_before = _ingested(client)  # the counters live as long as the process
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(300):
            _deliver(client, {"type": f"junk.t{n}", "n": n})
        _deliver(client, {"type": "invoice.paid"})
    ingested = _ingested(client)
    grown = {key for key, value in ingested.items() if value > counted_before.get(key, 0)}
    assert grown == {("other", "webhook"), ("invoice.paid", "webhook")}
    assert ingested[("other", "webhook")] - counted_before.get(("other", "webhook"), 0) == 300
    assert not any(type_.startswith("junk.") for type_, _ in ingested)
    assert len(client.get("/metrics").content) - before < 2000


def _hostile_source() -> str:
    # PostgreSQL cannot store NUL in text (400 before it gets here); SQLite stores it.
    nul = "\x00" if connection.vendor == "sqlite" else ""
    return f"crm{nul}\x07\x1b[31m\nx"


def test_sources_are_reduced_to_their_kind(client, users, django_capture_on_commit_callbacks):
    api = APIClient()
    api.force_authenticate(users["admin"])
    cloudevent = {"specversion": "1.0", "id": "1", "type": "a.b", "data": {}}
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(20):
            emit("a.b", {}, source=f"run:0190a1b2-0000-7000-8000-{n:012d}")
        # API clients are refused such a source at the door; code that emits one still gets
        # it into the metrics, escaped.
        response = api.generic(
            "POST",
            "/api/events/",
            json.dumps({**cloudevent, "source": _hostile_source()}),
            content_type="application/cloudevents+json",
        )
        assert response.status_code == 400, response.content
        emit("a.b", {}, source=_hostile_source())
    sources = {source for _, source in _ingested(client)}
    assert "run" in sources
    assert not any(source.startswith("run:") for source in sources)
    text = client.get("/metrics").content.decode()
    assert "\x00" not in text
    assert "\x1b" not in text
    assert sources <= {"webhook", "run", "signal", "schedule", "api", "app", "manual", "other"}


def test_a_control_character_in_any_label_is_never_printed_raw(
    client, django_capture_on_commit_callbacks
):
    from automation import metrics

    metrics.webhook_rejected("bad\x00reason\x1b[31m")
    text = client.get("/metrics").content.decode()
    assert "\x00" not in text
    assert "\x1b" not in text
    list(text_string_to_metric_families(text))  # still parses


# --- the cost of an unknown type --------------------------------------------------------------


@pytest.fixture
def matches_counted(monkeypatch) -> list[str]:
    """The event types matched against a pattern, one entry per pattern tried."""
    tried: list[str] = []

    def counting(pattern: str, event_type: str) -> bool:
        tried.append(event_type)
        return type_matches(pattern, event_type)

    monkeypatch.setattr(metric_labels, "type_matches", counting)
    return tried


def test_an_unknown_type_is_matched_against_the_patterns_once(matches_counted):
    labels = metric_labels.Labels(load_patterns=lambda: ("invoice.*", "order.paid"))
    for _ in range(5):
        assert labels.event_type("junk.t1") == "other"
    assert matches_counted == ["junk.t1", "junk.t1"]  # two patterns, tried once each
    assert labels.event_type("invoice.paid") == "invoice.paid"


def test_the_remembered_answers_are_bounded(matches_counted):
    labels = metric_labels.Labels(load_patterns=lambda: ("invoice.*",))
    for n in range(metric_labels.MAX_CACHED_TYPES + 1):
        labels.event_type(f"junk.t{n}")
    matches_counted.clear()
    labels.event_type("junk.t0")  # the oldest answer was dropped: matched again
    assert matches_counted == ["junk.t0"]


def test_a_type_gets_its_label_once_a_workflow_listens_for_it(
    client, users, django_capture_on_commit_callbacks
):
    webhook_endpoint_create(slug="open", scheme="none")
    before = _ingested(client)
    with django_capture_on_commit_callbacks(execute=True):
        _deliver(client, {"type": "refund.made"})
    workflow_definition_save(
        definition={
            "name": "on-refund",
            "trigger": {"event": "refund.*"},
            "steps": [{"id": "note", "action": "log", "input": {"message": "refund"}}],
        },
        user=users["admin"],
    )
    with django_capture_on_commit_callbacks(execute=True):
        _deliver(client, {"type": "refund.made"})
    after = _ingested(client)
    assert after[("other", "webhook")] - before.get(("other", "webhook"), 0) == 1
    assert after[("refund.made", "webhook")] - before.get(("refund.made", "webhook"), 0) == 1
