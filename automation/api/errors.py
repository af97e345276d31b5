"""One JSON error shape for every API answer that is not a success.

``{"error": {"code": ..., "message": ..., "fields"?: {...}}}``: a code a program can test, a
message a person can act on and, for invalid input, the problems of each field. DRF calls
``exception_handler`` for every exception a view raises (REST_FRAMEWORK["EXCEPTION_HANDLER"]),
so views written later conform without doing anything. Django's own 404 and 500 pages answer in
the same shape under /api/ (``json_400``, ``json_404``, ``json_500`` in automation/urls.py).

The domain's refusals (``automation.lib.errors.DomainError``: InvalidEvent, BadPayload,
SignatureError, AlreadyDecided, InvalidDefinition ...) carry their code and status, and are
turned into an answer here only: by ``exception_handler`` for the API views, by
``domain_error_response`` for the plain Django views (the webhook).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    DisallowedHost,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from automation.lib.db import refused_value
from automation.lib.errors import DomainError

logger = logging.getLogger(__name__)

#: Seconds a client is told to wait after a 503 for an unreachable database.
DATABASE_RETRY_AFTER = 5
JSON_PREFIXES = ("/api/", "/hooks/", "/metrics")


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(_body(exc.code, exc.describe(), **exc.details()), status=exc.status)
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is unreachable (token lookup, a query): the request can be retried.
        logger.warning("API answered 503: database unavailable (%s)", exc)
        return Response(
            _body("database_unavailable", "The database is unavailable; retry later."),
            status=503,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
        )
    if isinstance(exc, DataError):
        # A value the database cannot store or compare (out of range, bad encoding): bad input.
        return Response(_body("invalid", refused_value(exc)), status=400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django answers 500 (json_500 under /api/) and logs the traceback
    if isinstance(exc, exceptions.ValidationError):
        response.data = _validation_body(response.data)
    else:
        response.data = _body(_code(exc), _message(response.data))
    return response


def domain_error_response(exc: DomainError) -> JsonResponse:
    """The answer of a plain Django view to a refusal: ``{"error": {"code", "message"}}``, the
    webhook's documented shape (the API's ``details`` are for API clients)."""
    response = JsonResponse(_body(exc.code, exc.describe()), status=exc.status)
    response.error_code = exc.code  # type: ignore[attr-defined]  (counted by the webhook view)
    return response


def _body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _code(exc: Exception) -> str:
    if isinstance(exc, exceptions.Throttled):
        return "rate_limited"
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        if isinstance(codes, str):
            return codes
        return exc.default_code
    return "error"


def _message(data: Any) -> str:
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"])
    return str(data)


def _validation_body(detail: Any) -> dict[str, Any]:
    """Field problems under ``fields``; problems of the whole input make up the message."""
    if isinstance(detail, list):
        return _body("invalid", " ".join(map(str, detail)) or "The input is not valid.")
    if not isinstance(detail, dict):
        return _body("invalid", str(detail))
    general = detail.get("non_field_errors") or detail.get("detail") or []
    if not isinstance(general, list):
        general = [general]
    fields = {name: problems for name, problems in detail.items() if name not in _GENERAL}
    if general:
        message = " ".join(map(str, general))
    else:
        message = f"Fix the fields named: {', '.join(fields)}."
    return _body("invalid", message, fields=fields) if fields else _body("invalid", message)


_GENERAL = ("non_field_errors", "detail")


# --- Django's own error pages, for requests to the API ----------------------------------------


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PREFIXES)


def json_404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(_body("not_found", f"Nothing is at {request.path}."), status=404)
    return defaults.page_not_found(request, exception)


def json_400(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's refusals of a request as a whole (SuspiciousOperation): a bad Host header, too
    many form fields, a form body over DATA_UPLOAD_MAX_MEMORY_SIZE."""
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    status, code, message = _bad_request(exception)
    return JsonResponse(_body(code, message), status=status)


def _bad_request(exception: Exception) -> tuple[int, str, str]:
    if isinstance(exception, DisallowedHost):
        return 400, "bad_host", "The Host header names a host this server does not serve."
    if isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return 400, "too_many_fields", f"The form has more than {limit} fields; send JSON."
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return 413, "body_too_large", f"The body is larger than this URL's limit of {limit} bytes."
    return 400, "bad_request", "The request cannot be processed as sent."


def json_500(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(
            _body("server_error", "The server failed to answer; the error was logged."),
            status=500,
        )
    return defaults.server_error(request)
