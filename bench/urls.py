"""The project's URLs plus /bench/bare/: the raw stack the webhook path is compared with."""

import json

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from automation.urls import urlpatterns as project_urlpatterns


@csrf_exempt
def bare(request: HttpRequest) -> JsonResponse:
    """Parse the JSON body, one INSERT, 202: what Django + PostgreSQL cost with nothing else."""
    payload = json.loads(request.body)
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_bare (body) VALUES (%s)", [json.dumps(payload)])
    return JsonResponse({"stored": True}, status=202)


urlpatterns = [path("bench/bare/", bare), *project_urlpatterns]
