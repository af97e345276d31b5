from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from automation import metrics as prometheus
from automation.health import run_checks


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database, broker and channel layer answer; 503 naming the ones that do not."""
    healthy, checks = run_checks()
    failing = [name for name, result in checks.items() if result["status"] == "fail"]
    body = {"status": "ok" if healthy else "fail", "failing": failing, "checks": checks}
    return JsonResponse(body, status=200 if healthy else 503)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text: counters of every process (PROMETHEUS_MULTIPROC_DIR) and live gauges."""
    return HttpResponse(prometheus.exposition(), content_type=prometheus.CONTENT_TYPE)
