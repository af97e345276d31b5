"""What a person or a machine locked out after too many failed sign-ins sees.

django-axes counts failed sign-ins per account and per address (settings: LOGIN_LOCKOUT,
LOGIN_FAILURE_LIMIT, LOGIN_LOCKOUT_SECONDS) on every login that goes through Django's
``authenticate``: ``/app/login/``, ``/admin/login/`` and ``POST /api/auth/token/``. Once
either count reaches the limit, sign-ins for that account, or from that address, are refused
until the lockout ends, even with the right password. The API gets a 429 JSON error with
Retry-After; the login pages are shown again with the reason above the form, status 429.
A successful sign-in on a login page clears the failures typed for that account only; the
address's count, and other accounts', run until the lockout time passes.
"""

from __future__ import annotations

from typing import Any

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.forms.utils import ErrorDict, ErrorList
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve

__all__ = ["failures_forget_account", "locked_out_json", "lockout_response"]


def _message() -> str:
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    return (
        "Too many failed sign-ins for this account or from this address; try again in "
        f"{minutes} minute{'s' if minutes != 1 else ''}, or ask an administrator to unlock it."
    )


def locked_out_json() -> JsonResponse:
    response = JsonResponse(
        {"error": {"code": "too_many_failed_logins", "message": _message()}}, status=429
    )
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response


def lockout_response(request: HttpRequest, *_: Any) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the login page again, with the reason, or JSON for the API."""
    if request.path.startswith("/api/"):
        return locked_out_json()
    form = AuthenticationForm(request)
    if _is_admin(request):
        # Django's admin template shows only the form's errors: an unbound form (the password
        # is never echoed) carrying the reason as its one error.
        form._errors = ErrorDict({"__all__": ErrorList([_message()])})
        context = {**admin.site.each_context(request), "form": form, "title": "Log in"}
        return render(request, "admin/login.html", context, status=429)
    return render(request, "app/login.html", {"form": form, "lockout": _message()}, status=429)


def _is_admin(request: HttpRequest) -> bool:
    try:
        return resolve(request.path).namespace == "admin"
    except Resolver404:
        return False


@receiver(user_logged_in, dispatch_uid="logins.failures_forget_account")
def failures_forget_account(sender: Any, request: HttpRequest, user: Any, **_: Any) -> None:
    """Forget the failed sign-ins of the account that just signed in, and nothing else: axes'
    own reset would also delete the address's count (signing in as oneself would wipe a
    victim's count from the same address)."""
    AccessAttempt.objects.filter(username=user.get_username()).delete()
