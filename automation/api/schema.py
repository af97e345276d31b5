"""The OpenAPI 3 schema (drf-spectacular): every operation also documents the error shape.

Served at /api/schema/ with a browsable page at /api/docs/ (Swagger UI from the installed
drf-spectacular-sidecar, so the page works without internet access).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="For programs: invalid, not_found, rate_limited, ...")
    message = serializers.CharField(help_text="For people: what went wrong and what to do.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Invalid input only: each field's problems.",
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema, plus the error answers every operation can give."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for status in self._error_statuses():
            if status not in responses:
                responses[status] = self._get_response_for_code(
                    ErrorSerializer, status, direction=direction
                )
        if self.method == "GET":
            # Answered by the HTTP server (gunicorn, uvicorn) before Django sees the request.
            responses["414"] = {"description": "The URL is longer than the HTTP server accepts."}
        return responses

    def _error_statuses(self) -> list[str]:
        statuses = ["400", "429", "503"]
        permissions = self.view.get_permissions()
        if any(not isinstance(permission, AllowAny) for permission in permissions):
            statuses += ["401", "403"]
        if "{" in self.path:
            statuses.append("404")
        if self.method in ("POST", "PUT", "PATCH"):
            statuses.append("415")  # a body of a type the operation does not read
        return sorted(statuses)
