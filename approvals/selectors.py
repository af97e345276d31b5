"""Reads of the approvals domain."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

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
