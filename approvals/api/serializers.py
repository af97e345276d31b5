from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import serializers

from approvals.models import Approval, Delegation
from automation.engine import clock


class ApprovalSerializer(serializers.ModelSerializer):
    run = serializers.UUIDField(source="run_id", read_only=True)
    workflow = serializers.CharField(source="run.workflow.name", read_only=True)
    decided_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    decided_on_behalf_of = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    can_decide = serializers.SerializerMethodField()

    class Meta:
        model = Approval
        fields = [
            "id", "title", "description", "status", "run", "workflow", "step_id", "context",
            "assignees", "due_at", "on_timeout", "decided_by", "decided_on_behalf_of", "decided_at",
            "comment",
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


class DelegationSerializer(serializers.ModelSerializer):
    """A delegation as its owner sees it; ``delegate`` is a username."""

    delegate = serializers.SlugRelatedField(
        slug_field="username", queryset=get_user_model().objects.filter(is_active=True)
    )
    active = serializers.SerializerMethodField()

    class Meta:
        model = Delegation
        fields = ["id", "delegate", "starts_at", "ends_at", "reason", "active", "created_at"]
        read_only_fields = ["id", "active", "created_at"]
        extra_kwargs = {"reason": {"max_length": 200, "required": False}}

    def get_active(self, delegation: Delegation) -> bool:
        now = clock.now()
        return delegation.starts_at <= now < delegation.ends_at
