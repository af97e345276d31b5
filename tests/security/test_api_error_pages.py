"""Under /api/, every refusal is JSON in the API's error shape, including the ones Django makes
before any view runs: a bad Host header, too many form fields, a body over the limit. Before,
these answered Django's HTML "Bad Request (400)" page."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from automation.models import Workflow

pytestmark = pytest.mark.django_db


def _json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    return error


@pytest.mark.parametrize("path", ["/api/runs/", "/api/events/", "/api/auth/token/"])
def test_a_bad_host_header_is_a_json_400(client, path):
    response = client.get(path, HTTP_HOST="evil.example")
    _json_error(response, 400, "bad_host")


def test_more_form_fields_than_allowed_is_a_json_400(client, settings):
    fields = "&".join(f"f{n}=x" for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = client.post(
        "/api/auth/token/", fields, content_type="application/x-www-form-urlencoded"
    )
    error = _json_error(response, 400, "too_many_fields")
    assert str(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS) in error["message"]


def test_a_form_body_over_the_limit_is_a_json_413(client, settings):
    body = "username=" + "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = client.post(
        "/api/auth/token/", body, content_type="application/x-www-form-urlencoded"
    )
    _json_error(response, 413, "body_too_large")


def test_a_3_mb_definition_is_a_json_413_and_saves_nothing(users):
    api = APIClient()
    api.force_authenticate(users["admin"])
    definition = {
        "name": "huge",
        "trigger": {"event": "a.b"},
        "steps": [{"id": "s", "action": "log", "input": {"message": "x" * (3 * 1024 * 1024)}}],
    }
    body = json.dumps({"definition": definition})
    response = api.generic("POST", "/api/workflows/", body, content_type="application/json")
    _json_error(response, 413, "body_too_large")
    assert not Workflow.objects.filter(name="huge").exists()


def test_pages_outside_the_api_keep_their_html_error_page(client):
    response = client.get("/app/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


def test_a_database_refusal_is_reported_without_the_statement():
    from django.db import DataError

    from automation.lib.db import refused_value

    refusal = DataError('value too long for type character varying(200)\nLINE 1: INSERT INTO "x"')
    assert refused_value(refusal) == (
        "The database refused a value: value too long for type character varying(200)"
    )
    assert refused_value(DataError()) == "The database refused a value: DataError"
