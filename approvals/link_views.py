"""Following a link from an approval email (kept apart from the operator pages in views.py).

The operator pages themselves (inbox, one approval) live in the web UI under ``/app/``.
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET

from approvals.links import LinkRefused, link_read, link_use


@require_GET
def link_open(request: HttpRequest, token: str) -> HttpResponse:
    """``/app/a/<token>/``: its person, signed in, goes to the approval page (once); anyone
    signed out is sent to the login page first; everyone else gets a page saying why not."""
    try:
        link = link_read(token)
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        approval = link_use(link, request.user)
    except LinkRefused as refusal:
        return render(
            request, "approvals/link_refused.html", {"refusal": refusal}, status=refusal.status
        )
    return HttpResponseRedirect(f"/app/approvals/{approval.pk}/")
