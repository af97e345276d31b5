"""The approvals API: the inbox, one approval, and the decision. Views parse, check access,
call the decide service and render; refusals are ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from approvals import selectors
from approvals.api.serializers import ApprovalSerializer, DecisionSerializer
from approvals.forms import InvalidValues
from approvals.models import Approval
from approvals.services import AlreadyDecided, approval_decide, can_decide
from automation.api.responses import error, newest_first

ApprovalPagination = newest_first("-created_at", "-id", max_page_size=200)


@api_view(["GET"])
def approval_list(request: Request) -> Response:
    """Approvals assigned to me or my groups (``?scope=all``: every one, for users allowed to
    decide any approval), filtered by ``?status=pending|approved|rejected|expired|cancelled``."""
    status = request.query_params.get("status") or None
    if status is not None and status not in Approval.Status.values:
        return error(
            400, "invalid_status", f"status must be one of {', '.join(Approval.Status.values)}"
        )
    scope = request.query_params.get("scope", "mine")
    if scope not in ("mine", "all"):
        return error(400, "invalid_scope", "scope must be 'mine' or 'all'")
    approvals = selectors.approvals_for(request.user, scope=scope, status=status)
    paginator = ApprovalPagination()
    page = paginator.paginate_queryset(approvals, request)
    return paginator.get_paginated_response(ApprovalSerializer(page, many=True).data)


def _visible(request: Request, approval_id: Any) -> Approval:
    approval = get_object_or_404(
        Approval.objects.select_related("run__workflow", "decided_by"), pk=approval_id
    )
    if not can_decide(approval, request.user):
        raise PermissionDenied
    return approval


@api_view(["GET"])
def approval_detail(request: Request, approval_id: Any) -> Response:
    try:
        approval = _visible(request, approval_id)
    except PermissionDenied:
        return error(
            403,
            "not_assigned",
            "Only an assignee (or a user allowed to decide any approval) can see it.",
        )
    return Response(ApprovalSerializer(approval).data)


@api_view(["POST"])
def approval_decide_view(request: Request, approval_id: Any) -> Response:
    """``{"decision": "approve"|"reject", "comment": "...", "values": {...}}``: 200 with the
    approval; 400 ``invalid_values`` naming the fields that do not fit; 403 for users who may
    not decide it; 409 when it was decided (or expired) already."""
    try:
        approval = _visible(request, approval_id)
    except PermissionDenied:
        return error(
            403,
            "not_assigned",
            "Only an assignee (or a user allowed to decide any approval) can decide.",
        )
    decision = DecisionSerializer(data=request.data)
    if not decision.is_valid():
        return error(400, "invalid_decision", "The decision is not valid.", fields=decision.errors)
    try:
        approval = approval_decide(
            approval=approval,
            user=request.user,
            decision=decision.validated_data["decision"],
            comment=decision.validated_data["comment"],
            values=decision.validated_data["values"],
        )
    except InvalidValues as invalid:
        return error(400, "invalid_values", f"Check the fields: {invalid}", fields=invalid.errors)
    except PermissionDenied as denied:
        return error(403, "not_allowed", str(denied))
    except AlreadyDecided:
        approval.refresh_from_db()
        return error(409, "already_decided", f"This approval is {approval.status} already.")
    return Response(ApprovalSerializer(approval).data)
