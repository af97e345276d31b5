"""Pausing and resuming runs and workflows, and rerunning a run from a step (preview first).
Views parse, check permission, call one service (automation.control), render."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from automation.api.permissions import HasPerm, ReadWrite
from automation.api.schema import ErrorSerializer
from automation.api.serializers import RunSerializer
from automation.control import (
    RerunPlan,
    rerun_plan,
    run_pause,
    run_rerun,
    run_resume,
    workflow_pause,
    workflow_resume,
)
from automation.models import Run, StepRecord, Workflow

OPERATES_RUNS = HasPerm.of("automation.change_run")
CHANGES_WORKFLOWS = HasPerm.of("automation.change_workflow")


def _run(run_id: Any) -> Run:
    return get_object_or_404(Run.objects.select_related("workflow", "version"), id=run_id)


def _answer(run: Run) -> Response:
    run = Run.objects.select_related("workflow", "version", "paused_by").get(id=run.id)
    return Response(RunSerializer(run).data, status=202)


@extend_schema(request=None, responses={202: RunSerializer, 409: ErrorSerializer})
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated, OPERATES_RUNS])
def run_pause_view(request: Request, run_id: Any) -> Response:
    """202: a pending or waiting run is paused now (its timers keep their due time); a running
    one stops before its next step (``pause_requested`` until then). 409 when it has
    finished, is being cancelled or is paused already."""
    return _answer(run_pause(run=_run(run_id), user=request.user))


@extend_schema(request=None, responses={202: RunSerializer, 409: ErrorSerializer})
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated, OPERATES_RUNS])
def run_resume_view(request: Request, run_id: Any) -> Response:
    """202: the paused run carries on (a timer that became due meanwhile fires now). 409
    when it is not paused."""
    return _answer(run_resume(run=_run(run_id), user=request.user))


class PlannedStepSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="step_id")

    class Meta:
        model = StepRecord
        fields = ["id", "kind", "status", "attempt", "started_at", "finished_at"]
        read_only_fields = fields


class RerunPreviewSerializer(serializers.Serializer):
    run = serializers.UUIDField(source="run.id")
    from_step = serializers.CharField()
    execution = serializers.IntegerField(help_text="The number the rerun's execution gets.")
    kept = PlannedStepSerializer(many=True, help_text="Replayed as recorded, not run again.")
    repeated = PlannedStepSerializer(
        many=True,
        help_text="Superseded: they run again when the workflow reaches them (side effects "
        "repeat); the records stay in the ledger.",
    )


class RerunInput(serializers.Serializer):
    from_step = serializers.CharField(max_length=200)
    dry_run = serializers.BooleanField(required=False, default=False)


def _preview(plan: RerunPlan) -> dict[str, Any]:
    data = {
        "run": plan.run,
        "from_step": plan.from_step,
        "execution": plan.run.execution + 1,
        "kept": plan.kept,
        "repeated": plan.repeated,
    }
    return RerunPreviewSerializer(data).data


@extend_schema(
    methods=["GET"],
    parameters=[OpenApiParameter("from_step", str, required=True)],
    responses={200: RerunPreviewSerializer, 400: ErrorSerializer, 409: ErrorSerializer},
)
@extend_schema(
    methods=["POST"],
    request=RerunInput,
    responses={
        202: RunSerializer,
        200: RerunPreviewSerializer,
        400: ErrorSerializer,
        409: ErrorSerializer,
    },
)
@api_view(["GET", "POST"])
@permission_classes(
    [
        permissions.IsAuthenticated,
        ReadWrite.of("automation.view_run", "automation.change_run"),
    ]
)
def run_rerun_view(request: Request, run_id: Any) -> Response:
    """GET ``?from_step=``: what a rerun from that step would do (which steps run again,
    which are kept). POST ``{"from_step", "dry_run"?}``: rerun the finished or paused run
    from that step as a new execution (202), or with ``dry_run`` the preview (200). 400
    naming the steps to choose from; 409 for a run still active (pause it first)."""
    run = _run(run_id)
    if request.method == "GET":
        body = RerunInput(data={"from_step": request.query_params.get("from_step", "")})
    else:
        body = RerunInput(data=request.data)
    body.is_valid(raise_exception=True)
    from_step = body.validated_data["from_step"]
    if request.method == "GET" or body.validated_data["dry_run"]:
        return Response(_preview(rerun_plan(run=run, from_step=from_step)))
    return _answer(run_rerun(run=run, from_step=from_step, user=request.user))


class WorkflowPauseInput(serializers.Serializer):
    runs = serializers.BooleanField(
        required=False, default=False, help_text="Pause its active runs too (resumed with it)."
    )


class WorkflowPausedSerializer(serializers.Serializer):
    name = serializers.CharField()
    active = serializers.BooleanField()
    paused_at = serializers.DateTimeField(allow_null=True, help_text="null: not paused.")
    paused_by = serializers.CharField(allow_null=True)
    runs = serializers.IntegerField(
        help_text="Pause: its active runs paused with it. Resume: the held runs started."
    )


def _workflow_answer(wf: Workflow, runs: int) -> Response:
    by = wf.paused_by.get_username() if wf.paused_by is not None else None
    data = {"name": wf.name, "active": wf.active, "paused_at": wf.paused_at, "paused_by": by}
    return Response(WorkflowPausedSerializer({**data, "runs": runs}).data)


@extend_schema(
    request=WorkflowPauseInput, responses={200: WorkflowPausedSerializer, 409: ErrorSerializer}
)
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated, CHANGES_WORKFLOWS])
def workflow_pause_view(request: Request, name: str) -> Response:
    """``{"runs"?: false}``: from now on the workflow's new runs (from its triggers, the API,
    parents) are created paused and start when it resumes; its events are kept. Its active
    runs carry on, unless ``runs`` is true: then they are paused too. 409 if already paused."""
    wf = get_object_or_404(Workflow, name=name)
    body = WorkflowPauseInput(data=request.data)
    body.is_valid(raise_exception=True)
    wf, paused = workflow_pause(workflow=wf, user=request.user, runs=body.validated_data["runs"])
    return _workflow_answer(wf, paused)


@extend_schema(request=None, responses={200: WorkflowPausedSerializer, 409: ErrorSerializer})
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated, CHANGES_WORKFLOWS])
def workflow_resume_view(request: Request, name: str) -> Response:
    """The runs the pause held start, oldest first (runs paused one by one stay paused). 409
    if it is not paused."""
    wf = get_object_or_404(Workflow, name=name)
    wf, resumed = workflow_resume(workflow=wf, user=request.user)
    return _workflow_answer(wf, resumed)
