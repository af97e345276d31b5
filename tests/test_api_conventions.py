"""What every API endpoint shares: one error shape, filters, ordering and cursor pagination."""

from __future__ import annotations

import json
import urllib.request

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from events.webhooks import webhook_endpoint_create
from tests.events.servers import running_gunicorn
from tests.processes import free_port, project_env

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_api(users):
    operator = users["operator"]
    operator.user_permissions.add(*Permission.objects.filter(codename__in=["view_run"]))
    client = APIClient()
    client.force_authenticate(operator)
    return client


@pytest.fixture
def admin_api(users):
    client = APIClient()
    client.force_authenticate(users["admin"])
    return client


def test_unknown_object_is_404_in_the_error_shape(operator_api):
    response = operator_api.get("/api/runs/0190a0a0-0000-7000-8000-000000000000/")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "No Run matches the given query."}
    }


def test_unknown_api_path_is_404_in_the_error_shape(client):
    response = client.get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_missing_permission_is_403_with_what_is_needed(client, users):
    client.force_login(users["outsider"])
    response = client.get("/api/runs/")
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "permission_denied",
            "message": "Seeing runs needs the automation.view_run permission.",
        }
    }


def test_wrong_method_is_405_in_the_error_shape(operator_api):
    response = operator_api.delete("/api/runs/")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_missing_fields_are_named_under_fields(client):
    response = client.post("/api/auth/token/", {}, content_type="application/json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["fields"] == {
        "username": ["This field is required."],
        "password": ["This field is required."],
    }
    assert "username" in error["message"]


def test_malformed_json_is_400_in_the_error_shape(admin_api):
    response = admin_api.post("/api/webhooks/", b"{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_bad_filter_value_names_the_parameter(operator_api):
    response = operator_api.get("/api/runs/", {"created_after": "last tuesday"})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["created_after"]


def test_webhook_endpoints_are_paginated_filtered_and_ordered(admin_api):
    for slug in ("alpha", "beta", "gamma"):
        webhook_endpoint_create(slug=slug, scheme="none")
    webhook_endpoint_create(slug="delta", scheme="github")
    page = admin_api.get("/api/webhooks/", {"page_size": 2}).json()
    assert [item["slug"] for item in page["results"]] == ["alpha", "beta"]
    page = admin_api.get(page["next"]).json()
    assert [item["slug"] for item in page["results"]] == ["delta", "gamma"]
    assert page["next"] is None
    listing = admin_api.get("/api/webhooks/", {"scheme": "none", "ordering": "-slug"}).json()
    assert [item["slug"] for item in listing["results"]] == ["gamma", "beta", "alpha"]


def test_runs_can_be_listed_oldest_first(operator_api, workflow_harness):
    for n in range(3):
        workflow_harness.emit("example.order.placed", {"orderId": f"o-{n}"}, correlation_id=str(n))
    newest_first = operator_api.get("/api/runs/", {"workflow": "example-order-fanout"}).json()
    oldest_first = operator_api.get(
        "/api/runs/", {"workflow": "example-order-fanout", "ordering": "created_at"}
    ).json()
    newest = [run["correlation_id"] for run in newest_first["results"]]
    assert newest == ["2", "1", "0"]
    assert [run["correlation_id"] for run in oldest_first["results"]] == ["0", "1", "2"]


def test_ordering_by_an_unlisted_field_is_ignored(operator_api, workflow_harness):
    workflow_harness.emit("example.order.placed", {"orderId": "o-1"})
    response = operator_api.get("/api/runs/", {"ordering": "lease_owner"})
    assert response.status_code == 200


def test_token_auth_answers_503_while_the_database_is_down(tmp_path):
    closed = free_port()  # nothing listens there
    env = project_env(DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed}/automation")
    with running_gunicorn(env, tmp_path / "server.log", workers=1, threads=2) as server:
        request = urllib.request.Request(
            f"{server.url}/api/auth/me/", headers={"Authorization": "Token abc"}
        )
        try:
            urllib.request.urlopen(request, timeout=30)
            raise AssertionError("expected a 503")
        except urllib.error.HTTPError as exc:
            status, body, retry_after = exc.code, json.loads(exc.read()), exc.headers["Retry-After"]
    assert status == 503, server.output()[-2000:]
    assert body["error"]["code"] == "database_unavailable"
    assert retry_after == "5"


def test_a_crash_under_the_api_answers_json_and_elsewhere_the_html_page(rf):
    from automation.api.errors import json_500

    api = json_500(rf.get("/api/runs/"))
    assert api.status_code == 500
    assert json.loads(api.content)["error"]["code"] == "server_error"
    assert json_500(rf.get("/admin/"))["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("0163-11-17T18:58:41.7+22:38", 200),  # PostgreSQL refuses such an offset: sent as UTC
        ("0001-01-01T00:00:00+23:00", 400),  # before year 1 in UTC
        ("2026-13-01T00:00Z", 400),
    ],
)
def test_times_in_filters_reach_the_database_in_utc_or_are_refused(operator_api, value, status):
    response = operator_api.get("/api/runs/", {"created_before": value})
    assert response.status_code == status, response.content
