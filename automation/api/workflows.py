"""The workflows API: list, create and edit declarative workflows (a changed definition is a
new version), start runs, the JSON Schema of the format and the action registry."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import permissions, serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from automation.api.permissions import HasPerm, ReadWrite
from automation.api.responses import ListView, error, newest_first
from automation.api.schema import ErrorSerializer
from automation.api.serializers import RunSerializer
from automation.commands import workflow_definition_save
from automation.definitions.schema import definition_schema
from automation.engine import registry
from automation.engine.errors import WorkflowError
from automation.engine.inputs import InvalidInput, version_input_schema
from automation.engine.runs import run_start
from automation.models import ACTIVE_STATUSES, RunOrigin, Workflow, WorkflowVersion


class VersionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    in_flight = serializers.IntegerField(read_only=True)

    class Meta:
        model = WorkflowVersion
        fields = [
            "number",
            "trigger_event",
            "trigger_filter",
            "checksum",
            "created_by",
            "created_at",
            "in_flight",
        ]
        read_only_fields = fields


class WorkflowSerializer(serializers.ModelSerializer):
    version = serializers.SerializerMethodField()
    trigger_event = serializers.SerializerMethodField()

    class Meta:
        model = Workflow
        fields = [
            "name",
            "kind",
            "active",
            "paused_at",
            "description",
            "version",
            "trigger_event",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_version(self, wf: Workflow) -> int | None:
        latest = _latest(wf)
        return latest.number if latest else None

    def get_trigger_event(self, wf: Workflow) -> str:
        latest = _latest(wf)
        return latest.trigger_event if latest else ""


class WorkflowDetailSerializer(WorkflowSerializer):
    definition = serializers.SerializerMethodField()
    versions = serializers.SerializerMethodField()
    input_schema = serializers.SerializerMethodField()

    class Meta(WorkflowSerializer.Meta):
        fields = [*WorkflowSerializer.Meta.fields, "definition", "versions", "input_schema"]
        read_only_fields = fields

    def get_definition(self, wf: Workflow) -> dict[str, Any] | None:
        latest = _latest(wf)
        return latest.definition if latest and wf.kind == Workflow.Kind.DECLARATIVE else None

    def get_input_schema(self, wf: Workflow) -> dict[str, Any] | None:
        """What POST .../runs/ checks the input against (the latest version's); null: none."""
        latest = _latest(wf)
        return version_input_schema(latest) if latest else None

    @extend_schema_field(VersionSerializer(many=True))
    def get_versions(self, wf: Workflow) -> list[dict[str, Any]]:
        return VersionSerializer(versions_with_in_flight(wf), many=True).data


class WorkflowUpdatedSerializer(WorkflowDetailSerializer):
    version_created = serializers.BooleanField(help_text="False when the definition was unchanged.")

    class Meta(WorkflowDetailSerializer.Meta):
        fields = [*WorkflowDetailSerializer.Meta.fields, "version_created"]
        read_only_fields = fields


class ActionSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    input_schema = serializers.JSONField(help_text="JSON Schema of the action's input.")


class DefinitionInput(serializers.Serializer):
    definition = serializers.JSONField()
    active = serializers.BooleanField(required=False)


class RunInput(serializers.Serializer):
    input = serializers.DictField(required=False, default=dict)
    correlation_id = serializers.CharField(required=False, default="", max_length=200)


def _latest(wf: Workflow) -> WorkflowVersion | None:
    versions = list(wf.versions.all())  # prefetched
    return max(versions, key=lambda v: v.number) if versions else None


def versions_with_in_flight(wf: Workflow) -> Any:
    """The workflow's versions, newest first, each with its number of active runs."""
    return (
        wf.versions.select_related("created_by")
        .annotate(in_flight=Count("runs", filter=Q(runs__status__in=ACTIVE_STATUSES)))
        .order_by("-number")
    )


class ManagesWorkflows(permissions.BasePermission):
    """automation.view_workflow to list, automation.add_workflow to create."""

    def has_permission(self, request: Request, view: Any) -> bool:
        safe = request.method in permissions.SAFE_METHODS
        perm = "automation.view_workflow" if safe else "automation.add_workflow"
        self.message = f"This needs {perm}."
        return request.user.has_perm(perm)


class WorkflowList(ListView):
    """GET: every workflow (code and declarative), by name; ``?kind=``, ``?active=``. POST
    ``{"definition": {...}, "active"?}``: create a declarative workflow (201), 400 naming each
    invalid path, 409 if the name exists."""

    permission_classes = [permissions.IsAuthenticated, ManagesWorkflows]
    serializer_class = WorkflowSerializer
    queryset = Workflow.objects.prefetch_related("versions")
    filterset_fields = ["kind", "active"]
    ordering_fields = ["name", "created_at", "updated_at"]
    ordering = ["name"]
    pagination_class = newest_first("name")

    @extend_schema(
        request=DefinitionInput, responses={201: WorkflowDetailSerializer, 409: ErrorSerializer}
    )
    def post(self, request: Request) -> Response:
        return _create(request)


workflow_list = WorkflowList.as_view()


def _create(request: Request) -> Response:
    body = DefinitionInput(data=request.data)
    body.is_valid(raise_exception=True)
    definition = body.validated_data["definition"]
    name = definition.get("name") if isinstance(definition, dict) else None
    if name and Workflow.objects.filter(name=name).exists():
        return error(409, "exists", f"workflow {name!r} exists; PUT /api/workflows/{name}/")
    wf, _, _ = workflow_definition_save(
        definition=definition, user=request.user, active=body.validated_data.get("active")
    )
    return Response(_detail(wf.name), status=201)


def _detail(name: str) -> dict[str, Any]:
    wf = Workflow.objects.prefetch_related("versions").get(name=name)
    return WorkflowDetailSerializer(wf).data


@extend_schema(methods=["GET"], responses=WorkflowDetailSerializer)
@extend_schema(
    methods=["PUT"],
    request=DefinitionInput,
    responses={200: WorkflowUpdatedSerializer, 409: ErrorSerializer},
)
@api_view(["GET", "PUT"])
@permission_classes(
    [
        permissions.IsAuthenticated,
        ReadWrite.of("automation.view_workflow", "automation.change_workflow"),
    ]
)
def workflow_detail(request: Request, name: str) -> Response:
    """GET: the workflow, its latest definition and its versions (with in-flight runs).
    PUT ``{"definition", "active"?}``: a changed definition makes a new version."""
    wf = get_object_or_404(Workflow, name=name)
    if request.method == "GET":
        return Response(_detail(name))
    if wf.kind != Workflow.Kind.DECLARATIVE:
        return error(409, "code_workflow", f"{name!r} is written in code; change it there")
    body = DefinitionInput(data=request.data)
    body.is_valid(raise_exception=True)
    _, _, created = workflow_definition_save(
        definition=body.validated_data["definition"],
        user=request.user,
        name=name,
        active=body.validated_data.get("active"),
    )
    return Response({**_detail(name), "version_created": created})


@extend_schema(
    request=RunInput, responses={202: RunSerializer, 400: ErrorSerializer, 409: ErrorSerializer}
)
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated, HasPerm.of("automation.add_run")])
def workflow_run_start(request: Request, name: str) -> Response:
    """``{"input": {...}, "correlation_id"?}`` → 202 with the run (pinned to the latest
    version). 400 naming each path when the input breaks the workflow's input schema; 409
    when the workflow is inactive."""
    wf = get_object_or_404(Workflow, name=name)
    body = RunInput(data=request.data)
    body.is_valid(raise_exception=True)
    try:
        run = run_start(
            workflow=wf,
            input=body.validated_data["input"],
            correlation_id=body.validated_data["correlation_id"],
            started_by=request.user,
            started_via=RunOrigin.API,
            check_input=True,
        )
    except InvalidInput as exc:
        problems = [{"path": path, "message": message} for path, message in exc.errors]
        return error(400, "invalid_input", str(exc), errors=problems)
    except WorkflowError as exc:
        return error(409, "not_startable", str(exc))
    return Response(RunSerializer(run).data, status=202)


@extend_schema(responses={200: OpenApiTypes.OBJECT})
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def workflow_schema(request: Request) -> Response:
    """The JSON Schema (draft 7) of the declarative format, version 1."""
    return Response(definition_schema())


@extend_schema(responses=ActionSerializer(many=True))
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def action_list(request: Request) -> Response:
    """Every registered action (built-in and ``@action`` in code) with its input schema."""
    return Response(
        [
            {"name": spec.name, "description": spec.description, "input_schema": spec.input_schema}
            for spec in registry.actions()
        ]
    )
