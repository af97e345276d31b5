"""WebSocket routes of the operator UI (see automation.consumers and automation.live)."""

from __future__ import annotations

from django.urls import path, re_path

from approvals.consumers import InboxConsumer
from automation.consumers import (
    DashboardConsumer,
    EventsConsumer,
    RunConsumer,
    RunsConsumer,
    UnknownPathConsumer,
)

websocket_urlpatterns = [
    path("ws/approvals/", InboxConsumer.as_asgi()),
    path("ws/runs/", RunsConsumer.as_asgi()),
    path("ws/runs/<uuid:run_id>/", RunConsumer.as_asgi()),
    path("ws/dashboard/", DashboardConsumer.as_asgi()),
    path("ws/events/", EventsConsumer.as_asgi()),
    re_path(r"", UnknownPathConsumer.as_asgi()),  # anything else: closed with 4404, not a 500
]
