from __future__ import annotations

from typing import Any

from rest_framework import serializers

from approvals.models import Approval


class ApprovalSerializer(serializers.ModelSerializer):
    run = serializers.UUIDField(source="run_id", read_only=True)
    workflow = serializers.CharField(source="run.workflow.name", read_only=True)
    decided_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    can_decide = serializers.SerializerMethodField()

    class Meta:
        model = Approval
        fields = [
            "id", "title", "description", "status", "run", "workflow", "step_id", "context",
            "assignees", "due_at", "on_timeout", "decided_by", "decided_at", "comment",
            "created_at", "can_decide", "quorum", "four_eyes", "escalated", "fields", "values",
            "remind_at", "reminded_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_can_decide(self, approval: Approval) -> bool:
        # Every approval listed is visible to the user, so an assignee or an "any" decider.
        return approval.status == Approval.Status.PENDING


class DecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "reject"])
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    values = serializers.JSONField(required=False, default=dict)

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["A JSON object is required."]})
        return super().to_internal_value(data)
