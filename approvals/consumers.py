"""The live inbox socket: approvals assigned to the user, to the user's groups, and every
approval for users allowed to decide any (see approvals.live for who is told what)."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from approvals.selectors import approvals_for, can_see_all
from automation.consumers import LiveConsumer, session_user


class InboxConsumer(LiveConsumer):
    def groups_for(self, user: Any) -> list[str] | None:
        groups = [f"approvals.user.{user.pk}"]
        groups += [f"approvals.group.{pk}" for pk in user.groups.values_list("pk", flat=True)]
        if can_see_all(user):
            groups.append("approvals.all")
        return groups

    async def live_notice(self, message: dict[str, Any]) -> None:
        """An approval's notice carries its title: it is checked against the user as they are
        now, so a recheck that has not arrived yet (a lost pub/sub message) leaks nothing."""
        if "approval_id" in message and not await database_sync_to_async(self.may_hear)(message):
            await self.live_recheck({})
            return
        await super().live_notice(message)

    def may_hear(self, message: dict[str, Any]) -> bool:
        user = session_user(self.scope)
        if not user.is_authenticated:
            return False
        return approvals_for(user, scope="all").filter(pk=message["approval_id"]).exists()
