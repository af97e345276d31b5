"""The circuit breakers API: their state, and closing one now. Views parse, check permission,
call one service, render."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from automation.api.responses import ListView, newest_first
from automation.api.schema import ErrorSerializer
from automation.commands import circuit_close
from automation.models import Circuit


class CircuitSerializer(serializers.ModelSerializer):
    class Meta:
        model = Circuit
        fields = ["key", "state", "failures", "opened_at", "retry_at"]
        read_only_fields = fields


class ViewsCircuits(permissions.BasePermission):
    message = "Seeing circuit breakers needs the automation.view_circuit permission."

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.user.has_perm("automation.view_circuit")


class ClosesCircuits(permissions.BasePermission):
    message = "Closing a circuit breaker needs the automation.change_circuit permission."

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.user.has_perm("automation.change_circuit")


class CircuitList(ListView):
    """Every circuit breaker by key (an action, or a host for http.request and slack.post):
    ``state`` closed, open or half_open; ``failures`` counted in the current window;
    ``opened_at``; ``retry_at``, when an open circuit lets a probe call through."""

    permission_classes = [permissions.IsAuthenticated, ViewsCircuits]
    serializer_class = CircuitSerializer
    queryset = Circuit.objects.all()
    filterset_fields = ["state"]
    ordering_fields = ["key"]
    ordering = ["key"]
    pagination_class = newest_first("key")


circuit_list = CircuitList.as_view()


@extend_schema(request=None, responses={200: CircuitSerializer, 404: ErrorSerializer})
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated, ClosesCircuits])
def circuit_close_view(request: Request, key: str) -> Response:
    """Close the circuit now: the next call goes through (audited). 404 for an unknown key."""
    return Response(CircuitSerializer(circuit_close(key=key, user=request.user)).data)
