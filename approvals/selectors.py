"""Reads of the approvals domain."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from approvals.models import Approval


def can_see_all(user: Any) -> bool:
    return user.has_perm("approvals.decide_any_approval")


def approvals_for(user: Any, *, scope: str = "mine", status: str | None = None) -> QuerySet:
    """Approvals the user may see: assigned to them or their groups (``mine``), or every one
    (``all``, for users allowed to decide any approval)."""
    approvals = Approval.objects.select_related("run__workflow", "decided_by")
    if scope != "all" or not can_see_all(user):
        approvals = approvals.inbox(user)
    if status:
        approvals = approvals.filter(status=status)
    return approvals.order_by("-created_at", "-id")


def approval_visible(user: Any, approval_id: Any) -> Approval:
    """The approval, for its assignees and users allowed to decide any approval (the API and
    the page alike): Http404 for unknown ids, PermissionDenied for anyone else."""
    from approvals.transitions import can_decide

    approval = get_object_or_404(
        Approval.objects.select_related("run__workflow", "decided_by", "requested_by"),
        pk=approval_id,
    )
    if not can_decide(approval, user):
        raise PermissionDenied("This approval is assigned to other people.")
    return approval
