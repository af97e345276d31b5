"""GET /api/schema/ is a valid OpenAPI 3 document of the public surface; /api/docs/ shows it."""

from __future__ import annotations

import pytest
from drf_spectacular.validation import validate_schema

pytestmark = pytest.mark.django_db

PUBLIC_SURFACE = {
    "/api/auth/token/": {"post"},
    "/api/auth/me/": {"get"},
    "/api/events/": {"get", "post"},
    "/api/events/{event_id}/": {"get"},
    "/api/events/{event_id}/replay/": {"post"},
    "/api/runs/": {"get"},
    "/api/runs/{run_id}/": {"get"},
    "/api/runs/{run_id}/cancel/": {"post"},
    "/api/runs/{run_id}/retry/": {"post"},
    "/api/approvals/": {"get"},
    "/api/approvals/{approval_id}/": {"get"},
    "/api/approvals/{approval_id}/decide/": {"post"},
    "/api/webhooks/": {"get", "post"},
    "/api/webhooks/{slug}/rotate/": {"post"},
    "/api/workflows/": {"get", "post"},
    "/api/workflows/{name}/": {"get", "put"},
    "/api/workflows/{name}/runs/": {"post"},
}


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_is_valid_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)  # raises on any violation of the OpenAPI 3.0 JSON Schema


def test_schema_documents_the_public_surface(schema):
    for path, methods in PUBLIC_SURFACE.items():
        assert path in schema["paths"], path
        assert methods <= set(schema["paths"][path]), (path, set(schema["paths"][path]))


def test_every_operation_documents_the_error_shape(schema):
    error = schema["components"]["schemas"]["ErrorDetail"]
    assert {"code", "message", "fields"} <= set(error["properties"])
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            refusal = operation["responses"]["400"]["content"]["application/json"]["schema"]
            assert refusal == {"$ref": "#/components/schemas/Error"}, (method, path)


def test_list_filters_and_ordering_are_documented(schema):
    names = {p["name"] for p in schema["paths"]["/api/runs/"]["get"]["parameters"]}
    assert {"workflow", "status", "correlation_id", "ordering", "cursor", "page_size"} <= names


def test_token_and_session_auth_are_documented(schema):
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_docs_page_is_served_without_internet(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/api/schema/" in html
    assert "swagger-ui-dist" in html
    assert "//cdn" not in html
