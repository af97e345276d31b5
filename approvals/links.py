"""Signed, single-use, expiring links to an approval, each bound to the person it was emailed to.

The token is ``django.core.signing`` of the link's id (its nonce) with a salt of its own, so it
cannot be forged or reused for another purpose, and it carries its signing time (refused after
``APPROVAL_LINK_MAX_AGE`` seconds). The row says who it was sent to, until when it is valid
and whether it was used; using it is a conditional UPDATE, so it works once even when clicked
twice at the same moment. A link only takes its person to the approval page: it never logs
anyone in, so a forwarded or leaked link gives nothing away.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse

from approvals.models import Approval, ApprovalLink
from automation.engine import clock
from automation.lib.errors import DomainError

__all__ = ["LinkRefused", "link_create", "link_read", "link_url", "link_use"]

SALT = "approvals.link"


class LinkRefused(DomainError):
    """Why a link cannot be followed: an HTTP status, a code and a sentence for the person."""

    def __init__(self, status: int, code: str, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.title = title
        self.message = message


def link_create(*, approval: Approval, user: Any) -> tuple[ApprovalLink, str]:
    """A new link for ``user`` to ``approval``: the row and its signed token."""
    now = clock.now()
    link = ApprovalLink.objects.create(
        approval=approval,
        user=user,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.APPROVAL_LINK_MAX_AGE),
    )
    return link, signing.dumps({"link": str(link.pk)}, salt=SALT)


def link_url(token: str) -> str:
    """The absolute address of the link, on ``SITE_URL``."""
    return settings.SITE_URL + reverse("approval-link", args=[token])


def link_read(token: str) -> ApprovalLink:
    """The link a token names, if its signature holds and it has not expired by age."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=settings.APPROVAL_LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise _expired() from None
    except signing.BadSignature:
        raise LinkRefused(
            400,
            "bad_link",
            "This link is not valid",
            "The address is incomplete or was changed. Open the link from the email again, "
            "or find the approval in your inbox.",
        ) from None
    link = ApprovalLink.objects.select_related("approval").filter(pk=payload.get("link")).first()
    if link is None:
        raise LinkRefused(
            410,
            "link_gone",
            "This link no longer exists",
            "The approval it pointed to was deleted.",
        )
    return link


def link_use(link: ApprovalLink, user: Any) -> Approval:
    """Spend the link for ``user`` (its person only, once, before it expires); the approval."""
    if link.user_id != user.pk:
        raise LinkRefused(
            403,
            "not_your_link",
            "This link was sent to someone else",
            "Approval links work only for the person they were emailed to, so a forwarded "
            "link cannot be used. If the approval is yours to decide, you will find it in your "
            "inbox; if this link was meant for you, sign out and sign in as yourself.",
        )
    now = clock.now()
    if link.expires_at <= now:
        raise _expired()
    if not ApprovalLink.objects.filter(pk=link.pk, used_at__isnull=True).update(used_at=now):
        raise LinkRefused(
            410,
            "link_used",
            "This link was used already",
            "Each approval link works once. You will find the approval in your inbox.",
        )
    return link.approval


def _expired() -> LinkRefused:
    return LinkRefused(
        410,
        "link_expired",
        "This link has expired",
        "Approval links are valid for a limited time. You will find the approval in your inbox.",
    )
