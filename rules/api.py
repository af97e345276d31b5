"""The rules API: list and create rules, read and change one (``{"definition": {...}}``, errors
by path as for workflows)."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from automation.api.permissions import ReadWrite
from automation.api.responses import ListView, error, newest_first
from automation.api.schema import ErrorSerializer
from rules.models import Rule
from rules.selectors import rules_overview
from rules.services import rule_save


class RuleSerializer(serializers.ModelSerializer):
    source = serializers.CharField(read_only=True, help_text="The source of its derived events.")

    class Meta:
        model = Rule
        fields = ["name", "kind", "active", "description", "source", "created_at", "updated_at"]
        read_only_fields = fields


class RuleStateSerializer(serializers.Serializer):
    open_matches = serializers.IntegerField(help_text="Keys with a partial match or window open.")
    derived_events = serializers.IntegerField()
    last_fired_at = serializers.DateTimeField(allow_null=True)
    last_event = serializers.CharField(allow_null=True, help_text="Id of its newest event.")


class RuleDetailSerializer(RuleSerializer):
    definition = serializers.JSONField()
    state = serializers.SerializerMethodField()

    class Meta(RuleSerializer.Meta):
        fields = [*RuleSerializer.Meta.fields, "definition", "state"]
        read_only_fields = fields

    @extend_schema(responses=RuleStateSerializer)
    def get_state(self, rule: Rule) -> dict[str, Any]:
        found = next((item for item in rules_overview() if item.rule.pk == rule.pk), None)
        last = found.last_fired if found else None
        return {
            "open_matches": found.open_matches if found else 0,
            "derived_events": found.derived if found else 0,
            "last_fired_at": last.received_at if last else None,
            "last_event": str(last.id) if last else None,
        }


class RuleUpdatedSerializer(RuleDetailSerializer):
    changed = serializers.BooleanField(help_text="False when the definition was unchanged.")

    class Meta(RuleDetailSerializer.Meta):
        fields = [*RuleDetailSerializer.Meta.fields, "changed"]
        read_only_fields = fields


class RuleInput(serializers.Serializer):
    definition = serializers.JSONField()
    active = serializers.BooleanField(required=False)


class ManagesRules(permissions.BasePermission):
    """rules.view_rule to list, rules.add_rule to create."""

    def has_permission(self, request: Request, view: Any) -> bool:
        safe = request.method in permissions.SAFE_METHODS
        perm = "rules.view_rule" if safe else "rules.add_rule"
        self.message = f"This needs {perm}."
        return request.user.has_perm(perm)


class RuleList(ListView):
    """GET: every rule, by name; ``?kind=``, ``?active=``. POST ``{"definition": {...},
    "active"?}``: create a rule (201), 400 naming each invalid path, 409 if the name exists."""

    permission_classes = [permissions.IsAuthenticated, ManagesRules]
    serializer_class = RuleSerializer
    queryset = Rule.objects.all()
    filterset_fields = ["kind", "active"]
    ordering_fields = ["name", "created_at", "updated_at"]
    ordering = ["name"]
    pagination_class = newest_first("name")

    @extend_schema(request=RuleInput, responses={201: RuleDetailSerializer, 409: ErrorSerializer})
    def post(self, request: Request) -> Response:
        body = RuleInput(data=request.data)
        body.is_valid(raise_exception=True)
        definition = body.validated_data["definition"]
        name = definition.get("name") if isinstance(definition, dict) else None
        if name and Rule.objects.filter(name=name).exists():
            return error(409, "exists", f"rule {name!r} exists; PUT /api/rules/{name}/")
        rule, _ = rule_save(definition=definition, active=body.validated_data.get("active"))
        return Response(RuleDetailSerializer(rule).data, status=201)


rule_list = RuleList.as_view()


@extend_schema(methods=["GET"], responses=RuleDetailSerializer)
@extend_schema(methods=["PUT"], request=RuleInput, responses={200: RuleUpdatedSerializer})
@api_view(["GET", "PUT"])
@permission_classes(
    [permissions.IsAuthenticated, ReadWrite.of("rules.view_rule", "rules.change_rule")]
)
def rule_detail(request: Request, name: str) -> Response:
    """GET: the rule, its definition and its state. PUT ``{"definition", "active"?}``: change it
    (a changed definition starts its windows afresh)."""
    rule = get_object_or_404(Rule, name=name)
    if request.method == "GET":
        return Response(RuleDetailSerializer(rule).data)
    body = RuleInput(data=request.data)
    body.is_valid(raise_exception=True)
    rule, changed = rule_save(
        definition=body.validated_data["definition"],
        name=rule.name,
        active=body.validated_data.get("active"),
    )
    return Response({**RuleDetailSerializer(rule).data, "changed": changed})
