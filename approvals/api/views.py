"""The approvals API: the inbox, one approval, and the decision. Views parse, check access,
call the decide service and render; refusals are ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from approvals import delegations, selectors
from approvals.api.filters import ApprovalFilter
from approvals.api.serializers import (
    ApprovalSerializer,
    DecisionSerializer,
    DelegationSerializer,
)
from approvals.models import Approval, Delegation
from approvals.services import AlreadyDecided, approval_decide
from automation.api.responses import ListView, error, newest_first
from automation.api.schema import ErrorSerializer


class ApprovalList(ListView):
    """Approvals assigned to me or my groups (``?scope=all``: every one, for users allowed to
    decide any approval), filtered by ``?status=pending|approved|rejected|expired|cancelled``."""

    serializer_class = ApprovalSerializer
    filterset_class = ApprovalFilter
    ordering_fields = ["created_at", "due_at"]
    ordering = ["-created_at", "-id"]
    pagination_class = newest_first("-created_at", "-id", max_page_size=200)

    def get_queryset(self) -> QuerySet[Approval]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return Approval.objects.none()
        scope = self.request.query_params.get("scope", "mine")
        return selectors.approvals_for(self.request.user, scope=scope)


approval_list = ApprovalList.as_view()


@extend_schema(responses=ApprovalSerializer)
@api_view(["GET"])
def approval_detail(request: Request, approval_id: Any) -> Response:
    try:
        approval = selectors.approval_visible(request.user, approval_id)
    except PermissionDenied:
        return error(
            403,
            "not_assigned",
            "Only an assignee (or a user allowed to decide any approval) can see it.",
        )
    return Response(ApprovalSerializer(approval).data)


@extend_schema(
    request=DecisionSerializer, responses={200: ApprovalSerializer, 409: ErrorSerializer}
)
@api_view(["POST"])
def approval_decide_view(request: Request, approval_id: Any) -> Response:
    """``{"decision": "approve"|"reject", "comment": "...", "values": {...}}``: 200 with the
    approval; 400 ``invalid_values`` naming the fields that do not fit; 403 for users who may
    not decide it; 409 when it was decided (or expired) already."""
    try:
        approval = selectors.approval_visible(request.user, approval_id)
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
    except PermissionDenied as denied:
        return error(403, "not_allowed", str(denied))
    except AlreadyDecided:
        approval.refresh_from_db()  # answered with the status it has now, whoever decided it
        if approval.status == Approval.Status.PENDING:
            raise  # still open: the vote was refused (this person's say was given already)
        raise AlreadyDecided(f"This approval is {approval.status} already.") from None
    return Response(ApprovalSerializer(approval).data)


# --- delegation (out of office) ---------------------------------------------------------------


class DelegationList(ListView):
    """GET: my delegations, newest period first. POST ``{"delegate": username, "starts_at",
    "ends_at", "reason"}``: from ``starts_at`` to ``ends_at`` the approvals I may decide reach
    the delegate too; 400 naming the problem (an overlapping period, an end in the past, myself
    as delegate ...)."""

    permission_classes = [permissions.IsAuthenticated]  # one's own delegations only
    serializer_class = DelegationSerializer
    ordering_fields = ["starts_at", "ends_at", "created_at"]
    ordering = ["-starts_at", "-id"]
    pagination_class = newest_first("-starts_at", "-id", max_page_size=200)

    def get_queryset(self) -> QuerySet[Delegation]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return Delegation.objects.none()
        return delegations.delegations_of(self.request.user)

    def post(self, request: Request) -> Response:
        asked = DelegationSerializer(data=request.data)
        if not asked.is_valid():
            return error(
                400, "invalid_delegation", "The delegation is not valid.", fields=asked.errors
            )
        delegation = delegations.delegation_create(user=request.user, **asked.validated_data)
        return Response(DelegationSerializer(delegation).data, status=201)


delegation_list = DelegationList.as_view()


@extend_schema(request=None, responses={200: DelegationSerializer, 204: None})
@api_view(["DELETE"])
@permission_classes([permissions.IsAuthenticated])
def delegation_end_view(request: Request, delegation_id: int) -> Response:
    """End one of my delegations now (204 when it had not started: it is deleted). 404 for
    someone else's."""
    delegation = get_object_or_404(Delegation, pk=delegation_id, user=request.user)
    ended = delegations.delegation_end(delegation=delegation)
    if ended is None:
        return Response(status=204)
    return Response(DelegationSerializer(ended).data)
