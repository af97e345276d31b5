"""The operator's approval pages: the inbox and one approval, where it is decided."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST, require_safe

from approvals import delegations, selectors, services
from approvals.forms import decision_form
from approvals.models import Approval
from approvals.transitions import available
from automation.lib.paging import keyset_page, query_without
from automation.lib.ui import render_page

STATUS_TABS = [("pending", "Waiting"), ("decided", "Decided"), ("", "All")]


@login_required
@require_safe
def inbox(request: HttpRequest) -> HttpResponse:
    see_all = selectors.can_see_all(request.user)
    scope = "all" if request.GET.get("scope") == "all" and see_all else "mine"
    status = request.GET.get("status", "pending")
    approvals = selectors.approvals_for(request.user, scope=scope)
    if status == "decided":
        approvals = approvals.exclude(status=Approval.Status.PENDING)
    elif status in Approval.Status.values:
        approvals = approvals.filter(status=status)
    context = {
        "page": keyset_page(approvals.prefetch_related("assignee_groups"), request),
        "standing_in_for": delegations.standing_in_now(request.user),
        "scope": scope,
        "status": status,
        "tabs": STATUS_TABS,
        "can_see_all": see_all,
        "query": query_without(request, "before", "fragment"),
        "section": "approvals",
    }
    return render_page(request, "app/inbox.html", context)


@login_required
@require_safe
def approval_page(request: HttpRequest, approval_id: Any) -> HttpResponse:
    approval = selectors.approval_visible(request.user, approval_id)
    return _render_approval(request, approval, decision_form(approval))


def _render_approval(
    request: HttpRequest, approval: Approval, form: Any, status: int = 200
) -> HttpResponse:
    context = {
        "approval": approval,
        "form": form,
        "may_decide": any(t.name == "approve" for t in available(approval, request.user)),
        "standing_in_for": services.acting_for(approval, request.user),
        "voted": approval.votes.filter(user=request.user).exists(),
        "votes": approval.votes.select_related("user", "on_behalf_of"),
        "history": approval.history.select_related("actor"),
        "section": "approvals",
    }
    response = render_page(request, "app/approval.html", context)
    response.status_code = status
    return response


@login_required
@require_POST
def approval_decide(request: HttpRequest, approval_id: Any) -> HttpResponse:
    """Approve or reject from the approval page (with the declared fields' values); the same
    service as the API. An invalid form is shown again with its errors."""
    approval = selectors.approval_visible(request.user, approval_id)
    form = decision_form(approval, request.POST)
    if not form.is_valid():
        return _render_approval(request, approval, form, status=400)
    try:
        services.approval_decide(
            approval=approval,
            user=request.user,
            decision=form.cleaned_data["decision"],
            comment=form.cleaned_data["comment"].strip(),
            values=form.values(),
        )
    except services.AlreadyDecided as exc:
        messages.warning(request, f"Nothing changed: {exc}.")
    else:
        approval.refresh_from_db()
        if approval.status == Approval.Status.PENDING:
            messages.success(request, "Your vote is recorded; more approvals are needed.")
        else:
            messages.success(request, f"{approval.get_status_display()}. The run continues.")
    return redirect("app:approval", approval_id=approval.pk)
