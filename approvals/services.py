"""Writes of the approvals domain: asking people, and recording their decision once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction

from approvals.models import Approval
from automation.engine import clock
from automation.engine.errors import WorkflowError


class AlreadyDecided(Exception):
    """The approval is no longer pending: someone decided (or it expired) first."""


def _resolve_assignees(assignees: list[str]) -> tuple[list[Any], list[Group]]:
    users, groups, missing = [], [], []
    user_model = get_user_model()
    for entry in assignees:
        kind, _, name = entry.partition(":") if ":" in entry else ("user", "", entry)
        if kind == "group":
            group = Group.objects.filter(name=name).first()
            (groups.append(group) if group else missing.append(entry))
        elif kind == "user":
            user = user_model.objects.filter(**{user_model.USERNAME_FIELD: name}).first()
            (users.append(user) if user else missing.append(entry))
        else:
            missing.append(entry)
    if missing:
        raise WorkflowError(
            f"unknown assignee(s): {', '.join(missing)}; use 'user:<username>' or 'group:<name>' "
            "of existing users and groups"
        )
    return users, groups


def approval_create(
    *,
    run: Any,
    step_id: str,
    title: str,
    assignees: list[str],
    description: str = "",
    context: dict[str, Any] | None = None,
    due_at: datetime | None = None,
    on_timeout: str = "reject",
) -> Approval:
    if not assignees:
        raise WorkflowError(f"approval {step_id!r} needs at least one assignee")
    if on_timeout not in Approval.OnTimeout.values:
        raise WorkflowError(f"approval {step_id!r}: on_timeout must be reject or approve")
    users, groups = _resolve_assignees(assignees)
    with transaction.atomic():
        approval = Approval.objects.create(
            run=run,
            step_id=step_id,
            title=title[:300],
            description=description,
            context=context or {},
            assignees=assignees,
            due_at=due_at,
            on_timeout=on_timeout,
        )
        approval.assignee_users.set(users)
        approval.assignee_groups.set(groups)
    return approval


def can_decide(approval: Approval, user: Any) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if user.has_perm("approvals.decide_any_approval"):
        return True
    if approval.assignee_users.filter(pk=user.pk).exists():
        return True
    return approval.assignee_groups.filter(pk__in=user.groups.values("pk")).exists()


def _outcome(approval: Approval) -> dict[str, Any]:
    return {
        "approved": approval.status == Approval.Status.APPROVED,
        "decision": approval.status,
        "comment": approval.comment,
        "decided_by": approval.decided_by.get_username() if approval.decided_by else None,
        "decided_at": approval.decided_at.isoformat() if approval.decided_at else None,
    }


def approval_decide(*, approval: Approval, user: Any, decision: str, comment: str = "") -> Approval:
    """Approve or reject. PermissionDenied for non-assignees; AlreadyDecided when not pending."""
    from automation.services import step_complete

    statuses = {"approve": Approval.Status.APPROVED, "reject": Approval.Status.REJECTED}
    if decision not in statuses:
        raise ValueError("decision must be 'approve' or 'reject'")
    if not can_decide(approval, user):
        raise PermissionDenied("only an assignee or a user allowed to decide any approval can")
    with transaction.atomic():
        decided = Approval.objects.filter(pk=approval.pk, status=Approval.Status.PENDING).update(
            status=statuses[decision], decided_by=user, decided_at=clock.now(), comment=comment
        )
        if not decided:
            raise AlreadyDecided(f"approval {approval.pk} is no longer pending")
        approval.refresh_from_db()
        step_complete(run_id=approval.run_id, step_id=approval.step_id, output=_outcome(approval))
    return approval


def approval_expire(*, run_id: Any, step_id: str) -> bool:
    """The due time passed: decide as the definition says (on_timeout)."""
    from automation.services import step_complete

    with transaction.atomic():
        approval = Approval.objects.filter(run_id=run_id, step_id=step_id).first()
        if approval is None or approval.status != Approval.Status.PENDING:
            return False
        status = (
            Approval.Status.APPROVED
            if approval.on_timeout == Approval.OnTimeout.APPROVE
            else Approval.Status.EXPIRED
        )
        if not Approval.objects.filter(pk=approval.pk, status=Approval.Status.PENDING).update(
            status=status, decided_at=clock.now(), comment="decided on timeout"
        ):
            return False
        approval.refresh_from_db()
        outcome = _outcome(approval) | {"decision": "expired", "timed_out": True}
        return step_complete(run_id=run_id, step_id=step_id, output=outcome)


def approvals_cancel_for_run(*, run_id: Any) -> int:
    return Approval.objects.filter(run_id=run_id, status=Approval.Status.PENDING).update(
        status=Approval.Status.CANCELLED
    )
