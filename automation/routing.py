"""WebSocket routes. Each domain app adds its consumers' routes here."""

from __future__ import annotations

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
