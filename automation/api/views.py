from __future__ import annotations

from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response


@api_view(["GET"])
def me(request: Request) -> Response:
    """Who the request is authenticated as: lets a machine check its token."""
    user = request.user
    return Response(
        {
            "username": user.get_username(),
            "is_staff": user.is_staff,
            "groups": sorted(user.groups.values_list("name", flat=True)),
            "auth": "token" if request.auth is not None else "session",
        }
    )
