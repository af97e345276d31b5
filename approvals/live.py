"""Live inbox: an approval's change reaches the pages of the people it is assigned to.

Only its assignees (directly or through a group) and users allowed to decide any approval hear
of it; the page then loads what changed through the usual permission checks.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.dispatch import receiver

from approvals import delegations
from approvals.models import Approval
from approvals.signals import approval_changed
from automation.live import notice, publish


def inbox_groups(approval: Approval) -> list[str]:
    users = approval.assignee_users.values_list("pk", flat=True)
    groups = approval.assignee_groups.values_list("pk", flat=True)
    assignees = get_user_model().objects.filter(
        Q(assigned_approvals=approval) | Q(groups__assigned_approvals=approval)
    )
    # The delegates of assignees out of office see it in their inbox, so they hear of it too.
    stand_ins = delegations.delegates_of(assignees).values_list("pk", flat=True)
    return [
        *(f"approvals.user.{pk}" for pk in {*users, *stand_ins}),
        *(f"approvals.group.{pk}" for pk in groups),
        "approvals.all",
    ]


@receiver(approval_changed, dispatch_uid="live.approval_changed")
def _on_approval(sender: Any, *, approval_id: Any, action: str, **_: Any) -> None:
    approval = Approval.objects.filter(pk=approval_id).first()
    if approval is None:
        return
    message = notice(
        "approval",
        approval_id=approval.pk,
        action=action,
        status=approval.status,
        title=approval.title,
    )
    publish(inbox_groups(approval), message)
    publish(["dashboard"], notice("approval", action=action))
