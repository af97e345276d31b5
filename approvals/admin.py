from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from approvals.models import Approval, ApprovalEvent, ApprovalLink, ApprovalVote, Delegation
from automation.lib.paging import LargeTablePaginator


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class VoteInline(_ReadOnlyInline):
    model = ApprovalVote
    fields = ["user", "on_behalf_of", "decision", "comment", "values", "created_at"]
    readonly_fields = fields


class HistoryInline(_ReadOnlyInline):
    model = ApprovalEvent
    fields = ["at", "action", "actor", "detail"]
    readonly_fields = fields


class LinkInline(_ReadOnlyInline):
    """Who was emailed a link, and whether they followed it (the token itself is not kept)."""

    model = ApprovalLink
    fields = ["user", "created_at", "expires_at", "used_at"]
    readonly_fields = fields


@admin.register(Approval)
class ApprovalAdmin(admin.ModelAdmin):
    list_display = ["title", "status", "run", "step_id", "due_at", "decided_by", "created_at"]
    list_filter = ["status", "escalated", "created_at"]
    search_fields = ["title", "=run__id"]
    list_select_related = ["decided_by", "run__workflow"]
    readonly_fields = [f.name for f in Approval._meta.fields] + [
        "assignee_users",
        "assignee_groups",
    ]
    inlines = [VoteInline, HistoryInline, LinkInline]
    show_full_result_count = False
    paginator = LargeTablePaginator

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # decisions go through the decide service (API, operator pages)


@admin.register(Delegation)
class DelegationAdmin(admin.ModelAdmin):
    """Out-of-office delegations: an admin can set one up for someone who is away unexpectedly,
    or end one (set "ends at" to now). The model's checks apply (ends after it starts, not to
    oneself)."""

    list_display = ["user", "delegate", "starts_at", "ends_at", "reason", "created_at"]
    list_filter = ["starts_at", "ends_at"]
    search_fields = ["user__username", "delegate__username", "reason"]
    list_select_related = ["user", "delegate"]
    autocomplete_fields = ["user", "delegate"]
    readonly_fields = ["created_at"]
