"""Emails to the people who decide an approval: when it is requested, before it is due (the
reminder) and when it is escalated to them.

Emails go out after the transaction that made the change commits (never inside it: a rolled
back change sends nothing, and a slow mail server holds no lock). A mail server that is down
or refuses an address is logged and never fails the run or the sweep. Each email carries a
link of its own (approvals.links), bound to its recipient.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string

from approvals import delegations
from approvals.links import link_create, link_url
from approvals.models import Approval

__all__ = ["KINDS", "approval_email_after_commit", "approval_email_send", "recipients"]

logger = logging.getLogger(__name__)

#: The emails there are, and their subject lines.
KINDS = {
    "requested": "Approval needed: {title}",
    "reminder": "Reminder: {title} is waiting for your decision",
    "escalated": "Escalated to you: {title}",
}


def recipients(approval: Approval, kind: str) -> QuerySet:
    """Active assignees (directly or through a group) and the delegates of those out of office,
    with an email address, minus those who cannot decide it (the requester under four-eyes)
    and, for reminders, those who voted."""
    assignees = get_user_model().objects.filter(
        Q(assigned_approvals=approval) | Q(groups__assigned_approvals=approval), is_active=True
    )
    if approval.four_eyes and approval.requested_by_id:
        assignees = assignees.exclude(pk=approval.requested_by_id)
    # The delegates of assignees out of office hear of it too (approvals.delegations).
    stand_ins = delegations.delegates_of(assignees)
    people = (
        get_user_model()
        .objects.filter(Q(pk__in=assignees.values("pk")) | Q(pk__in=stand_ins.values("pk")))
        .exclude(email="")
        .distinct()
        .order_by("pk")
    )
    if approval.four_eyes and approval.requested_by_id:
        people = people.exclude(pk=approval.requested_by_id)
    if kind == "reminder":
        people = people.exclude(pk__in=approval.votes.values("user_id"))
    return people


def approval_email_after_commit(approval_id: Any, kind: str) -> None:
    """Email the assignees once the current transaction commits (at once outside one)."""
    if kind not in KINDS:
        raise ValueError(f"unknown approval email {kind!r}; use one of {', '.join(KINDS)}")
    if settings.APPROVAL_EMAILS:
        transaction.on_commit(
            lambda: approval_email_send(approval_id=approval_id, kind=kind), robust=True
        )


def approval_email_send(*, approval_id: Any, kind: str) -> int:
    """Send the ``kind`` email to each recipient; the number sent. Never raises: a failure is
    logged (one recipient's failure does not stop the others)."""
    try:
        approval = Approval.objects.select_related("run__workflow").get(pk=approval_id)
        people = list(recipients(approval, kind))
        connection = get_connection(fail_silently=False)
        if people:
            connection.open()  # once: a mail server that is down fails here, not per person
    except Exception:
        logger.exception(
            "approval %s: could not send the %s emails (mail server down?); the approval is "
            "in the assignees' inbox anyway",
            approval_id,
            kind,
        )
        return 0
    sent = 0
    for person in people:
        try:
            sent += connection.send_messages([_message(approval, person, kind, connection)]) or 0
        except Exception:
            logger.exception(
                "approval %s: could not email %s (%s); the approval is in their inbox anyway",
                approval_id,
                person.get_username(),
                kind,
            )
    connection.close()
    return sent


def _standing_in_for(approval: Approval, person: Any) -> str:
    """The name of the assignee ``person`` is emailed for as their delegate ("" when they
    are an assignee themselves)."""
    if delegations.assigned(approval, person):
        return ""
    principal = delegations.stands_in_for(approval, person)
    return (principal.get_full_name() or principal.get_username()) if principal else ""


def _message(approval: Approval, person: Any, kind: str, connection: Any) -> Any:
    link, token = link_create(approval=approval, user=person)
    context = {
        "kind": kind,
        "approval": approval,
        "workflow": approval.run.workflow.name,
        "person": person,
        "name": person.get_full_name() or person.get_username(),
        "link": link_url(token),
        "link_expires_at": link.expires_at,
        "approval_url": f"{settings.SITE_URL}/app/approvals/{approval.pk}/",
        "context_items": sorted(approval.context.items()) if approval.context else [],
        "standing_in_for": _standing_in_for(approval, person),
    }
    subject = KINDS[kind].format(title=approval.title)
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split())[:200],
        body=render_to_string(f"approvals/email/{kind}.txt", context),
        to=[person.email],
        connection=connection,
    )
    message.attach_alternative(
        render_to_string(f"approvals/email/{kind}.html", context), "text/html"
    )
    return message
