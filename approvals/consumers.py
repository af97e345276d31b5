"""The live inbox socket: approvals assigned to the user, to the user's groups, and every
approval for users allowed to decide any (see approvals.live for who is told what)."""

from __future__ import annotations

from typing import Any

from approvals.selectors import can_see_all
from automation.consumers import LiveConsumer


class InboxConsumer(LiveConsumer):
    def groups_for(self, user: Any) -> list[str] | None:
        groups = [f"approvals.user.{user.pk}"]
        groups += [f"approvals.group.{pk}" for pk in user.groups.values_list("pk", flat=True)]
        if can_see_all(user):
            groups.append("approvals.all")
        return groups
