from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from automation.models import Run, StepRecord


class StepSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="step_id")
    duration = serializers.FloatField(
        read_only=True, allow_null=True, help_text="Seconds; null while the step is open."
    )

    class Meta:
        model = StepRecord
        fields = [
            "id", "kind", "status", "attempt", "attempts", "input", "output", "error",
            "started_at", "finished_at", "duration", "next_attempt_at",
        ]  # fmt: skip
        read_only_fields = fields


class RunSerializer(serializers.ModelSerializer):
    workflow = serializers.CharField(source="workflow.name", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    trigger_event = serializers.UUIDField(
        source="trigger_event_id", read_only=True, allow_null=True
    )
    parent_run = serializers.UUIDField(source="parent_run_id", read_only=True, allow_null=True)

    class Meta:
        model = Run
        fields = [
            "id", "workflow", "version", "status", "waiting_for", "input", "output", "error",
            "trigger_event", "correlation_id", "parent_run", "recoveries", "search", "created_at",
            "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


class RunDetailSerializer(RunSerializer):
    steps = serializers.SerializerMethodField()

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "steps"]
        read_only_fields = fields

    @extend_schema_field(StepSerializer(many=True))
    def get_steps(self, run: Run) -> list:
        journal = run.steps.timeline()
        return StepSerializer(journal, many=True).data
