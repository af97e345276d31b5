"""The schema registry API: ``GET|POST /api/schemas/``, ``GET /api/schemas/<type>/``.

Views parse, check permission, call events.schemaregistry and render; InvalidSchema (400) and
IncompatibleSchema (409) are answered by the API's one exception handler.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Max, OuterRef, Subquery
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from automation.api.parsers import StorableJSONParser
from automation.api.permissions import HasPerm, ReadWrite
from automation.api.responses import ListView, error, newest_first
from automation.api.schema import ErrorSerializer
from events.models import Compatibility, EventSchema
from events.schemaregistry import schema_register

READ, WRITE = "events.view_eventschema", "events.add_eventschema"


class SchemaVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = EventSchema
        fields = [
            "type",
            "version",
            "schema",
            "compatibility",
            "upcast",
            "description",
            "active",
            "created_at",
        ]
        read_only_fields = fields


class SchemaInSerializer(serializers.Serializer):
    """The body of ``POST /api/schemas/``."""

    type = serializers.CharField(max_length=200, help_text="Exact event type, e.g. order.created")
    schema = serializers.JSONField(help_text="A JSON Schema for the events' data.")
    compatibility = serializers.ChoiceField(
        choices=Compatibility.choices,
        required=False,
        help_text="The type's mode from now on; default: the type's current one (backward).",
    )
    upcast = serializers.JSONField(
        required=False,
        help_text='Steps from the previous version: [{"rename": {"from": "a", "to": "b"}}, '
        '{"default": {"path": "p", "value": 0}}, {"move": {"from": "a", "to": "b.a"}}]',
    )
    description = serializers.CharField(max_length=300, required=False, allow_blank=True)

    def to_internal_value(self, data: Any) -> Any:
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        if unknown:
            raise serializers.ValidationError(
                {name: [f"Unknown field; expected {', '.join(self.fields)}."] for name in unknown}
            )
        return super().to_internal_value(data)


class SchemaTypeSerializer(serializers.Serializer):
    type = serializers.CharField()
    compatibility = serializers.ChoiceField(choices=Compatibility.choices)
    latest_version = serializers.IntegerField()
    versions = SchemaVersionSerializer(many=True, help_text="Every version, newest first.")


class Schemas(ListView):
    """GET: the latest version of each type's schema, by type (events.view_eventschema).
    POST: save a version (events.add_eventschema): 201 when new, 200 when unchanged."""

    permission_classes = [permissions.IsAuthenticated, ReadWrite.of(READ, WRITE)]
    parser_classes = [StorableJSONParser]
    serializer_class = SchemaVersionSerializer
    ordering_fields = ["type"]
    ordering = ["type"]
    pagination_class = newest_first("type", max_page_size=500)

    def get_queryset(self) -> Any:
        highest = (
            EventSchema.objects.filter(type=OuterRef("type"))
            .values("type")
            .annotate(v=Max("version"))
            .values("v")
        )
        return EventSchema.objects.filter(version=Subquery(highest))

    @extend_schema(
        request=SchemaInSerializer,
        responses={
            201: SchemaVersionSerializer,
            200: SchemaVersionSerializer,
            409: ErrorSerializer,
        },
    )
    def post(self, request: Request) -> Response:
        body = SchemaInSerializer(data=request.data)
        if not body.is_valid():
            return error(400, "invalid_schema", "Fix the fields named.", fields=body.errors)
        row, created = schema_register(**body.validated_data)
        return Response(SchemaVersionSerializer(row).data, status=201 if created else 200)


schemas = Schemas.as_view()


@extend_schema(responses=SchemaTypeSerializer)
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated, HasPerm.of(READ)])
def schema_detail(request: Request, event_type: str) -> Response:
    versions = list(EventSchema.objects.filter(type=event_type).order_by("-version"))
    if not versions:
        raise Http404(f"No schema for {event_type}; POST /api/schemas/ registers one.")
    body = {
        "type": event_type,
        "compatibility": versions[0].compatibility,
        "latest_version": versions[0].version,
        "versions": SchemaVersionSerializer(versions, many=True).data,
    }
    return Response(body)
