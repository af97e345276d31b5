"""Messages to running runs: signals (``POST /api/runs/<id>/signals/``) and queries
(``GET /api/runs/<id>/queries/<name>/``). Views parse, check permission, call one service,
render; refusals are DomainErrors, answered by automation/api/errors.py."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from automation.api.permissions import HasPerm, ReadWrite
from automation.api.responses import ListView, newest_first
from automation.api.schema import ErrorSerializer
from automation.commands import run_signal
from automation.engine import queries, querying
from automation.engine.signalling import SignalRefused
from automation.models import Run, Signal


class SignalSerializer(serializers.ModelSerializer):
    run = serializers.UUIDField(source="run_id", read_only=True)
    sent_by = serializers.CharField(source="sent_by.username", read_only=True, allow_null=True)

    class Meta:
        model = Signal
        fields = ["id", "run", "name", "data", "sent_by", "sent_at", "step_id", "consumed_at"]
        read_only_fields = fields


SignalRequest = inline_serializer(
    "SignalRequest",
    {
        "name": serializers.CharField(help_text="The name a wait_for_signal step waits for."),
        "data": serializers.DictField(required=False, help_text="A JSON object (default {})."),
    },
)


class RunSignals(ListView):
    """GET: the run's signals, oldest first (cursor-paginated), each with who sent it and the
    step that took it (``step_id`` empty: kept). POST ``{"name", "data"}``: send one."""

    permission_classes = [
        permissions.IsAuthenticated,
        ReadWrite.of("automation.view_run", "automation.change_run"),
    ]
    serializer_class = SignalSerializer
    ordering_fields = ["sent_at"]
    ordering = ["sent_at", "id"]
    pagination_class = newest_first("sent_at", "id")

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema asks for the model
            return Signal.objects.none()
        run = get_object_or_404(Run, id=self.kwargs["run_id"])
        return Signal.objects.filter(run=run).select_related("sent_by")

    @extend_schema(
        request=SignalRequest,
        responses={202: SignalSerializer, 400: ErrorSerializer, 404: ErrorSerializer,
                   409: ErrorSerializer},
    )  # fmt: skip
    def post(self, request: Request, run_id: Any) -> Response:
        """Send a signal to an active run: 202 with the signal, delivered at once to the step
        waiting for it (``step_id`` names it) or kept until such a step starts. 400 for a bad
        body, 404 for an unknown run, 409 for a run that has ended; nothing is stored then."""
        body = request.data
        if not isinstance(body, dict):
            raise SignalRefused('send a JSON object: {"name": "approved", "data": {...}}')
        unknown = sorted(set(body) - {"name", "data"})
        if unknown:
            raise SignalRefused(f"unknown fields {', '.join(unknown)}; a signal has name and data")
        signal = run_signal(run_id=run_id, name=body.get("name"), data=body.get("data"),
                            user=request.user)  # fmt: skip
        return Response(SignalSerializer(signal).data, status=202)


run_signals = RunSignals.as_view()


QueryList = inline_serializer(
    "QueryList",
    {
        "queries": serializers.ListField(
            child=inline_serializer(
                "QueryInfo",
                {
                    "name": serializers.CharField(),
                    "description": serializers.CharField(),
                    "parameters": serializers.ListField(child=serializers.CharField()),
                },
            )
        )
    },
)


@extend_schema(operation_id="runs_queries_list", responses={200: QueryList, 404: ErrorSerializer})
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated, HasPerm.of("automation.view_run")])
def run_query_list(request: Request, run_id: Any) -> Response:
    """The queries the run's workflow answers (``@workflow.query`` handlers)."""
    run = get_object_or_404(Run.objects.select_related("workflow"), id=run_id)
    return Response(
        {"queries": [_describe(spec) for spec in queries.queries_of(run.workflow.name)]}
    )


def _describe(spec: queries.QuerySpec) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "parameters": list(spec.parameters)}


@extend_schema(
    operation_id="runs_query_answer",
    parameters=[
        OpenApiParameter(
            "params",
            str,
            description="Any other query-string parameter is passed to the handler by name.",
            required=False,
        )
    ],
    responses={
        200: inline_serializer("QueryAnswer", {"query": serializers.CharField(),
                                               "result": serializers.JSONField()}),
        400: ErrorSerializer, 404: ErrorSerializer, 500: ErrorSerializer, 504: ErrorSerializer,
    },
)  # fmt: skip
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated, HasPerm.of("automation.view_run")])
def run_query_view(request: Request, run_id: Any, name: str) -> Response:
    """Ask the run a query: ``{"query", "result"}``, the handler's answer over the run's state
    now. 404 for an unknown run or query, 400 for a parameter the handler does not take, 500
    when the handler fails or answers too much, 504 when it does not answer in time."""
    run = get_object_or_404(Run.objects.select_related("workflow"), id=run_id)
    params = {key: request.query_params.get(key) for key in request.query_params}
    result = querying.query_run(run=run, name=name, params=params)
    return Response({"query": name, "result": result})
