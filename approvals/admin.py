from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from approvals.models import Approval


@admin.register(Approval)
class ApprovalAdmin(admin.ModelAdmin):
    list_display = ["title", "status", "run", "step_id", "due_at", "decided_by", "created_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["title", "=run__id"]
    list_select_related = ["decided_by"]
    readonly_fields = [f.name for f in Approval._meta.fields] + [
        "assignee_users",
        "assignee_groups",
    ]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # decisions go through the decide service (API, operator pages)
