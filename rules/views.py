"""The rules page of the operator UI (/app/rules/)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from rules import selectors


@login_required
@require_safe
@permission_required("rules.view_rule", raise_exception=True)
def rules_page(request: HttpRequest) -> HttpResponse:
    context = {"rules": selectors.rules_overview(), "section": "rules"}
    return render(request, "rules/rules.html", context)
