from __future__ import annotations

from typing import Any

from rest_framework import serializers

from events.models import Event, WebhookEndpoint
from events.services import InvalidEvent, validate_event_type


class EventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(
        source="actor.username",
        default=None,
        allow_null=True,
        read_only=True,
        help_text="The user who caused the event (posted, replayed, saved what a signal "
        "turned into it, or requested the run that emitted it); null for webhooks.",
    )

    class Meta:
        model = Event
        fields = [
            "id",
            "type",
            "source",
            "subject",
            "data",
            "headers",
            "correlation_id",
            "causation_id",
            "idempotency_key",
            "actor",
            "occurred_at",
            "received_at",
            "routed_at",
            "route_errors",
            "schema_version",
        ]
        read_only_fields = fields


class RunSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    workflow = serializers.CharField(source="workflow.name")
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class EventInSerializer(serializers.Serializer):
    """The plain JSON body of POST /api/events/ (CloudEvents are read by events.cloudevents)."""

    type = serializers.CharField(max_length=200)
    data = serializers.JSONField()
    subject = serializers.CharField(max_length=200, required=False, allow_blank=True)
    correlation_id = serializers.CharField(max_length=200, required=False, allow_blank=True)
    idempotency_key = serializers.CharField(max_length=255, required=False, allow_blank=True)

    def to_internal_value(self, data: Any) -> Any:
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        if unknown:
            raise serializers.ValidationError(
                {
                    name: [
                        "Unknown field; expected type, data, subject, correlation_id, "
                        "idempotency_key."
                    ]
                    for name in unknown
                }
            )
        return super().to_internal_value(data)

    def validate_type(self, value: str) -> str:
        try:
            return validate_event_type(value)
        except InvalidEvent as exc:
            raise serializers.ValidationError(exc.message) from None

    def validate_data(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("A JSON object is required.")
        return value


class WebhookEndpointSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        help_text="Leave out to have one generated (Stripe: paste the dashboard's secret).",
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "slug",
            "url",
            "description",
            "scheme",
            "secret",
            "type_from",
            "type_value",
            "type_prefix",
            "data_path",
            "idempotency_header",
            "max_body_bytes",
            "active",
            "previous_secret_expires_at",
            "created_at",
        ]
        read_only_fields = ["url", "previous_secret_expires_at", "created_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("scheme") == "stripe" and not attrs.get("secret"):
            # A generated secret could never match: Stripe signs with the one it generated.
            raise serializers.ValidationError(
                {"secret": "Stripe generates the signing secret: paste it from the dashboard."}
            )
        return attrs

    def get_url(self, endpoint: WebhookEndpoint) -> str:
        request = self.context.get("request")
        path = f"/hooks/{endpoint.slug}/"
        return request.build_absolute_uri(path) if request is not None else path


class ReplayTargetSerializer(serializers.Serializer):
    """The optional body of POST /api/events/<id>/replay/: aim the copy at one workflow."""

    workflow = serializers.CharField(
        max_length=200, required=False, help_text="Start only this workflow (no other subscriber)."
    )
    version = serializers.IntegerField(
        min_value=1, required=False, help_text="That workflow's version; default its latest."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        if "version" in attrs and "workflow" not in attrs:
            raise serializers.ValidationError({"version": ["Name the workflow too."]})
        return attrs


MAX_ROTATION_GRACE = 365 * 86400  # a year; longer keeps a leaked secret alive for no reason


class RotateSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(required=False, allow_blank=True)
    grace_seconds = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_ROTATION_GRACE,
        help_text="How long the old secret still verifies (default WEBHOOK_SECRET_ROTATION_GRACE).",
    )


# --- Answers documented in the OpenAPI schema (the views build these bodies) ----------------


class EventAcceptedSerializer(EventSerializer):
    duplicate = serializers.BooleanField(help_text="True when this delivery was stored before.")

    class Meta(EventSerializer.Meta):
        fields = [*EventSerializer.Meta.fields, "duplicate"]
        read_only_fields = fields


class FlowOutcomeSerializer(serializers.Serializer):
    workflow = serializers.CharField(source="workflow.name")
    outcome = serializers.ChoiceField(
        choices=["started", "delayed", "debounced", "batched", "skipped"],
        help_text="What the trigger's flow control did: started a run, delayed it (throttle), "
        "folded the event into a run that starts later (debounce, batch), or started none.",
    )
    run = serializers.UUIDField(
        source="run_id", allow_null=True, help_text="The run the event ended up in, if any."
    )
    key = serializers.CharField(help_text="The flow-control key's value for this event.")
    reason = serializers.CharField(help_text="Why, for all but a plain start.")
    created_at = serializers.DateTimeField()


class EventWithRunsSerializer(EventSerializer):
    runs = RunSummarySerializer(many=True, help_text="The runs this event started.")
    flow = FlowOutcomeSerializer(
        many=True,
        help_text="What flow control (rate_limit, throttle, debounce, batch) did with this "
        "event for each workflow whose trigger has it.",
    )

    class Meta(EventSerializer.Meta):
        fields = [*EventSerializer.Meta.fields, "runs", "flow"]
        read_only_fields = fields


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(help_text="The signing secret; shown this once.")


class RotatedSecretSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    secret = serializers.CharField(help_text="The new signing secret; shown this once.")
    previous_secret_expires_at = serializers.DateTimeField()
