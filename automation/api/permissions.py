"""Permission classes of the API: every view names the Django permission it needs.

``HasPerm.of("app.codename")`` for a view with one permission; ``ReadWrite.of(read, write)``
for a list that reads with one permission and creates with another (``GET /api/events/`` needs
``events.view_event``, ``POST`` needs ``events.add_event``). The authorization matrix test
(tests/security/test_authorization_matrix.py) holds every route to what it declares.
"""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

__all__ = ["HasPerm", "ReadWrite"]


class HasPerm(permissions.BasePermission):
    """``HasPerm.of("automation.add_workflow")``: the user needs that Django permission."""

    perm = ""

    @classmethod
    def of(cls, perm: str) -> type[HasPerm]:
        return type(
            "HasPerm", (cls,), {"perm": perm, "message": f"This needs the {perm} permission."}
        )

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.user.has_perm(self.perm)


class ReadWrite(permissions.BasePermission):
    """``ReadWrite.of(read, write)``: ``read`` for GET/HEAD/OPTIONS, ``write`` otherwise."""

    read = write = ""

    @classmethod
    def of(cls, read: str, write: str) -> type[ReadWrite]:
        return type("ReadWrite", (cls,), {"read": read, "write": write})

    def has_permission(self, request: Request, view: Any) -> bool:
        perm = self.read if request.method in permissions.SAFE_METHODS else self.write
        self.message = f"This needs the {perm} permission."
        return request.user.has_perm(perm)
