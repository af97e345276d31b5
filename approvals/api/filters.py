"""Query-string filters of the approvals API (django-filter: invalid values answer 400)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from approvals.models import Approval


class ApprovalFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Approval.Status.choices)
    scope = django_filters.ChoiceFilter(
        choices=[("mine", "mine"), ("all", "all")],
        method="filter_scope",
        help_text="mine (default): assigned to me or my groups; all: every approval, for users "
        "allowed to decide any approval.",
    )

    class Meta:
        model = Approval
        fields = ["status", "scope"]

    def filter_scope(
        self, queryset: QuerySet[Approval], name: str, value: str
    ) -> QuerySet[Approval]:
        return queryset  # applied by the view's queryset (approvals.selectors.approvals_for)
