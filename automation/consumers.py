"""WebSocket consumers of the operator UI: each joins the live groups its user may hear.

Every socket is session-authenticated (AuthMiddlewareStack) and origin-checked
(AllowedHostsOriginValidator, in automation.asgi). Anonymous sockets are refused, and so are
sockets for pages their user may not see. A consumer only forwards notices (see
automation.live); pages load the data themselves through the permission-checked views.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from automation import live
from automation.models import Run

# Close codes in the 4000-4999 range the WebSocket spec leaves to applications.
UNAUTHENTICATED = 4401
FORBIDDEN = 4403


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Join ``groups_for(user)`` (None = forbidden) and forward each notice to the page."""

    joined: list[str]

    async def connect(self) -> None:
        self.joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        groups = await database_sync_to_async(self.groups_for)(user)
        if groups is None:
            await self.close(code=FORBIDDEN)
            return
        live.consumer_loop_started(asyncio.get_running_loop())
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = groups
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Pages only listen; a ping gets a pong so clients can measure the connection."""
        if isinstance(content, dict) and content.get("kind") == "ping":
            await self.send_json({"kind": "pong", "t": content.get("t")})

    async def live_notice(self, message: dict[str, Any]) -> None:
        await self.send_json({k: v for k, v in message.items() if k != "type"})

    def groups_for(self, user: Any) -> list[str] | None:
        raise NotImplementedError


class RunsConsumer(LiveConsumer):
    """The runs list: every run's status changes."""

    def groups_for(self, user: Any) -> list[str] | None:
        return ["runs"] if user.has_perm("automation.view_run") else None


class RunConsumer(LiveConsumer):
    """One run's page: its status and each step of its timeline."""

    def groups_for(self, user: Any) -> list[str] | None:
        run_id = self.scope["url_route"]["kwargs"]["run_id"]
        if not user.has_perm("automation.view_run") or not Run.objects.filter(id=run_id).exists():
            return None
        return [f"run.{run_id}"]


class DashboardConsumer(LiveConsumer):
    """The dashboard's counts and chart."""

    def groups_for(self, user: Any) -> list[str] | None:
        return ["dashboard"] if user.has_perm("automation.view_run") else None


class EventsConsumer(LiveConsumer):
    """The events list: each new event."""

    def groups_for(self, user: Any) -> list[str] | None:
        return ["events"] if user.has_perm("events.view_event") else None
