"""Operators see circuit breakers and close one now: the API, the /app/ page, the admin action
(each tried by an outsider too), the audit trail, the run page's note and /metrics."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from prometheus_client.parser import text_string_to_metric_families

from automation.engine import clock
from automation.metrics import MAX_CIRCUIT_KEYS
from automation.models import Circuit

pytestmark = pytest.mark.django_db

KEY = "api.example.com"


@pytest.fixture
def open_circuit():
    now = clock.now()
    return Circuit.objects.create(
        key=KEY,
        state="open",
        failures=5,
        window_start=now,
        opened_at=now,
        retry_at=now + timedelta(seconds=30),
    )


def _user(django_user_model, name, *perms, staff=False):
    user = django_user_model.objects.create_user(name, password="pw", is_staff=staff)
    for perm in perms:
        user.user_permissions.add(Permission.objects.get(codename=perm))
    return user


@pytest.fixture
def operator(django_user_model):
    return _user(django_user_model, "operator", "view_circuit", "change_circuit", staff=True)


@pytest.fixture
def viewer(django_user_model):
    return _user(django_user_model, "viewer", "view_circuit", staff=True)


def test_the_api_lists_circuits_with_their_state(client, viewer, open_circuit):
    Circuit.objects.create(key="crm.sync", state="closed", failures=2)
    client.force_login(viewer)
    body = client.get("/api/circuits/").json()
    assert [c["key"] for c in body["results"]] == [KEY, "crm.sync"]
    first = body["results"][0]
    assert set(first) == {"key", "state", "failures", "opened_at", "retry_at"}
    assert (first["state"], first["failures"]) == ("open", 5)
    assert first["retry_at"] is not None
    assert [c["key"] for c in client.get("/api/circuits/?state=open").json()["results"]] == [KEY]
    refused = client.get("/api/circuits/?state=broken")
    assert refused.status_code == 400
    assert "state" in refused.json()["error"]["message"]


def test_close_now_from_the_api_is_audited(client, operator, open_circuit):
    client.force_login(operator)
    response = client.post(f"/api/circuits/{KEY}/close/")
    assert response.status_code == 200
    assert response.json()["state"] == "closed"
    circuit = Circuit.objects.get(key=KEY)
    assert (circuit.state, circuit.failures, circuit.retry_at) == ("closed", 0, None)
    entry = LogEntry.objects.get(object_id=KEY)
    assert entry.user == operator
    assert entry.change_message == "Closed the circuit now."


def test_closing_an_unknown_circuit_is_a_404_saying_where_to_look(client, operator):
    client.force_login(operator)
    response = client.post("/api/circuits/nowhere.example.com/close/")
    assert response.status_code == 404
    assert "GET /api/circuits/" in response.json()["error"]["message"]
    assert not Circuit.objects.exists()
    assert not LogEntry.objects.exists()


def test_a_viewer_cannot_close_a_circuit(client, viewer, open_circuit):
    client.force_login(viewer)
    assert client.post(f"/api/circuits/{KEY}/close/").status_code == 403
    assert client.post(f"/app/circuits/{KEY}/close/").status_code == 403
    assert Circuit.objects.get(key=KEY).state == "open"
    assert not LogEntry.objects.exists()


def test_the_app_page_shows_circuits_and_closes_one(client, operator, viewer, open_circuit):
    client.force_login(viewer)
    page = client.get("/app/circuits/").content.decode()
    assert KEY in page
    assert "Close now" not in page  # a viewer gets no button
    client.force_login(operator)
    page = client.get("/app/circuits/").content.decode()
    assert "Close now" in page
    response = client.post(f"/app/circuits/{KEY}/close/", follow=True)
    assert f"Circuit {KEY} closed" in response.content.decode()
    assert Circuit.objects.get(key=KEY).state == "closed"
    assert LogEntry.objects.filter(object_id=KEY, user=operator).exists()


def test_the_admin_action_needs_the_change_permission(client, operator, viewer, open_circuit):
    form = {"action": "close_now", "_selected_action": [KEY]}
    client.force_login(viewer)
    listing = client.get("/admin/automation/circuit/").content.decode()
    assert KEY in listing
    assert "close_now" not in listing
    client.post("/admin/automation/circuit/", form)
    assert Circuit.objects.get(key=KEY).state == "open"

    client.force_login(operator)
    assert "close_now" in client.get("/admin/automation/circuit/").content.decode()
    response = client.post("/admin/automation/circuit/", form, follow=True)
    assert "1 circuit(s) closed" in response.content.decode()
    assert Circuit.objects.get(key=KEY).state == "closed"
    assert LogEntry.objects.filter(object_id=KEY, user=operator).exists()


def _samples(client):
    text = client.get("/metrics").content.decode()
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("automation_circuit")
    ]


def test_metrics_export_circuit_state_with_bounded_labels(client, open_circuit):
    Circuit.objects.create(key="crm.sync", state="half_open")
    Circuit.objects.create(key="quiet.example.com", state="closed")
    samples = _samples(client)
    by_state = {s.labels["state"]: s.value for s in samples if s.name == "automation_circuits"}
    assert by_state == {"closed": 1, "open": 1, "half_open": 1}
    tripped = {s.labels["key"]: s.value for s in samples if s.name == "automation_circuit_open"}
    assert tripped == {KEY: 1.0, "crm.sync": 0.5}

    Circuit.objects.bulk_create(
        Circuit(key=f"host{n}.example.com", state="open") for n in range(MAX_CIRCUIT_KEYS + 20)
    )
    tripped = [s for s in _samples(client) if s.name == "automation_circuit_open"]
    assert len(tripped) == MAX_CIRCUIT_KEYS
