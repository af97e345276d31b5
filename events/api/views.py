"""The events API: ingest (JSON and CloudEvents), list, detail, replay; webhook endpoints.

Views parse, check permission, call one service and render. Refusals use the same JSON error
shape as the webhooks: ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, DataError
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.decorators import api_view, parser_classes, permission_classes
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from automation.api.parsers import StorableJSONParser
from automation.api.permissions import HasPerm, ReadWrite, has_perm
from automation.api.responses import ListView, error, newest_first
from automation.api.schema import ErrorSerializer
from automation.lib.db import refused_value
from events import cloudevents, routing, selectors, services
from events.api.filters import EventFilter, WebhookEndpointFilter
from events.api.serializers import (
    EventAcceptedSerializer,
    EventInSerializer,
    EventSerializer,
    EventWithRunsSerializer,
    FlowOutcomeSerializer,
    ReplayTargetSerializer,
    RotatedSecretSerializer,
    RotateSecretSerializer,
    RunSummarySerializer,
    WebhookEndpointCreatedSerializer,
    WebhookEndpointSerializer,
)
from events.http import HttpError, is_json_type, read_body
from events.models import Event, WebhookEndpoint
from events.payloads import parse_json_object
from events.webhooks import webhook_endpoint_create, webhook_endpoint_rotate_secret

logger = logging.getLogger(__name__)


class ManagesWebhooks(permissions.BasePermission):
    """Staff with the model permission: view to list, add to create, change to rotate."""

    message = "Managing webhook endpoints needs staff status and the webhook endpoint permissions."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user.is_staff:
            return False
        if request.method in permissions.SAFE_METHODS:
            return user.has_perm("events.view_webhookendpoint")
        return user.has_perm("events.add_webhookendpoint")


class RotatesWebhookSecrets(permissions.BasePermission):
    message = "Rotating a webhook secret needs staff status and events.change_webhookendpoint."

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.user.is_staff and request.user.has_perm("events.change_webhookendpoint")


# --- Events -------------------------------------------------------------------------------


class UnreadBody(BaseParser):
    """Accepts any body without reading it: the view reads and bounds the body itself (JSON,
    CloudEvents structured or binary). DRF still needs a parser to answer ``request.POST``,
    which its CSRF check for session-authenticated requests looks at."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> dict:
        return {}


class Events(ListView):
    """GET: stored events, newest first, filtered and paginated (events.view_event). POST:
    ingest one event (events.add_event)."""

    permission_classes = [
        permissions.IsAuthenticated,
        ReadWrite.of("events.view_event", "events.add_event"),
    ]

    serializer_class = EventSerializer
    queryset = Event.objects.select_related("actor")  # the serializer shows who caused each
    filterset_class = EventFilter
    ordering_fields = ["received_at", "occurred_at"]
    ordering = ["-received_at", "-id"]
    pagination_class = newest_first("-received_at", "-id", max_page_size=500)
    parser_classes = [UnreadBody]

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # A ?q= search is evaluated (page and serializer) inside its time limit.
        with selectors.search_time_limit(request.query_params.get("q", "")):
            return super().get(request, *args, **kwargs)

    @extend_schema(
        request={
            "application/json": EventInSerializer,
            "application/cloudevents+json": OpenApiTypes.OBJECT,
        },
        responses={202: EventAcceptedSerializer, 413: ErrorSerializer},
        description="Store one event: plain JSON, or a CloudEvent in structured or binary mode. "
        "Idempotency keys are scoped to the sender; a repeated key answers with the first "
        "event, or only {id, duplicate} without events.view_event.",
    )
    def post(self, request: Request) -> Response:
        return _ingest(request)


events = Events.as_view()


def _ingest(request: Request) -> Response:
    try:
        kwargs = _ingest_kwargs(request._request)
        event, created = services.event_ingest(actor_id=request.user.pk, headers={}, **kwargs)
    except DataError as exc:
        return error(400, "unstorable_value", refused_value(exc))
    except DatabaseError:
        logger.warning("POST /api/events/ answered 503: database unavailable", exc_info=True)
        return error(503, "database_unavailable", "Nothing was stored; retry later.")
    if not created and not has_perm(request.user, "events.view_event"):
        # The client's own earlier event, yet posting does not entitle one to read events.
        return Response({"id": str(event.id), "duplicate": True}, status=202)
    if event.actor_id == request.user.pk:
        event.actor = request.user  # stored as theirs (keys are per user): no query for it
    body = EventSerializer(event).data
    body["duplicate"] = not created
    return Response(body, status=202)


def _ingest_kwargs(request: HttpRequest) -> dict[str, Any]:
    content_type = (request.content_type or "").lower()
    body = read_body(request, settings.WEBHOOK_MAX_BODY_BYTES)
    if cloudevents.is_binary(request.headers):
        if content_type and not is_json_type(content_type):
            raise _unsupported(content_type)
        return cloudevents.from_binary(request.headers, body)
    if content_type == cloudevents.STRUCTURED_TYPE:
        return cloudevents.from_structured(body)
    if content_type != "application/json":
        raise _unsupported(content_type)
    serializer = EventInSerializer(data=parse_json_object(body))
    if not serializer.is_valid():
        field, problems = next(iter(serializer.errors.items()))
        raise HttpError(400, "invalid_event", f"{field}: {' '.join(map(str, problems))}")
    return dict(serializer.validated_data)  # source: "api", set by event_ingest


def _unsupported(content_type: str) -> HttpError:
    return HttpError(
        415,
        "unsupported_content_type",
        f"Content-Type {content_type or '(none)'!r} is not supported; send application/json, "
        "application/cloudevents+json, or a binary-mode CloudEvent (ce-* headers, JSON data).",
    )


@extend_schema(responses=EventWithRunsSerializer)
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated, HasPerm.of("events.view_event")])
def event_detail(request: Request, event_id: str) -> Response:
    event = get_object_or_404(Event.objects.select_related("actor"), id=event_id)
    body = EventSerializer(event).data
    body["runs"] = RunSummarySerializer(selectors.event_runs(event), many=True).data
    body["flow"] = FlowOutcomeSerializer(selectors.event_flow(event), many=True).data
    return Response(body)


@extend_schema(request=ReplayTargetSerializer, responses={202: EventAcceptedSerializer})
@api_view(["POST"])
@parser_classes([StorableJSONParser, UnreadBody])
@permission_classes([permissions.IsAuthenticated, HasPerm.of("events.replay_event")])
def event_replay(request: Request, event_id: str) -> Response:
    target = ReplayTargetSerializer(data=request.data if isinstance(request.data, dict) else None)
    if not target.is_valid():
        return error(400, "invalid_target", "Fix the fields named.", fields=target.errors)
    original = get_object_or_404(Event, id=event_id)
    # InvalidEvent (e.g. a schema added since the original was stored) and UnknownTarget (a
    # workflow that does not take this event) are answered with 400.
    replayed = routing.event_replay(
        event=original, actor_id=request.user.pk, **target.validated_data
    )
    body = EventSerializer(replayed).data
    body["duplicate"] = False
    return Response(body, status=202)


# --- Webhook endpoints ----------------------------------------------------------------------


class Webhooks(ListView):
    """GET: webhook endpoints by slug. POST: create one; its secret is shown this once."""

    permission_classes = [permissions.IsAuthenticated, ManagesWebhooks]
    parser_classes = [StorableJSONParser]
    serializer_class = WebhookEndpointSerializer
    queryset = WebhookEndpoint.objects.all()
    filterset_class = WebhookEndpointFilter
    ordering_fields = ["slug", "created_at"]
    ordering = ["slug"]
    pagination_class = newest_first("slug", max_page_size=500)

    @extend_schema(
        request=WebhookEndpointSerializer, responses={201: WebhookEndpointCreatedSerializer}
    )
    def post(self, request: Request) -> Response:
        return _webhook_create(request)


webhooks = Webhooks.as_view()


def _webhook_create(request: Request) -> Response:
    serializer = WebhookEndpointSerializer(data=request.data, context={"request": request})
    if not serializer.is_valid():
        return error(400, "invalid_endpoint", "Fix the fields named.", fields=serializer.errors)
    options = dict(serializer.validated_data)
    try:
        endpoint, secret = webhook_endpoint_create(
            slug=options.pop("slug"),
            scheme=options.pop("scheme"),
            secret=options.pop("secret", ""),
            **options,
        )
    except ValidationError as exc:
        return error(400, "invalid_endpoint", "Fix the fields named.", fields=exc.message_dict)
    body = WebhookEndpointSerializer(endpoint, context={"request": request}).data
    body["secret"] = secret  # the only time it is shown
    return Response(body, status=201)


@extend_schema(request=RotateSecretSerializer, responses=RotatedSecretSerializer)
@api_view(["POST"])
@parser_classes([StorableJSONParser])
@permission_classes([permissions.IsAuthenticated, RotatesWebhookSecrets])
def webhook_rotate(request: Request, slug: str) -> Response:
    serializer = RotateSecretSerializer(data=request.data)
    if not serializer.is_valid():
        return error(400, "invalid_rotation", "Fix the fields named.", fields=serializer.errors)
    grace = serializer.validated_data.get("grace_seconds")
    endpoint = get_object_or_404(WebhookEndpoint, slug=slug)
    try:
        secret = webhook_endpoint_rotate_secret(
            endpoint=endpoint,
            secret=serializer.validated_data.get("secret", ""),
            grace=None if grace is None else timedelta(seconds=grace),
        )
    except ValidationError as exc:
        return error(400, "invalid_rotation", "Fix the fields named.", fields=exc.message_dict)
    return Response(
        {
            "slug": endpoint.slug,
            "secret": secret,
            "previous_secret_expires_at": endpoint.previous_secret_expires_at,
        }
    )
