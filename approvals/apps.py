from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

# The group a new installation offers for the people who work in the operator UI (/app/):
# follow runs and events, cancel and retry runs. Deciding approvals needs no permission, only
# being an assignee; `approvals.decide_any_approval` (decide everyone's) is for admins to grant.
OPERATORS = "operators"
OPERATOR_PERMISSIONS = [
    ("automation", "view_run"),
    ("automation", "change_run"),
    ("events", "view_event"),
]


class ApprovalsConfig(AppConfig):
    """What people decide: approval steps and the operator's inbox."""

    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from approvals import (
            live,  # noqa: F401  (connects the live inbox's receiver)
            steps,
        )

        steps.register()  # the approval step kind, for ctx.approval()

        # Last of our apps: the permissions of automation and events exist by then.
        post_migrate.connect(_ensure_operators_group, sender=self)


def _ensure_operators_group(**kwargs: Any) -> None:
    """Create the operators group once; never touch it again (admins may change it)."""
    from django.contrib.auth.models import Group, Permission
    from django.db.models import Q

    group, created = Group.objects.get_or_create(name=OPERATORS)
    if not created:
        return
    wanted = Q()
    for app_label, codename in OPERATOR_PERMISSIONS:
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    group.permissions.set(Permission.objects.filter(wanted))
