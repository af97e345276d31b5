"""POST /hooks/<slug>/: the webhook hot path. Verify, store, route after commit, answer 202.

The 202 means the event is committed. Every refusal is a JSON error that stored nothing; while
the database is down the answer is 503, never a 500 and never a 202.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.db import DatabaseError, DataError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from automation import metrics
from automation.api.errors import domain_error_response
from automation.lib import ratelimit
from automation.lib.db import refused_value
from automation.lib.errors import DomainError
from automation.lib.paging import keyset_page, query_without
from automation.lib.ui import render_page
from events import endpoints, selectors, webhooks
from events.http import HttpError, database_unavailable, error_response, is_json_type, read_body
from events.models import Event
from events.signatures import SignatureError

logger = logging.getLogger(__name__)


@csrf_exempt  # signed by the sender (or a trusted network): no browser session is involved
def webhook(request: HttpRequest, slug: str) -> JsonResponse:
    response = _answer(request, slug)
    if response.status_code >= 400:
        metrics.webhook_rejected(getattr(response, "error_code", str(response.status_code)))
    return response


def _answer(request: HttpRequest, slug: str) -> JsonResponse:
    try:
        return _receive(request, slug)
    except DomainError as exc:
        return domain_error_response(exc)
    except DataError as exc:
        return error_response(400, "unstorable_value", refused_value(exc))
    except DatabaseError:
        logger.warning("webhook %s answered 503: database unavailable", slug, exc_info=True)
        return database_unavailable()


def _rate(slug: str) -> tuple[int, int] | None:
    return settings.WEBHOOK_RATE_LIMITS.get(slug, settings.WEBHOOK_RATE_LIMIT)


def _receive(request: HttpRequest, slug: str) -> JsonResponse:
    if request.method != "POST":
        raise HttpError(405, "method_not_allowed", "Deliver webhooks with POST.")
    endpoint = endpoints.endpoint_active(slug)
    if endpoint is None:
        raise HttpError(404, "unknown_endpoint", f"No active webhook endpoint {slug!r}.")
    rate = _rate(slug)
    retry_after = ratelimit.hit(f"hook:{slug}", rate)
    if rate is not None and retry_after is not None:
        return error_response(
            429,
            "rate_limited",
            f"Endpoint {slug!r} takes at most {rate[0]} deliveries per {rate[1]}s; "
            f"retry after {retry_after}s.",
            Retry_After=str(retry_after),
        )
    if not is_json_type(request.content_type or ""):
        raise HttpError(
            415,
            "unsupported_content_type",
            f"Content-Type {request.content_type or '(none)'!r} is not supported; "
            "send application/json.",
        )
    body = read_body(request, endpoint.max_body_bytes or settings.WEBHOOK_MAX_BODY_BYTES)
    try:
        event, created = webhooks.webhook_receive(
            endpoint=endpoint, body=body, headers=request.headers
        )
    except SignatureError:
        fresh = endpoints.endpoint_active(slug, fresh=True)
        if fresh is None or fresh.secret == endpoint.secret:
            raise
        # The secret was rotated by another process since this one cached the endpoint.
        event, created = webhooks.webhook_receive(
            endpoint=fresh, body=body, headers=request.headers
        )
    return JsonResponse({"event_id": str(event.id), "duplicate": not created}, status=202)


# --- Operator UI: events ----------------------------------------------------------------------


@login_required
@require_safe
@permission_required("events.view_event", raise_exception=True)
def events_page(request: HttpRequest) -> HttpResponse:
    names = ("q", "id", "type", "source", "correlation_id")
    filters = {k: request.GET.get(k, "").strip() for k in names}
    error, status = "", 200
    try:
        if any("\x00" in value for value in filters.values()):  # PostgreSQL refuses NUL
            raise selectors.BadFilter("A filter has a NUL character (\\x00); remove it.")
        events = selectors.events_filter({k: v for k, v in filters.items() if v})
        with selectors.search_time_limit(filters["q"]):
            page = keyset_page(events, request)
    # A mistyped id, a search too short or too slow: the form again, saying what to give.
    except (selectors.BadFilter, selectors.SearchTooSlow) as exc:
        page, error, status = keyset_page(Event.objects.none(), request), str(exc), 400
    context = {
        "page": page,
        "filters": filters,
        "error": error,
        "query": query_without(request, "before", "fragment"),
        "section": "events",
    }
    response = render_page(request, "app/events.html", context)
    response.status_code = status
    return response


@login_required
@require_safe
@permission_required("events.view_event", raise_exception=True)
def event_page(request: HttpRequest, event_id: Any) -> HttpResponse:
    event = get_object_or_404(Event.objects.select_related("actor"), id=event_id)
    context = {
        "event": event,
        "runs": selectors.event_runs(event),
        "flow": selectors.event_flow(event),
        "caused": list(selectors.events_caused_by(event)[:50]),
        "can_view_runs": request.user.has_perm("automation.view_run"),
        "section": "events",
    }
    return render(request, "app/event.html", context)
