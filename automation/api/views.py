"""The runs API (and who-am-I). Views parse, check permission, call one service, render."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from automation.api.filters import RunFilter
from automation.api.responses import ListView, error
from automation.api.schema import ErrorSerializer
from automation.api.serializers import RunDetailSerializer, RunSerializer
from automation.api.throttles import ApiRateThrottle
from automation.commands import run_retry
from automation.engine.errors import WorkflowError
from automation.engine.runs import run_cancel
from automation.logins import locked_out_json
from automation.models import Run


@extend_schema(
    responses=inline_serializer(
        "Me",
        {
            "username": serializers.CharField(),
            "is_staff": serializers.BooleanField(),
            "groups": serializers.ListField(child=serializers.CharField()),
            "auth": serializers.ChoiceField(["token", "session"]),
        },
    )
)
@api_view(["GET"])
def me(request: Request) -> Response:
    """Who the request is authenticated as: lets a machine check its token."""
    user = request.user
    return Response(
        {
            "username": user.get_username(),
            "is_staff": user.is_staff,
            "groups": sorted(user.groups.values_list("name", flat=True)),
            "auth": "token" if request.auth is not None else "session",
        }
    )


class ObtainToken(ObtainAuthToken):
    """POST {"username", "password"} → {"token"}: DRF's view, rate limited like the rest of the
    API (per address, API_RATE_LIMIT), and its failed sign-ins counted per account and per
    address like the login pages' (automation.logins): past the limit, 429."""

    throttle_classes = [ApiRateThrottle]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            # django-axes refused the sign-in, or this failure reached the limit: it flags the
            # request it was given (DRF's, so its middleware never sees the flag).
            if getattr(request, "axes_locked_out", False):
                return locked_out_json()
            raise


obtain_token = ObtainToken.as_view()


class ViewsRuns(permissions.BasePermission):
    message = "Seeing runs needs the automation.view_run permission."

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.user.has_perm("automation.view_run")


class OperatesRuns(permissions.BasePermission):
    message = "Cancelling or retrying runs needs the automation.change_run permission."

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.user.has_perm("automation.change_run")


class RunList(ListView):
    """Runs, newest first; filtered by ``workflow``, ``status``, ``correlation_id``, creation
    time and search attributes (``?search.customer=acme``, up to 5, exact match on text);
    ``?ordering=created_at`` for oldest first."""

    permission_classes = [permissions.IsAuthenticated, ViewsRuns]
    serializer_class = RunSerializer
    queryset = Run.objects.select_related("workflow", "version")
    filterset_class = RunFilter
    ordering_fields = ["created_at"]
    ordering = ["-created_at", "-id"]


run_list = RunList.as_view()


@extend_schema(responses=RunDetailSerializer)
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated, ViewsRuns])
def run_detail(request: Request, run_id: Any) -> Response:
    """One run with its steps: status, attempts, input, output, error, timings."""
    run = get_object_or_404(Run.objects.select_related("workflow", "version"), id=run_id)
    return Response(RunDetailSerializer(run).data)


def _operate(run_id: Any, service: Any) -> Response:
    run = get_object_or_404(Run.objects.select_related("workflow", "version"), id=run_id)
    try:
        run = service(run=run)
    except WorkflowError as exc:
        return error(409, "not_allowed_now", str(exc))
    return Response(RunSerializer(run).data, status=202)


@extend_schema(request=None, responses={202: RunSerializer, 409: ErrorSerializer})
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated, OperatesRuns])
def run_cancel_view(request: Request, run_id: Any) -> Response:
    """202: the run stops (its waits close, completed steps are compensated). 409 if finished."""
    return _operate(run_id, run_cancel)


@extend_schema(request=None, responses={202: RunSerializer, 409: ErrorSerializer})
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated, OperatesRuns])
def run_retry_view(request: Request, run_id: Any) -> Response:
    """202: a failed run resumes from the step that failed. 409 if it is not failed."""
    return _operate(run_id, run_retry)
