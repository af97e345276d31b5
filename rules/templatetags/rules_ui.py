"""Rule blocks on pages other apps own: the event page's causation links and the dashboard's
recent anomalies (``{% load rules_ui %}``), so those pages need no import of rules."""

from __future__ import annotations

from typing import Any

from django import template

from rules import selectors

register = template.Library()


@register.inclusion_tag("rules/event_causes.html")
def rule_causes(event: Any) -> dict[str, Any]:
    """The events a derived event was made of, and the derived events this one took part in."""
    causes = selectors.event_causes(event) if event.source.startswith("rule:") else []
    return {
        "causes": causes,
        "rule_name": event.source.removeprefix("rule:"),
        "effects": selectors.event_effects(event),
    }


@register.inclusion_tag("rules/dashboard_anomalies.html", takes_context=True)
def recent_anomalies(context: template.Context) -> dict[str, Any]:
    user = context.get("user")
    return {
        "anomalies": selectors.recent_anomalies(),
        "can_view_events": bool(user and user.has_perm("events.view_event")),
    }
