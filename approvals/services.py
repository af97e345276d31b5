"""Writes of the approvals domain: asking people, recording their votes and the decision once,
escalating, and the audit trail of every change.

Transitions of an approval (its status) are conditional updates from ``pending``: whatever the
number of concurrent clicks, one transition happens, and everyone else learns it was decided.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from approvals.models import Approval, ApprovalEvent, ApprovalVote
from approvals.signals import approval_changed
from automation.engine import clock
from automation.engine.errors import WorkflowError

DECISIONS = {"approve": Approval.Status.APPROVED, "reject": Approval.Status.REJECTED}


class AlreadyDecided(Exception):
    """The approval is no longer pending (or this user voted already)."""


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


def _log(approval: Approval, action: str, actor: Any = None, **detail: Any) -> None:
    """Every change of an approval goes through here: the audit trail, and the signal that the
    live inbox listens to (sent after commit)."""
    ApprovalEvent.objects.create(
        approval=approval, action=action, actor=actor, detail=detail, at=clock.now()
    )
    approval_changed.send_after_commit(approval_id=approval.pk, action=str(action))


def _check_options(step_id: str, on_timeout: str, quorum: int, escalate_to: list[str]) -> None:
    if on_timeout not in Approval.OnTimeout.values:
        raise WorkflowError(f"approval {step_id!r}: on_timeout must be reject, approve or escalate")
    if on_timeout == Approval.OnTimeout.ESCALATE and not escalate_to:
        raise WorkflowError(f"approval {step_id!r}: on_timeout 'escalate' needs escalate_to")
    if not isinstance(quorum, int) or quorum < 1:
        raise WorkflowError(f"approval {step_id!r}: quorum must be a whole number of at least 1")


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
    quorum: int = 1,
    four_eyes: bool = False,
    escalate_to: list[str] | None = None,
    escalation_timeout: timedelta | None = None,
) -> Approval:
    if not assignees:
        raise WorkflowError(f"approval {step_id!r} needs at least one assignee")
    _check_options(step_id, on_timeout, quorum, escalate_to or [])
    users, groups = _resolve_assignees(assignees)
    if escalate_to:
        _resolve_assignees(escalate_to)  # unknown escalation targets fail now, not in two days
    with transaction.atomic():
        approval = Approval.objects.create(
            run=run, step_id=step_id, title=title[:300], description=description,
            context=context or {}, assignees=assignees, due_at=due_at, on_timeout=on_timeout,
            quorum=quorum, four_eyes=four_eyes, requested_by_id=run.started_by_id,
            escalate_to=escalate_to or [], escalation_timeout=escalation_timeout,
        )  # fmt: skip
        approval.assignee_users.set(users)
        approval.assignee_groups.set(groups)
        _log(approval, ApprovalEvent.Action.CREATED, assignees=assignees, due_at=_iso(due_at))
    return approval


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def can_decide(approval: Approval, user: Any) -> bool:
    """An assignee (directly or through a group), or a user allowed to decide any approval."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.has_perm("approvals.decide_any_approval"):
        return True
    if approval.assignee_users.filter(pk=user.pk).exists():
        return True
    return approval.assignee_groups.filter(pk__in=user.groups.values("pk")).exists()


def _outcome(approval: Approval) -> dict[str, Any]:
    votes = [
        {"user": v.user.get_username(), "decision": v.decision, "comment": v.comment}
        for v in approval.votes.select_related("user")
    ]
    return {
        "approved": approval.status == Approval.Status.APPROVED,
        "decision": approval.status,
        "comment": approval.comment,
        "decided_by": approval.decided_by.get_username() if approval.decided_by else None,
        "decided_at": _iso(approval.decided_at),
        "votes": votes,
    }


def approval_decide(*, approval: Approval, user: Any, decision: str, comment: str = "") -> Approval:
    """Record ``user``'s vote; the approval is decided by the first rejection or by the
    ``quorum``-th approval, and the run resumes after commit.

    PermissionDenied for users who may not decide (non-assignees; the requester under
    four-eyes); AlreadyDecided when it is no longer pending or this user voted already.
    """
    from automation.services import step_complete

    if decision not in DECISIONS:
        raise ValueError("decision must be 'approve' or 'reject'")
    if not can_decide(approval, user):
        raise PermissionDenied("only an assignee or a user allowed to decide any approval can")
    if approval.four_eyes and approval.requested_by_id == user.pk:
        raise PermissionDenied("four-eyes: the person who started the run cannot decide it")
    with transaction.atomic():
        locked = Approval.objects.select_for_update().get(pk=approval.pk)
        if locked.status != Approval.Status.PENDING:
            raise AlreadyDecided(f"approval {approval.pk} is {locked.status} already")
        _vote(locked, user, decision, comment)
        approvals = locked.votes.filter(decision="approve").count()
        if decision == "reject" or approvals >= locked.quorum:
            _transition(locked, DECISIONS[decision], user, comment)
            step_complete(run_id=locked.run_id, step_id=locked.step_id, output=_outcome(locked))
    approval.refresh_from_db()
    return approval


def _vote(approval: Approval, user: Any, decision: str, comment: str) -> None:
    try:
        with transaction.atomic():
            ApprovalVote.objects.create(
                approval=approval,
                user=user,
                decision=decision,
                comment=comment,
                created_at=clock.now(),
            )
    except IntegrityError:
        raise AlreadyDecided("you have voted on this approval already") from None
    _log(approval, ApprovalEvent.Action.VOTED, user, decision=decision, comment=comment)


def _transition(approval: Approval, status: str, user: Any, comment: str) -> None:
    if not Approval.objects.filter(pk=approval.pk, status=Approval.Status.PENDING).update(
        status=status, decided_by=user, decided_at=clock.now(), comment=comment
    ):
        raise AlreadyDecided(f"approval {approval.pk} is no longer pending")
    approval.refresh_from_db()
    _log(approval, status, user, comment=comment)


def approval_expire(*, run_id: Any, step_id: str) -> bool:
    """The due time passed: escalate once if the definition says so, otherwise decide as
    ``on_timeout`` says. Returns True when the step got its outcome."""
    from automation.services import step_complete

    with transaction.atomic():
        approval = (
            Approval.objects.select_for_update().filter(run_id=run_id, step_id=step_id).first()
        )
        if approval is None or approval.status != Approval.Status.PENDING:
            return False
        if approval.on_timeout == Approval.OnTimeout.ESCALATE and not approval.escalated:
            _escalate(approval)
            return False
        approve = approval.on_timeout == Approval.OnTimeout.APPROVE
        status = Approval.Status.APPROVED if approve else Approval.Status.EXPIRED
        if not Approval.objects.filter(pk=approval.pk, status=Approval.Status.PENDING).update(
            status=status, decided_at=clock.now(), comment="decided on timeout"
        ):
            return False
        approval.refresh_from_db()
        _log(approval, ApprovalEvent.Action.EXPIRED, outcome=status)
        outcome = _outcome(approval) | {"decision": "expired", "timed_out": True}
        return step_complete(run_id=run_id, step_id=step_id, output=outcome)


def _escalate(approval: Approval) -> None:
    """Hand the approval to ``escalate_to`` with a new due time (then it rejects on timeout)."""
    from automation.models import StepRecord, Timer

    users, groups = _resolve_assignees(approval.escalate_to)
    timeout = approval.escalation_timeout or (
        (approval.due_at - approval.created_at) if approval.due_at else timedelta(days=1)
    )
    due = clock.now() + timeout
    Approval.objects.filter(pk=approval.pk).update(
        assignees=approval.escalate_to, escalated=True, due_at=due, on_timeout="reject"
    )
    approval.assignee_users.set(users)
    approval.assignee_groups.set(groups)
    StepRecord.objects.filter(run_id=approval.run_id, step_id=approval.step_id).update(
        next_attempt_at=due
    )
    Timer.objects.create(run_id=approval.run_id, step_id=approval.step_id, due_at=due)
    _log(approval, ApprovalEvent.Action.ESCALATED, to=approval.escalate_to, due_at=_iso(due))


def approvals_cancel_for_run(*, run_id: Any) -> int:
    pending = list(Approval.objects.filter(run_id=run_id, status=Approval.Status.PENDING))
    cancelled = Approval.objects.filter(
        pk__in=[a.pk for a in pending], status=Approval.Status.PENDING
    ).update(status=Approval.Status.CANCELLED)
    for approval in pending:
        _log(approval, ApprovalEvent.Action.CANCELLED)
    return cancelled
