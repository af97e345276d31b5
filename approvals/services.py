"""Writes of the approvals domain: asking people, recording their votes and the decision once,
escalating, and the audit trail of every change.

Every change of an approval's status goes through the table in approvals.transitions (a
conditional update from the declared source, with the declared permission): whatever the number
of concurrent clicks or sweeps, one transition happens, and everyone else learns it was decided.
Every change is written to the audit trail by ``_log``; the assignees are emailed after commit
when an approval is requested, reminded and escalated (approvals.emails).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import Q

from approvals import delegations, transitions
from approvals.emails import approval_email_after_commit
from approvals.forms import clean_values, validate_field_specs
from approvals.models import Approval, ApprovalEvent, ApprovalVote
from approvals.signals import approval_changed
from automation.engine import clock
from automation.engine.errors import WorkflowError
from automation.engine.runs import step_complete
from automation.engine.waits import step_deadline_move
from automation.lib.errors import DomainError

logger = logging.getLogger(__name__)

#: ``remind_before`` default: remind at 80% of the way to the due time, or one hour before it
#: if that is earlier, but never in the first half of the time (short timeouts).
REMIND_AUTO = "auto"

DECISIONS = ("approve", "reject")


class AlreadyDecided(DomainError):
    """The approval is no longer pending (or this user voted already)."""

    code = "already_decided"
    status = 409


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
    fields: list[dict[str, Any]] | None = None,
    remind_before: timedelta | str | None = REMIND_AUTO,
) -> Approval:
    """Ask ``assignees``; they are emailed once the surrounding transaction commits.

    ``fields``: form fields the approver fills in (approvals.forms). ``remind_before``: how
    long before ``due_at`` the assignees who have not voted are reminded (``"auto"``: see
    REMIND_AUTO; ``None`` or zero: no reminder).
    """
    if not assignees:
        raise WorkflowError(f"approval {step_id!r} needs at least one assignee")
    _check_options(step_id, on_timeout, quorum, escalate_to or [])
    specs = validate_field_specs(fields, step_id=step_id)
    now = clock.now()
    remind_at = _remind_at(step_id, now, due_at, remind_before)
    users, groups = _resolve_assignees(assignees)
    if escalate_to:
        _resolve_assignees(escalate_to)  # unknown escalation targets fail now, not in two days
    with transaction.atomic():
        approval = Approval.objects.create(
            run=run, step_id=step_id, title=title[:300], description=description,
            context=context or {}, assignees=assignees, due_at=due_at, on_timeout=on_timeout,
            quorum=quorum, four_eyes=four_eyes, requested_by_id=run.started_by_id,
            escalate_to=escalate_to or [], escalation_timeout=escalation_timeout,
            fields=specs, remind_at=remind_at, created_at=now,
        )  # fmt: skip
        approval.assignee_users.set(users)
        approval.assignee_groups.set(groups)
        _log(approval, ApprovalEvent.Action.CREATED, assignees=assignees, due_at=_iso(due_at))
        approval_email_after_commit(approval.pk, "requested")
    return approval


def _remind_at(
    step_id: str, now: datetime, due_at: datetime | None, remind_before: timedelta | str | None
) -> datetime | None:
    if remind_before == REMIND_AUTO:
        if due_at is None:
            return None
        window = due_at - now
        return max(now + window / 2, min(due_at - timedelta(hours=1), now + window * 0.8))
    if remind_before is None or remind_before == timedelta(0):
        return None
    if not isinstance(remind_before, timedelta):
        raise WorkflowError(
            f"approval {step_id!r}: remind_before must be a duration, 'auto', or None/0 for no "
            "reminder"
        )
    if due_at is None:
        raise WorkflowError(f"approval {step_id!r}: remind_before needs a timeout to count from")
    if due_at - remind_before <= now:
        raise WorkflowError(
            f"approval {step_id!r}: remind_before must be shorter than the timeout ({due_at - now})"
        )
    return due_at - remind_before


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def can_decide(approval: Approval, user: Any) -> bool:
    """An assignee (directly or through a group), or a user allowed to decide any approval."""
    return transitions.can_decide(approval, user)


def _outcome(approval: Approval) -> dict[str, Any]:
    votes = [
        {
            "user": v.user.get_username(),
            "decision": v.decision,
            "comment": v.comment,
            "values": v.values,
            "on_behalf_of": _name(v.on_behalf_of),
        }
        for v in approval.votes.select_related("user", "on_behalf_of")
    ]
    return {
        "approved": approval.status == Approval.Status.APPROVED,
        "decision": approval.status,
        "comment": approval.comment,
        "decided_by": _name(approval.decided_by),
        "on_behalf_of": _name(approval.decided_on_behalf_of),
        "decided_at": _iso(approval.decided_at),
        "votes": votes,
        "values": approval.values,
        "timed_out": False,
    }


def _name(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def acting_for(approval: Approval, user: Any) -> Any | None:
    """Whom ``user`` decides for: None in their own name (an assignee, or allowed to decide
    any approval), else the out-of-office assignee they are the delegate of."""
    if not user.is_authenticated:
        return None
    if user.has_perm("approvals.decide_any_approval") or delegations.assigned(approval, user):
        return None
    return delegations.stands_in_for(approval, user)


def approval_decide(
    *,
    approval: Approval,
    user: Any,
    decision: str,
    comment: str = "",
    values: dict[str, Any] | None = None,
) -> Approval:
    """Record ``user``'s vote (with the ``values`` of the approval's fields); the approval is
    decided by the first rejection or by the ``quorum``-th approval, and the run resumes after
    commit, its step's output carrying the deciding vote's values.

    PermissionDenied for users who may not decide (non-assignees; the requester under
    four-eyes); InvalidValues naming the fields that do not fit; AlreadyDecided when it is no
    longer pending or this user voted already.
    """
    if decision not in DECISIONS:
        raise ValueError("decision must be 'approve' or 'reject'")
    transitions.check_permission(approval, transitions.TRANSITIONS[decision], user)
    cleaned = clean_values(approval, decision, values)
    behalf = acting_for(approval, user)
    with transaction.atomic():
        locked = Approval.objects.select_for_update().get(pk=approval.pk)
        if locked.status != Approval.Status.PENDING:
            raise AlreadyDecided(f"approval {approval.pk} is {locked.status} already")
        _check_one_say(locked, user, behalf)
        _vote(locked, user, decision, comment, cleaned, behalf)
        approvals = locked.votes.filter(decision="approve").count()
        if decision == "reject" or approvals >= locked.quorum:
            _move(locked, decision, user, comment=comment, values=cleaned, behalf=behalf)
            step_complete(run_id=locked.run_id, step_id=locked.step_id, output=_outcome(locked))
    approval.refresh_from_db()
    return approval


def _check_one_say(approval: Approval, user: Any, behalf: Any | None) -> None:
    """A person's say counts once: they vote, or their delegate votes for them (the approval
    row is locked, so the two cannot both pass)."""
    person = behalf if behalf is not None else user
    earlier = approval.votes.filter(Q(user=person) | Q(on_behalf_of=person)).first()
    if earlier is None:
        return
    if earlier.user_id == user.pk and behalf is None:
        raise AlreadyDecided("you have voted on this approval already")
    by = "in person" if earlier.on_behalf_of_id is None else "through a delegate"
    raise AlreadyDecided(f"{person.get_username()} has voted on this approval already ({by})")


def _vote(
    approval: Approval, user: Any, decision: str, comment: str, values: dict, behalf: Any
) -> None:
    try:
        with transaction.atomic():
            ApprovalVote.objects.create(
                approval=approval,
                user=user,
                decision=decision,
                comment=comment,
                values=values,
                on_behalf_of=behalf,
                created_at=clock.now(),
            )
    except IntegrityError:
        raise AlreadyDecided("you have voted on this approval already") from None
    if not transitions.apply(approval, "vote", user=user):
        raise AlreadyDecided(f"approval {approval.pk} is no longer pending")
    _log(approval, ApprovalEvent.Action.VOTED, user, decision=decision, comment=comment,
         **_behalf(behalf))  # fmt: skip


def _behalf(behalf: Any | None) -> dict[str, Any]:
    """The audit detail of a delegate's act: whose behalf it was on."""
    return {"on_behalf_of": behalf.get_username()} if behalf is not None else {}


def _move(
    approval: Approval, name: str, user: Any, *, comment: str, values: dict, behalf: Any = None
) -> None:
    """A deciding transition (approve or reject) by ``user``, and its audit entry."""
    changes = {
        "decided_by": user,
        "decided_on_behalf_of": behalf,
        "decided_at": clock.now(),
        "comment": comment,
    }
    if not transitions.apply(approval, name, user=user, values=values, **changes):
        raise AlreadyDecided(f"approval {approval.pk} is no longer pending")
    _log(approval, transitions.TRANSITIONS[name].audit, user, comment=comment, **_behalf(behalf))


def approval_expire(*, run_id: Any, step_id: str) -> bool:
    """The due time passed: escalate once if the definition says so, otherwise decide as
    ``on_timeout`` says. Returns True when the step got its outcome."""
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
        name = "approve_on_timeout" if approve else "expire"
        if not transitions.apply(
            approval, name, decided_at=clock.now(), comment="decided on timeout"
        ):
            return False
        _log(approval, transitions.TRANSITIONS[name].audit, outcome=approval.status)
        # The decision is the one on_timeout made (approved or expired); timed_out says why.
        outcome = _outcome(approval) | {"timed_out": True}
        return step_complete(run_id=run_id, step_id=step_id, output=outcome)


def _escalate(approval: Approval) -> None:
    """Hand the approval to ``escalate_to`` with a new due time (then it rejects on timeout)."""
    users, groups = _resolve_assignees(approval.escalate_to)
    timeout = approval.escalation_timeout or (
        (approval.due_at - approval.created_at) if approval.due_at else timedelta(days=1)
    )
    due = clock.now() + timeout
    if not transitions.apply(
        approval, "escalate", guard={"escalated": False},
        assignees=approval.escalate_to, escalated=True, due_at=due, on_timeout="reject",
    ):  # fmt: skip
        return
    approval.assignee_users.set(users)
    approval.assignee_groups.set(groups)
    step_deadline_move(approval.run_id, approval.step_id, due)
    _log(approval, ApprovalEvent.Action.ESCALATED, to=approval.escalate_to, due_at=_iso(due))
    approval_email_after_commit(approval.pk, "escalated")


def approvals_cancel_for_run(*, run_id: Any) -> int:
    """The run was cancelled or ended otherwise: its pending approvals are cancelled (nobody
    is emailed)."""
    cancelled = 0
    for approval in Approval.objects.filter(run_id=run_id, status=Approval.Status.PENDING):
        if transitions.apply(approval, "cancel"):
            _log(approval, ApprovalEvent.Action.CANCELLED)
            cancelled += 1
    return cancelled


def approvals_remind_due(*, limit: int = 500) -> int:
    """Remind the assignees of pending approvals whose reminder is due (approvals' periodic
    task ``approvals.remind`` calls this). Each reminder is claimed with a conditional update,
    so two runs of the task never send one twice; one approval's failure is logged and does
    not stop the others."""
    due = Approval.objects.filter(
        status=Approval.Status.PENDING, reminded_at__isnull=True, remind_at__lte=clock.now()
    ).order_by("remind_at")
    reminded = 0
    for approval in list(due[:limit]):
        try:
            reminded += _remind(approval)
        except Exception:
            logger.exception("approval %s: the reminder failed; continuing", approval.pk)
    return reminded


def _remind(approval: Approval) -> bool:
    with transaction.atomic():
        now = clock.now()
        guard = {"reminded_at__isnull": True}
        if not transitions.apply(approval, "remind", guard=guard, reminded_at=now):
            return False  # another sweep got there first, or it was decided meanwhile
        _log(approval, ApprovalEvent.Action.REMINDED, due_at=_iso(approval.due_at))
        approval_email_after_commit(approval.pk, "reminder")
    return True
