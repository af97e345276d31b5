"""WebSocket consumers of the operator UI: each joins the live groups its user may hear.

Every socket is session-authenticated (AuthMiddlewareStack) and origin-checked
(automation.lib.websocket_origin, in automation.asgi). A socket is accepted and then closed with
4401 when its session has no signed-in, active user and with 4403 when the user may not see its
page: a close before accepting would reach the browser as a bare HTTP 403, which a page cannot
tell from a network failure (it would reconnect forever).

A socket's standing is not fixed at connect: signing out, deactivation, a password change, and
changes to the user's groups or permissions send it a recheck (automation.live_access), which
re-reads the session and re-joins or closes. A consumer only forwards notices (see
automation.live); pages load the data themselves through the permission-checked views.
"""

from __future__ import annotations

import asyncio
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser

from automation import live
from automation.live_access import session_group, user_group
from automation.models import Run

# Close codes in the 4000-4999 range the WebSocket spec leaves to applications.
UNAUTHENTICATED = 4401
FORBIDDEN = 4403
NOT_FOUND = 4404


def session_user(scope: dict[str, Any]) -> Any:
    """The session's user as the database says now (not as it was at connect): anonymous once
    the session is gone (signed out), the user inactive or the password changed."""
    session = scope.get("session")
    if session is None or not session.session_key:
        return AnonymousUser()
    fresh = import_module(settings.SESSION_ENGINE).SessionStore(session.session_key)
    return auth.get_user(SimpleNamespace(session=fresh))  # type: ignore[arg-type]


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Join ``groups_for(user)`` (None = forbidden) and forward each notice to the page."""

    joined: list[str]

    async def connect(self) -> None:
        # Join before accepting: once the page sees the socket open, it hears every notice
        # (a sign-out a moment later included). A refusal is still accepted, then closed with
        # its code, so the page can tell it from a network failure.
        self.joined = []
        live.consumer_loop_started(asyncio.get_running_loop())
        code, groups = await database_sync_to_async(self.standing)()
        if code is None:
            await self._rejoin(groups)
        await self.accept()
        if code is not None:
            await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        await self._rejoin([])

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Pages only listen; a ping gets a pong so clients can measure the connection."""
        if isinstance(content, dict) and content.get("kind") == "ping":
            await self.send_json({"kind": "pong", "t": content.get("t")})

    async def live_notice(self, message: dict[str, Any]) -> None:
        await self.send_json({k: v for k, v in message.items() if k != "type"})

    async def live_recheck(self, message: dict[str, Any]) -> None:
        """Look at the session again: join the groups its user may hear now, or close."""
        code, groups = await database_sync_to_async(self.standing)()
        if code is not None:
            await self.refuse(code)
        else:
            await self._rejoin(groups)

    async def live_signed_out(self, message: dict[str, Any]) -> None:
        await self.refuse(UNAUTHENTICATED)

    async def refuse(self, code: int) -> None:
        await self._rejoin([])
        await self.close(code=code)

    async def _rejoin(self, groups: list[str]) -> None:
        for group in set(self.joined) - set(groups):
            await self.channel_layer.group_discard(group, self.channel_name)
        for group in set(groups) - set(self.joined):
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = groups

    def standing(self) -> tuple[int | None, list[str]]:
        """(close code, []) for a socket that must go, else (None, the groups it may hear)."""
        user = session_user(self.scope)
        if not user.is_authenticated:
            return UNAUTHENTICATED, []
        groups = self.groups_for(user)
        if groups is None:
            return FORBIDDEN, []
        control = [user_group(user.pk), session_group(self.scope["session"].session_key)]
        return None, [*control, *groups]

    def groups_for(self, user: Any) -> list[str] | None:
        raise NotImplementedError


class UnknownPathConsumer(AsyncJsonWebsocketConsumer):
    """Any other path under the WebSocket router: a clean refusal instead of a server error."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=NOT_FOUND)


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
