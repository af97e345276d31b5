"""Every change of an approval's state, declared in one table: from which status, to which
status, and who may make it.

The services never write ``Approval.status`` themselves: they call :func:`apply`, which checks
the permission and makes the change with a conditional UPDATE from the declared sources. An
undeclared move (a decided approval decided again, a cancelled one escalated) changes no row,
so it cannot happen, whatever the number of concurrent clicks or sweeps.

The table is :data:`TRANSITIONS` below (docs/approvals.md shows it too).

A *decider* is an assignee (directly or through a group), the delegate of an assignee out of
office (approvals.delegations), or a user with the ``approvals.decide_any_approval``
permission, and never the person who started the run when the approval asks for four eyes.
The *system* is the engine (timers, sweeps, run cancellation): no user may make those moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.core.exceptions import PermissionDenied

from approvals import delegations
from approvals.models import Approval

__all__ = [
    "TRANSITIONS",
    "By",
    "Transition",
    "apply",
    "available",
    "can_decide",
    "check_permission",
]

S = Approval.Status


class By(StrEnum):
    DECIDER = "decider"
    SYSTEM = "system"


@dataclass(frozen=True)
class Transition:
    name: str
    sources: tuple[str, ...]
    target: str
    by: By
    #: The audit-trail action (ApprovalEvent.Action) written when it happens.
    audit: str


# fmt: off
_TABLE = [
    #          name                  from          target       by          audit entry
    Transition("vote",               (S.PENDING,), S.PENDING,   By.DECIDER, "voted"),
    Transition("approve",            (S.PENDING,), S.APPROVED,  By.DECIDER, "approved"),
    Transition("reject",             (S.PENDING,), S.REJECTED,  By.DECIDER, "rejected"),
    Transition("remind",             (S.PENDING,), S.PENDING,   By.SYSTEM,  "reminded"),
    Transition("escalate",           (S.PENDING,), S.PENDING,   By.SYSTEM,  "escalated"),
    Transition("approve_on_timeout", (S.PENDING,), S.APPROVED,  By.SYSTEM,  "expired"),
    Transition("expire",             (S.PENDING,), S.EXPIRED,   By.SYSTEM,  "expired"),
    Transition("cancel",             (S.PENDING,), S.CANCELLED, By.SYSTEM,  "cancelled"),
]
# fmt: on
# vote: a vote that does not decide yet (quorum); approve: the quorum-th approval; reject: one
# rejection rejects; remind: the reminder before the due time (once, guarded by reminded_at);
# escalate: timed out, escalate_to take over (once, guarded by escalated); approve_on_timeout
# and expire: timed out with on_timeout "approve" / "reject"; cancel: the run was cancelled.
TRANSITIONS: dict[str, Transition] = {t.name: t for t in _TABLE}


def can_decide(approval: Approval, user: Any) -> bool:
    """An assignee (directly or through a group), a user allowed to decide any approval, or
    the delegate of an assignee now out of office (approvals.delegations). Four-eyes is checked
    separately (:func:`check_permission`), so the requester still sees it."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.has_perm("approvals.decide_any_approval"):
        return True
    if delegations.assigned(approval, user):
        return True
    return delegations.stands_in_for(approval, user) is not None


def check_permission(approval: Approval, transition: Transition, user: Any) -> None:
    """PermissionDenied, with a reason a person can act on, unless ``user`` may make it
    (``None`` is the system)."""
    if transition.by == By.SYSTEM:
        if user is not None:
            raise PermissionDenied(f"only the system can {transition.name} an approval")
        return
    if not can_decide(approval, user):
        raise PermissionDenied("only an assignee or a user allowed to decide any approval can")
    if approval.four_eyes and approval.requested_by_id == user.pk:
        raise PermissionDenied("four-eyes: the person who started the run cannot decide it")


def available(approval: Approval, user: Any) -> list[Transition]:
    """The moves ``user`` may make on ``approval`` now (for showing the right buttons)."""
    allowed = []
    for transition in TRANSITIONS.values():
        if approval.status not in transition.sources:
            continue
        try:
            check_permission(approval, transition, user)
        except PermissionDenied:
            continue
        allowed.append(transition)
    return allowed


def apply(
    approval: Approval, name: str, *, user: Any = None, guard: dict[str, Any] | None = None,
    **changes: Any,
) -> bool:  # fmt: skip
    """Make the transition ``name`` as ``user`` (``None``: the system), writing ``changes``
    with it. Returns False, changing nothing, when the approval is no longer in a source
    status or no longer matches ``guard`` (another process got there first).

    The caller writes the audit entry (``transition.audit``) in the same transaction.
    """
    transition = TRANSITIONS[name]
    if "status" in changes:
        raise ValueError("the status is the transition's target; do not pass it")
    check_permission(approval, transition, user)
    updated = Approval.objects.filter(
        pk=approval.pk, status__in=transition.sources, **(guard or {})
    ).update(status=transition.target, **changes)
    if updated:
        approval.status = transition.target
        for field, value in changes.items():
            setattr(approval, field, value)
    return bool(updated)
