"""HTTP helpers shared by the webhook view and the events API: errors and bounded bodies."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from automation.lib.errors import DomainError

JSON_TYPES = ("application/json",)


class HttpError(DomainError):
    """A request we refuse: status, machine-readable code and a message saying what to do."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    response.error_code = code  # type: ignore[attr-defined]  (counted by the webhook view)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def database_unavailable() -> JsonResponse:
    return error_response(
        503,
        "database_unavailable",
        "The event store is unavailable, so nothing was stored; retry later.",
        Retry_After="5",
    )


def is_json_type(content_type: str) -> bool:
    """application/json or any application/<something>+json (parameters already stripped)."""
    content_type = content_type.lower()
    return content_type in JSON_TYPES or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


def read_body(request: HttpRequest, limit: int) -> bytes:
    """The request body, refusing (413) one over ``limit`` bytes before and while reading it."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(declared)
    except ValueError:
        raise HttpError(400, "bad_content_length", "Content-Length is not a number.") from None
    if length > limit:
        raise _too_large(limit)
    body = request.read(limit + 1)
    if len(body) > limit:
        raise _too_large(limit)
    return body


def _too_large(limit: int) -> HttpError:
    return HttpError(
        413, "body_too_large", f"The body is larger than this endpoint's limit of {limit} bytes."
    )


def json_body(data: dict[str, Any], status: int) -> JsonResponse:
    return JsonResponse(data, status=status)
