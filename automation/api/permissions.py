"""Permission classes of the API: every view names the Django permission it needs.

``HasPerm.of("app.codename")`` for a view with one permission; ``ReadWrite.of(read, write)``
for a list that reads with one permission and creates with another (``GET /api/events/`` needs
``events.view_event``, ``POST`` needs ``events.add_event``). The authorization matrix test
(tests/security/test_authorization_matrix.py) holds every route to what it declares.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Permission
from django.db.models import Q
from rest_framework import permissions
from rest_framework.request import Request

__all__ = ["HasPerm", "ReadWrite", "has_perm"]

# The backends this check stands in for: axes' grants no permission, ModelBackend's are rows.
_MODEL_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]


def has_perm(user: Any, perm: str) -> bool:
    """``user.has_perm(perm)`` in one query: ModelBackend loads every permission of the user
    (two queries) to answer for one, on every API request. Falls back to ``user.has_perm``
    when other backends are configured (they may grant permissions of their own), and uses
    ModelBackend's cache when something loaded it already."""
    if settings.AUTHENTICATION_BACKENDS != _MODEL_BACKENDS or hasattr(user, "_perm_cache"):
        return bool(user.has_perm(perm))
    if not user.is_active or user.is_anonymous:
        return False
    if user.is_superuser:
        return True
    app_label, _, codename = perm.partition(".")
    held = Permission.objects.filter(Q(user=user) | Q(group__user=user))
    return held.filter(content_type__app_label=app_label, codename=codename).exists()


class HasPerm(permissions.BasePermission):
    """``HasPerm.of("automation.add_workflow")``: the user needs that Django permission."""

    perm = ""

    @classmethod
    def of(cls, perm: str) -> type[HasPerm]:
        return type(
            "HasPerm", (cls,), {"perm": perm, "message": f"This needs the {perm} permission."}
        )

    def has_permission(self, request: Request, view: Any) -> bool:
        return has_perm(request.user, self.perm)


class ReadWrite(permissions.BasePermission):
    """``ReadWrite.of(read, write)``: ``read`` for GET/HEAD/OPTIONS, ``write`` otherwise."""

    read = write = ""

    @classmethod
    def of(cls, read: str, write: str) -> type[ReadWrite]:
        return type("ReadWrite", (cls,), {"read": read, "write": write})

    def has_permission(self, request: Request, view: Any) -> bool:
        perm = self.read if request.method in permissions.SAFE_METHODS else self.write
        self.message = f"This needs the {perm} permission."
        return has_perm(request.user, perm)
