from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from automation.health import run_checks


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database, broker and channel layer answer; 503 naming the ones that do not."""
    healthy, checks = run_checks()
    failing = [name for name, result in checks.items() if result["status"] == "fail"]
    body = {"status": "ok" if healthy else "fail", "failing": failing, "checks": checks}
    return JsonResponse(body, status=200 if healthy else 503)
