"""Delegation and out of office: a person names a delegate for a period, and the approvals they
may decide reach the delegate too (inbox, emails, live notices, the right to decide). A
delegate's vote is cast on the person's behalf: the vote, the decision and the audit trail say
"decided by X on behalf of Y", and one person's say counts once (either they vote or a delegate
does for them).

Who stands in for whom is read at the moment it matters (now, on the engine's clock): a
delegation that ended gives nothing any more, one that has not started gives nothing yet.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q, QuerySet

from approvals.models import Approval, Delegation
from automation.engine import clock
from automation.lib.errors import DomainError

#: The longest period one delegation may cover: longer ones are usually typos (2062 for 2026).
MAX_PERIOD = timedelta(days=366)


class InvalidDelegation(DomainError):
    """The delegation cannot be saved as asked; the message says why."""

    code = "invalid_delegation"
    status = 400


def assigned(approval: Approval, user: Any) -> bool:
    """Whether ``user`` is an assignee, directly or through a group."""
    if approval.assignee_users.filter(pk=user.pk).exists():
        return True
    return approval.assignee_groups.filter(pk__in=user.groups.values("pk")).exists()


def principals(delegate: Any, at: datetime | None = None) -> QuerySet:
    """The active users who named ``delegate`` their delegate for a period including ``at``."""
    given = Delegation.objects.active(at).filter(delegate=delegate).values("user")
    return get_user_model().objects.filter(pk__in=given, is_active=True)


def stands_in_for(approval: Approval, user: Any, at: datetime | None = None) -> Any | None:
    """The assignee ``user`` may decide ``approval`` for as their delegate, or None. Never the
    requester of a four-eyes approval: they cannot decide it, so nobody can in their name."""
    candidates = (
        principals(user, at)
        .filter(Q(assigned_approvals=approval) | Q(groups__assigned_approvals=approval))
        .distinct()
        .order_by("pk")
    )
    if approval.four_eyes and approval.requested_by_id:
        candidates = candidates.exclude(pk=approval.requested_by_id)
    return candidates.first()


def standing_in_now(delegate: Any) -> list[Delegation]:
    """The delegations ``delegate`` stands in for now, for the notice on their inbox."""
    return list(
        Delegation.objects.active()
        .filter(delegate=delegate, user__is_active=True)
        .select_related("user")
        .order_by("ends_at")
    )


def delegates_of(people: QuerySet, at: datetime | None = None) -> QuerySet:
    """The active delegates standing in for any of ``people`` now (emails, live notices)."""
    given = Delegation.objects.active(at).filter(user__in=people.values("pk")).values("delegate")
    return get_user_model().objects.filter(pk__in=given, is_active=True)


def delegation_create(
    *, user: Any, delegate: Any, starts_at: datetime, ends_at: datetime, reason: str = ""
) -> Delegation:
    """``user`` names ``delegate`` from ``starts_at`` to ``ends_at``. One delegate at a time:
    a period overlapping another of the user's delegations is refused (end that one first)."""
    now = clock.now()
    if delegate is None or not delegate.is_active:
        raise InvalidDelegation("the delegate must be an active user")
    if delegate.pk == user.pk:
        raise InvalidDelegation("you cannot name yourself as your delegate")
    if ends_at <= starts_at:
        raise InvalidDelegation("ends_at must be after starts_at")
    if ends_at <= now:
        raise InvalidDelegation("ends_at is in the past: a delegation must end in the future")
    if ends_at - starts_at > MAX_PERIOD:
        raise InvalidDelegation(f"a delegation covers at most {MAX_PERIOD.days} days")
    if len(reason) > 200:
        raise InvalidDelegation("reason: at most 200 characters")
    with transaction.atomic():
        # Lock the user's delegations so two requests cannot both pass the overlap check.
        mine = Delegation.objects.select_for_update().filter(user=user)
        overlapping = [d for d in mine if d.starts_at < ends_at and starts_at < d.ends_at]
        if overlapping:
            other = overlapping[0]
            raise InvalidDelegation(
                f"this period overlaps your delegation to {other.delegate.get_username()} "
                f"({other.starts_at:%Y-%m-%d %H:%M} to {other.ends_at:%Y-%m-%d %H:%M} UTC); "
                "end that one first"
            )
        return Delegation.objects.create(
            user=user,
            delegate=delegate,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
            created_at=now,
        )


def delegation_end(*, delegation: Delegation) -> Delegation | None:
    """End a delegation now. One that has not started is deleted (returns None); one that
    already ended is left as it is, so the record of who stood in when stays."""
    now = clock.now()
    if delegation.starts_at > now:
        delegation.delete()
        return None
    Delegation.objects.filter(pk=delegation.pk, ends_at__gt=now).update(ends_at=now)
    delegation.refresh_from_db()
    return delegation


def delegations_of(user: Any) -> QuerySet:
    """The user's delegations, newest period first (their settings page and the API)."""
    return Delegation.objects.filter(user=user).select_related("delegate").order_by("-starts_at")
