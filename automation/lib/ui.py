"""Rendering helpers shared by the operator UI's views (automation, events, approvals)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def render_page(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """The whole page, or only its live part (``<name>_live.html``) when the page's script
    re-fetches it after a live notice (an htmx request with ``?fragment=1``)."""
    if request.htmx and request.GET.get("fragment"):
        template = template.replace(".html", "_live.html")
    return render(request, template, context)
