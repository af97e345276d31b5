"""The user's own out-of-office settings at /app/approvals/delegation/: name a delegate for a
period, see past and planned delegations, end one. Any signed-in user manages their own only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from approvals import delegations
from approvals.models import Delegation
from automation.engine import clock


class DelegationForm(forms.Form):
    delegate = forms.CharField(label="Delegate (username)", max_length=150)
    starts_at = forms.DateTimeField(
        label="From", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    ends_at = forms.DateTimeField(
        label="Until", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    reason = forms.CharField(label="Reason (shown to nobody else)", max_length=200, required=False)

    def clean_delegate(self) -> Any:
        name = self.cleaned_data["delegate"].strip()
        user_model = get_user_model()
        delegate = user_model.objects.filter(
            **{user_model.USERNAME_FIELD: name}, is_active=True
        ).first()
        if delegate is None:
            raise forms.ValidationError(f"No active user named {name!r}.")
        return delegate


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def delegation_page(request: HttpRequest) -> HttpResponse:
    form = DelegationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            delegation = delegations.delegation_create(user=request.user, **form.cleaned_data)
        except delegations.InvalidDelegation as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, f"{delegation.delegate.get_username()} stands in for you then."
            )
            return redirect("app:delegation")
    context = {
        "form": form,
        "delegations": delegations.delegations_of(request.user),
        "now": clock.now(),
        "section": "approvals",
    }
    return render(request, "app/delegation.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def delegation_end(request: HttpRequest, delegation_id: int) -> HttpResponse:
    delegation = get_object_or_404(Delegation, pk=delegation_id, user=request.user)
    delegations.delegation_end(delegation=delegation)
    messages.success(request, "The delegation ended.")
    return redirect("app:delegation")
